#!/usr/bin/env bash
# Host K of a test cluster dies hard: its dockerd, containerd, shims,
# containers and plugin are killed with SIGKILL and its mounts dropped
# (hack/engine.sh crash), and the loop devices under those mounts
# are detached: a dead machine's kernel takes its devices with it, and
# here the kernel is shared.
set -euo pipefail

[[ $# -eq 2 ]] || { echo "usage: $0 DIR K" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=$(realpath "$1")
source "$repo/hack/cluster-names.sh"
host=$dir/h$2/
# The host's mounts are in its engine's mount namespace, if it has one.
task=()
[[ -s $host/d/engine.mntns ]] && task=(--task "$(cat "$host/d/dockerd.pid")")
# A bind mount of a folder of the device reads /dev/loopN[/folder].
loops=$(findmnt "${task[@]}" -rn -o SOURCE,TARGET | awk -v h="$host" 'index($2, h) == 1 && $1 ~ /^\/dev\/loop/ { sub(/\[.*/, "", $1); print $1 }' | sort -u)
nsenter --net="/run/netns/$(netns "$2")" "$repo/hack/engine.sh" crash "$host/d"
for dev in $loops; do losetup -d "$dev"; done
