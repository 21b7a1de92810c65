#!/usr/bin/env bash
# `make run`: the plugin up and serving volumes in the local Docker. Starts a
# dockerd on the standard socket if none answers, installs and enables the
# plugin there, and shows a volume in use.
#   hack/run.sh [PLUGIN]
set -euo pipefail
plugin=${1:-rexray/loopback:latest}
cd "$(dirname "$0")/.."
export DOCKER_HOST=unix:///var/run/docker.sock

if ! docker version >/dev/null 2>&1; then
	echo "run: no Docker answers on $DOCKER_HOST; starting dockerd (log: /var/log/rexray-dockerd.log)"
	setsid dockerd --pidfile /var/run/docker.pid >>/var/log/rexray-dockerd.log 2>&1 </dev/null &
	for _ in $(seq 60); do
		docker version >/dev/null 2>&1 && break
		sleep 1
	done
	docker version >/dev/null || { tail -20 /var/log/rexray-dockerd.log; exit 1; }
fi

mkdir -p /var/lib/rexray/loopback /var/lib/rexray/state /var/lib/rexray/keys # the default mount sources
make --no-print-directory plugin PLUGIN="$plugin"
docker plugin enable "$plugin"
hack/import-busybox.sh busybox:latest

vol=rexray-demo
docker volume create -d "$plugin" -o size=1 "$vol" >/dev/null
docker run --rm --network none -v "$vol:/data" busybox sh -c 'date >> /data/hello && cat /data/hello && df -h /data'
docker volume inspect "$vol"
docker volume ls
echo "run: $plugin is enabled; try: docker volume create -d rexray/loopback -o size=2 myvol"
