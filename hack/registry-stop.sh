#!/usr/bin/env bash
# Stop a registry started by hack/registry-start.sh DIR and remove its
# certs.d entry and DIR. Safe to call repeatedly.
#
#   hack/registry-stop.sh DIR [PORT]   (PORT defaults to the one DIR was started with)
set -euo pipefail

[[ $# -ge 1 && $# -le 2 ]] || { echo "usage: $0 DIR [PORT]" >&2; exit 2; }
dir=$(realpath -m "$1")
if [[ -n $(ls -A "$dir" 2>/dev/null) && ! -e $dir/registry.crt ]]; then
  echo "$dir does not look like a registry-start.sh directory; refusing" >&2
  exit 1
fi
port=${2:-$(cat "$dir/port" 2>/dev/null || echo "${REGISTRY_PORT:-5000}")}
certs=/etc/docker/certs.d/localhost:$port

if [[ -s $dir/registry.pid ]]; then
  pid=$(cat "$dir/registry.pid")
  # Only if the PID is still our registry (its command line names DIR).
  if [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true) == *"$dir/config.yml"* ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
fi

# Remove the trust entry only if it is the certificate we installed.
if [[ -f $dir/registry.crt ]] && cmp -s "$dir/registry.crt" "$certs/ca.crt"; then
  rm -rf "$certs"
  rmdir /etc/docker/certs.d 2>/dev/null || true
fi

rm -rf "$dir"
