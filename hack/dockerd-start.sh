#!/usr/bin/env bash
# Start a throwaway dockerd whose state all lives under DIR, so that several
# of them can run side by side and next to a system dockerd.
#
#   hack/dockerd-start.sh DIR      -> prints "unix://DIR/docker.sock" last
#   DOCKERD_EXTRA_ARGS="--debug"   -> extra dockerd flags (word-split)
#
# Keep DIR short: unix socket paths (DIR/containerd/containerd.sock.ttrpc)
# must stay under 108 bytes.
# Stop it with hack/dockerd-stop.sh DIR.
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$1"
dir=$(realpath "$1")
sock=$dir/docker.sock
ctrd_sock=$dir/containerd/containerd.sock
# Per-DIR bridge name for swarm's docker_gwbridge (IFNAMSIZ: max 15 chars);
# dockerd-stop.sh derives the same name.
gwbridge=dgw-$(printf %s "$dir" | md5sum | cut -c1-8)

running() { [[ -s $dir/$1.pid ]] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }
if running dockerd; then
  echo "dockerd already running for $dir (pid $(cat "$dir/dockerd.pid")); run dockerd-stop.sh first" >&2
  exit 1
fi

fail() {
  echo "$1" >&2
  echo "--- tail of $2" >&2
  tail -n 30 "$2" >&2 || true
  if $own_ctrd; then kill "$ctrd_pid" 2>/dev/null || true; fi
  [[ -n ${dockerd_pid:-} ]] && kill "$dockerd_pid" 2>/dev/null || true
  exit 1
}

# Our own containerd: without --containerd, dockerd 20.10 only starts a
# private one when /run/containerd/containerd.sock is absent; on a normal
# Debian host (containerd.service running) every dockerd would share the
# system containerd and its "moby" namespace. One left running by a restart
# (dockerd stopped alone, as for a live-restore) is used again: it holds the
# live containers.
own_ctrd=false
if running containerd; then
  ctrd_pid=$(cat "$dir/containerd.pid")
else
  own_ctrd=true
  rm -f "$ctrd_sock" # a crash leaves it, and we wait for it to appear
  mkdir -p "$dir/containerd"
  cat >"$dir/containerd/config.toml" <<EOF
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$ctrd_sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"
EOF
  # stdin/stdout redirected so a caller reading our output does not hang.
  containerd --config "$dir/containerd/config.toml" </dev/null >>"$dir/containerd.log" 2>&1 &
  ctrd_pid=$!
  echo "$ctrd_pid" >"$dir/containerd.pid"
fi

for _ in $(seq 100); do
  [[ -S $ctrd_sock ]] && break
  kill -0 "$ctrd_pid" 2>/dev/null || fail "containerd exited" "$dir/containerd.log"
  sleep 0.2
done
[[ -S $ctrd_sock ]] || fail "containerd did not create $ctrd_sock within 20s" "$dir/containerd.log"

# Own config file: ignore the host's /etc/docker/daemon.json and keep the
# engine key out of /etc/docker/key.json.
cat >"$dir/daemon.json" <<EOF
{ "deprecated-key-path": "$dir/key.json" }
EOF

read -ra extra <<<"${DOCKERD_EXTRA_ARGS:-}"
# --bridge none: docker0 belongs to the system dockerd; containers without
#   --network simply get no network.
# --iptables/--ip-forward/--ip-masq=false: leave the host firewall and
#   sysctls alone (moby's own multi-daemon swarm tests do the same).
dockerd \
  --data-root "$dir/root" \
  --exec-root "$dir/exec" \
  --pidfile "$dir/dockerd.pid" \
  -H "unix://$sock" \
  --containerd "$ctrd_sock" \
  --config-file "$dir/daemon.json" \
  --bridge none \
  --iptables=false --ip-forward=false --ip-masq=false \
  "${extra[@]}" \
  </dev/null >>"$dir/dockerd.log" 2>&1 &
dockerd_pid=$!

for _ in $(seq 60); do
  docker -H "unix://$sock" version >/dev/null 2>&1 && break
  kill -0 "$dockerd_pid" 2>/dev/null || fail "dockerd exited" "$dir/dockerd.log"
  sleep 1
done
docker -H "unix://$sock" version >/dev/null 2>&1 ||
  fail "dockerd did not answer on $sock within 60s" "$dir/dockerd.log"

# Swarm creates a local network "docker_gwbridge" whose bridge interface is
# also called docker_gwbridge, which would clash between daemons; a
# pre-created network of that name is used as is, so give it our own name.
docker -H "unix://$sock" network inspect docker_gwbridge >/dev/null 2>&1 ||
  docker -H "unix://$sock" network create \
    -o com.docker.network.bridge.name="$gwbridge" \
    -o com.docker.network.bridge.enable_icc=false \
    -o com.docker.network.bridge.enable_ip_masquerade=false \
    docker_gwbridge >/dev/null

echo "unix://$sock"
