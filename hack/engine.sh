#!/usr/bin/env bash
# Start and stop a Docker engine of a given version for the tests.
#
#   hack/engine.sh up VERSION DIR    VERSION: 20.10, 26.1 or 28.5
#     -> prints DOCKER_HOST=unix://DIR/docker.sock, ENGINE_VERSION=... and ENGINE_API=...
#   hack/engine.sh down DIR
#   hack/engine.sh crash DIR         a power cut: every process killed, mounts gone, DIR kept
#   ENGINE_BINDS="/a /b"   more host folders the engine sees at the same paths
#   ENGINE_CACHE=DIR       where the engines' trees are kept (/var/cache/rexray/engines)
#
# 20.10 is Debian 12's dockerd on the host (hack/dockerd-start.sh DIR). 26.1
# (trixie's docker.io) and 28.5 (forky's) run from a Debian tree of their
# own, built once with debootstrap and kept in ENGINE_CACHE (rebuilt when
# missing or broken); nothing of those suites is installed into the host.
# Their dockerd runs in a mount namespace of its own whose root is the tree,
# entered with pivot_root: under chroot, runc's own pivot_root would leave
# containers' exec at the host's root. DIR, ENGINE_BINDS, the checkout,
# /run/docker/plugins and /etc/docker/plugins (where plugins' sockets and
# spec files are found) and /etc/docker/certs.d (registries' CAs) are bound
# into the tree at the same paths, so plugin mount sources and test files mean the same on both sides.
# A bound folder that is a shared mount on the host passes the host's later
# mounts under it into the engine (slave propagation); the engine's own
# mounts stay in its namespace: read them in /proc/<dockerd pid>/mountinfo.
#
# down stops only what up started, by PID (dockerd, containerd, shims,
# containers, plugins: every process of the engine's namespace) and removes
# DIR. Both are safe to run twice.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${ENGINE_CACHE:-/var/cache/rexray/engines}
mirror=http://deb.debian.org/debian

usage() {
  echo "usage: $0 up 20.10|26.1|28.5 DIR | $0 down DIR | $0 crash DIR" >&2
  exit 2
}

# suite_of VERSION: the Debian suite whose docker.io is that engine.
suite_of() {
  case $1 in
  26.1) echo trixie ;;
  28.5) echo forky ;;
  *) return 1 ;;
  esac
}

tree_ok() { # TREE VERSION
  [[ -f $1/.rexray-engine ]] && [[ $(chroot "$1" dockerd --version 2>/dev/null) == "Docker version $2."* ]]
}

# ensure_tree VERSION: the engine's tree, built unless a working one is
# cached. One build at a time: hosts of a cluster start side by side.
ensure_tree() {
  local version=$1 suite tree
  suite=$(suite_of "$version")
  tree=$cache/$suite
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  if ! tree_ok "$tree" "$version"; then
    echo "engine $version: building $tree (debootstrap $suite)" >&2
    command -v debootstrap >/dev/null || { echo "engine.sh: debootstrap is missing (make setup installs it)" >&2; return 1; }
    rm -rf --one-file-system "$tree.new"
    # sid's script: forky is too new for bookworm's debootstrap to know.
    debootstrap --variant=minbase "$suite" "$tree.new" "$mirror" /usr/share/debootstrap/scripts/sid >&2
    cp /etc/resolv.conf "$tree.new/etc/resolv.conf"
    # The mirror's Release files may be past their Valid-Until.
    chroot "$tree.new" apt-get -qq -o Acquire::Check-Valid-Until=false update >&2
    DEBIAN_FRONTEND=noninteractive chroot "$tree.new" apt-get install -y -qq --no-install-recommends \
      docker.io docker-cli iptables >&2
    mkdir -p "$tree.new/.old-root"
    touch "$tree.new/.rexray-engine"
    tree_ok "$tree.new" "$version" ||
      { echo "engine.sh: $suite's dockerd is not $version: $(chroot "$tree.new" dockerd --version)" >&2; return 1; }
    rm -rf --one-file-system "$tree"
    mv "$tree.new" "$tree"
  fi
  flock -u 9
  echo "$tree"
}

# enter TREE DIR BIND...: runs in the new mount namespace; becomes the
# engine's dockerd-start.sh with the tree as root.
enter() {
  local tree=$1 dir=$2 p
  shift 2
  mount --bind "$tree" "$tree" # pivot_root takes a mount point
  mount -t proc proc "$tree/proc"
  mount --rbind /sys "$tree/sys"
  mount --rbind /dev "$tree/dev"
  mount -t tmpfs -o mode=0755 tmpfs "$tree/run"
  mount -t tmpfs -o mode=1777 tmpfs "$tree/tmp"
  # /var/lib/rexray/keys: the default source of the plugin's keys mount.
  local -a binds=(/run/docker/plugins /etc/docker/plugins /etc/docker/certs.d /var/lib/rexray/keys "$repo" "$@")
  local covered=false
  for p in "$@"; do
    [[ $dir == "$p"/* ]] && covered=true
  done
  $covered || binds+=("$dir") # a bind of DIR beneath another would be shadowed
  for p in "${binds[@]}"; do
    mkdir -p "$p" "$tree$p"
    mount --rbind "$p" "$tree$p"
  done
  mount -o remount,bind,ro "$tree$repo"
  cd "$tree"
  pivot_root . .old-root
  umount -l /.old-root
  cd /
  # runc writes its exec specs to TMPDIR: the caller's may not be bound.
  unset TMPDIR
  exec "$repo/hack/dockerd-start.sh" "$dir"
}

up() {
  local version=$1 dir tree pids
  mkdir -p "$2"
  dir=$(realpath "$2")
  local host=unix://$dir/docker.sock
  suite_of "$version" >/dev/null || [[ $version == 20.10 ]] || usage
  if [[ -s $dir/engine.version && $(cat "$dir/engine.version") != "$version" ]]; then
    echo "engine.sh: $dir holds engine $(cat "$dir/engine.version"), not $version; run down first" >&2
    return 1
  fi
  echo "$version" >"$dir/engine.version"
  if docker -H "$host" version >/dev/null 2>&1; then
    : # up already: say so again
  elif [[ $version == 20.10 ]]; then
    "$repo/hack/dockerd-start.sh" "$dir" >/dev/null
  elif pids=($(in_namespace "$(cat "$dir/engine.mntns" 2>/dev/null)")) && [[ ${#pids[@]} -gt 0 ]]; then
    # dockerd stopped, its containerd (and the namespace) lives on, as
    # after a restart of dockerd alone: start it there again.
    nsenter --mount --target "${pids[0]}" -- "$repo/hack/dockerd-start.sh" "$dir" >/dev/null
  else
    tree=$(ensure_tree "$version")
    read -ra binds <<<"${ENGINE_BINDS:-}"
    unshare --mount --propagation slave -- "$0" _enter "$tree" "$dir" "${binds[@]}" >/dev/null
    readlink "/proc/$(cat "$dir/dockerd.pid")/ns/mnt" >"$dir/engine.mntns"
  fi
  local v
  v=$(docker -H "$host" version --format '{{.Server.Version}} {{.Server.APIVersion}}')
  echo "DOCKER_HOST=$host"
  echo "ENGINE_VERSION=${v% *}"
  echo "ENGINE_API=${v#* }"
}

# in_namespace NS: the PIDs of the processes in mount namespace NS.
in_namespace() {
  local p
  [[ -n $1 ]] || return 0
  for p in /proc/[0-9]*; do
    [[ $(readlink "$p/ns/mnt" 2>/dev/null) == "$1" ]] && echo "${p#/proc/}"
  done
  return 0
}

# stop DIR [--crash]: stop the engine (power cut with --crash: SIGKILL, DIR
# kept so that up boots it again), every process of its namespace included.
stop() {
  local dir=$1 ns pid pids
  shift
  [[ -s $dir/engine.mntns ]] || return 0
  ns=$(cat "$dir/engine.mntns")
  # From inside, where its mounts are: dockerd stops containers and plugins
  # on SIGTERM, and dockerd-stop.sh unmounts what is left.
  pids=($(in_namespace "$ns"))
  if [[ ${#pids[@]} -gt 0 ]]; then
    DOCKERD_STOP_KEEP_DIR=1 nsenter --mount --target "${pids[0]}" -- "$repo/hack/dockerd-stop.sh" "$@" "$dir" || true
  fi
  # Whatever outlived that is ours too: it runs in the namespace up made,
  # which goes, with its mounts, when its last process does.
  for pid in $(in_namespace "$ns"); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -f "$dir/engine.mntns"
}

down() {
  local dir
  dir=$(realpath -m "$1")
  stop "$dir"
  [[ -e $dir ]] || return 0
  "$repo/hack/dockerd-stop.sh" "$dir"
}

crash() {
  local dir
  dir=$(realpath -m "$1")
  if [[ -s $dir/engine.mntns ]]; then
    stop "$dir" --crash
  else
    "$repo/hack/dockerd-stop.sh" --crash "$dir"
  fi
}

case ${1:-} in
up) [[ $# -eq 3 ]] || usage; up "$2" "$3" ;;
down) [[ $# -eq 2 ]] || usage; down "$2" ;;
crash) [[ $# -eq 2 ]] || usage; crash "$2" ;;
_enter) shift; enter "$@" ;;
*) usage ;;
esac
