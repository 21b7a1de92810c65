#!/usr/bin/env bash
# Stop a cluster started by hack/ceph-up.sh DIR: every daemon by the PID in
# its pidfile (only if that PID is still a Ceph daemon of DIR), then remove
# DIR. Safe to call repeatedly and on a half-started cluster.
#
#   hack/ceph-down.sh DIR
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$(realpath -m "$1")
# Refuse to delete a directory ceph-up.sh did not make.
if [[ -n $(ls -A "$dir" 2>/dev/null) && ! -e $dir/ceph.conf ]]; then
  echo "$dir does not look like a ceph-up.sh directory; refusing" >&2
  exit 1
fi

# True if PID is alive and its command line names DIR's ceph.conf.
ours() { [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" || true) == *"$dir/ceph.conf"* ]]; }

# OSD first, so the mon is there to hear it go; SIGTERM, 10 s, SIGKILL.
for d in osd mgr mon; do
  f=$dir/run/$d.pid
  [[ -s $f ]] || continue
  pid=$(cat "$f")
  ours "$pid" || continue
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do ours "$pid" || break; sleep 0.1; done
  if ours "$pid"; then
    echo "ceph-down: $d (pid $pid) did not stop, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do ours "$pid" || break; sleep 0.1; done
  fi
done
rm -rf --one-file-system "$dir"
