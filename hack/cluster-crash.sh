#!/usr/bin/env bash
# Host K of a test cluster dies hard: its dockerd, containerd, shims,
# containers and plugin are killed with SIGKILL and its mounts dropped
# (hack/dockerd-stop.sh --crash). Its loop devices stay bound, as nothing
# on a dead machine could release them; cluster-down.sh removes them.
set -euo pipefail

[[ $# -eq 2 ]] || { echo "usage: $0 DIR K" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=$(realpath "$1")
source "$repo/hack/cluster-names.sh"
nsenter --net="/run/netns/$(netns "$2")" "$repo/hack/dockerd-stop.sh" --crash "$dir/h$2/d"
