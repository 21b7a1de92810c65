#!/usr/bin/env bash
# Remove a test cluster made by hack/cluster-up.sh DIR: every host's dockerd
# (and its containers and plugin), namespaces, veths, the bridge, DIR.
# Safe to repeat, and after a cluster-up that failed part way.
set -uo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=$(realpath -m "$1")
source "$repo/hack/cluster-names.sh"

for host in "$dir"/h[0-9]; do
  [[ -d $host ]] || continue
  k=${host##*/h}
  sock=unix://$host/d/docker.sock
  if [[ -S ${sock#unix://} ]]; then
    DOCKER_HOST=$sock timeout 20 docker swarm leave --force >/dev/null 2>&1
    DOCKER_HOST=$sock timeout 30 docker plugin disable -f rexray/loopback:latest >/dev/null 2>&1
  fi
  if [[ -e /run/netns/$(netns "$k") ]]; then
    nsenter --net="/run/netns/$(netns "$k")" "$repo/hack/engine.sh" down "$host/d"
  else
    "$repo/hack/engine.sh" down "$host/d"
  fi
done
for k in 1 2 3 4 5 6 7 8 9; do
  [[ -e /run/netns/$(netns "$k") ]] && ip netns delete "$(netns "$k")"
  ip link show "$(veth "$k")" >/dev/null 2>&1 && ip link delete "$(veth "$k")"
done
ip link show "$bridge" >/dev/null 2>&1 && ip link delete "$bridge"
while iptables -D FORWARD -i "$bridge" -o "$bridge" -m comment --comment "$bridge" -j ACCEPT 2>/dev/null; do :; done
# Loop devices a crashed host left over the shared store.
if [[ -d $dir/store/volumes ]]; then
  for img in "$dir"/store/volumes/*.img; do
    [[ -f $img ]] || continue
    for dev in $(losetup --noheadings --output NAME -j "$img"); do losetup -d "$dev"; done
  done
fi
rm -rf --one-file-system "$dir"
