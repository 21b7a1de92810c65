#!/usr/bin/env bash
# Stop a dockerd started by hack/dockerd-start.sh DIR and remove every trace
# of it: processes, mounts, interfaces, DIR. Safe to call repeatedly.
#
#   hack/dockerd-stop.sh [--crash] DIR
#   DOCKERD_STOP_KEEP_DIR=1   stop and unmount, but leave DIR and bridges
#
# --crash is a power cut for that Docker host: every process of it is killed
# with SIGKILL (dockerd, containerd, shims, containers, plugins) and its
# mounts dropped, but DIR stays, so dockerd-start.sh DIR boots it again.
set -euo pipefail

crash=false
if [[ ${1:-} == --crash ]]; then
  crash=true
  shift
fi
[[ $# -eq 1 ]] || { echo "usage: $0 [--crash] DIR" >&2; exit 2; }
dir=$(realpath -m "$1")
# Refuse to unmount and delete a directory dockerd-start.sh did not make.
if [[ -n $(ls -A "$dir" 2>/dev/null) && ! -e $dir/containerd/config.toml ]]; then
  echo "$dir does not look like a dockerd-start.sh directory; refusing" >&2
  exit 1
fi
gwbridge=dgw-$(printf %s "$dir" | md5sum | cut -c1-8) # as in dockerd-start.sh

# Command line of PID, NULs as spaces ("" if gone).
cmdline() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" || true; }

# True if PID is alive and its command line mentions DIR (guards against a
# stale pidfile whose PID now belongs to something else).
ours() { [[ $(cmdline "$1") == *"$dir/"* ]]; }

# SIGTERM, wait up to $2 seconds, then SIGKILL (at once with --crash).
stop_pid() {
  local pid=$1 n=$(($2 * 10))
  ours "$pid" || return 0
  if $crash; then
    kill -KILL "$pid" 2>/dev/null || true
    n=50
  else
    kill -TERM "$pid" 2>/dev/null || true
  fi
  while ((n-- > 0)) && ours "$pid"; do sleep 0.1; done
  if ours "$pid"; then
    echo "pid $pid did not stop, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

pidfile_stop() {
  [[ -s $1 ]] && stop_pid "$(cat "$1")" "$2"
  rm -f "$1"
}

# Mount points at or under $1, deepest (longest) first.
mounts_under() {
  local mp
  while read -r _ _ _ _ mp _; do
    mp=$(printf '%b' "$mp") # mountinfo escapes spaces as \040
    [[ $mp == "$1" || $mp == "$1"/* ]] && printf '%s\t%s\n' "${#mp}" "$mp"
  done </proc/self/mountinfo | sort -rn | cut -f2-
}

umount_under() {
  local mp _i
  for _i in 1 2 3 4 5; do # stacked / propagated mounts may need passes
    [[ -n $(mounts_under "$1") ]] || return 0
    while IFS= read -r mp; do
      umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
    done < <(mounts_under "$1")
  done
  [[ -z $(mounts_under "$1") ]] || { echo "still mounted under $1:" >&2; mounts_under "$1" >&2; return 1; }
}

# Bridge interfaces of networks this daemon created outlive it: our
# docker_gwbridge, plus br-<network id> of user networks, read from
# libnetwork's store so this works even if dockerd is already dead.
# (Custom-named bridges other than docker_gwbridge are not tracked.)
mapfile -t bridges < <({
  echo "$gwbridge"
  grep -aoE '"BridgeName":"br-[0-9a-f]{12}"' "$dir/root/network/files/local-kv.db" 2>/dev/null |
    cut -d'"' -f4
} | sort -u)

# dockerd stops its containers and plugins on SIGTERM.
pidfile_stop "$dir/dockerd.pid" 30

# If dockerd died uncleanly its containers live on: kill them via runc state.
for root in "$dir"/exec/runtime-runc/*/; do
  [[ -d $root ]] || continue
  for id in $(runc --root "$root" list -q 2>/dev/null); do
    runc --root "$root" delete --force "$id" 2>/dev/null || true
  done
done

pidfile_stop "$dir/containerd.pid" 15

# Shims daemonize (parent becomes init); they carry our containerd socket in
# their command line.
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  [[ $(cmdline "$pid") == *"-address $dir/containerd/containerd.sock "* ]] && stop_pid "$pid" 5
done

# Managed plugins keep their sockets in the hard-coded /run/docker/plugins/<id>
# (shared by all dockerds); remove only the ids of this daemon's plugins.
for p in "$dir"/root/plugins/*; do
  id=${p##*/}
  [[ $id =~ ^[0-9a-f]{64}$ && -d /run/docker/plugins/$id ]] || continue
  umount_under "/run/docker/plugins/$id"
  rm -rf --one-file-system "/run/docker/plugins/$id"
done

# Overlay rootfs, shm, volumes, and the netns files under DIR/exec/netns
# (swarm's ingress_sbox / overlay namespaces die with their last mount).
umount_under "$dir"
$crash && exit 0
# hack/engine.sh runs this inside an engine's mount namespace, where DIR is
# a mount point, then again on the host, which removes DIR.
[[ -n ${DOCKERD_STOP_KEEP_DIR:-} ]] && exit 0

for br in "${bridges[@]}"; do
  ip link show "$br" >/dev/null 2>&1 && ip link delete "$br"
done

# --one-file-system: never descend into something we failed to unmount.
rm -rf --one-file-system "$dir"
