#!/usr/bin/env bash
# Run inside a VM (hack/vm.sh): the rbd driver's kernel attach paths for
# real. Serves rexray in host mode with REXRAY_DRIVER=rbd and RBD_ATTACH=$1
# (krbd, nbd or auto) against the Ceph cluster whose client config is $2 (a
# ceph.conf naming its keyring), and walks a volume through create, attach,
# detach, first mount (mkfs), write, unmount, remount and read, snapshot,
# clone and its read; then it holds the volume, syncs lines to it one by
# one, and has the rexray at $3 (the REXRAY_HOST of another host's rexray,
# plain tcp://, with REXRAY_PREEMPT=true) take the volume over, and checks
# that its own writes fail from then on.
#
# The other host must have its own kernel: krbd's and rbd-nbd's devices
# are the kernel's, so two instances on one kernel would see (and fence)
# each other's. Removing the volumes is left to it.
#
# Prints "step NAME MS" per step, "method M" (what RBD_ATTACH resolved to),
# "device DEV", "read LINE" and "clone-read LINE" (the last line read back),
# "synced N" (lines synced before the takeover), "peer-mount PATH" (where
# the other host mounted it) and "fenced" once a write after it failed;
# at its end, or when a step fails, "runs OP VOLUME CEPH OTHER" for each
# call rexray served: its Ceph tool runs and its other tool runs (from
# rexray's debug log; VM_LOGLEVEL=info prints none).
#   hack/vm-rbd-attach.sh METHOD CEPH_CONF PEER_HOST [VOLUME]
set -euo pipefail
method=${1:?method} conf=${2:?ceph.conf} peer=${3:?peer REXRAY_HOST} v=${4:-vm$$}
repo=$(cd "$(dirname "$0")/.." && pwd)
rexray=$repo/bin/rexray
# Where the kernel has them (in the VM; this host has neither): auto then
# finds krbd's /sys/bus/rbd.
modprobe rbd 2>/dev/null || true
modprobe nbd nbds_max=8 2>/dev/null || true
work=$(mktemp -d /tmp/rbdvm.XXXX)
pid=
# cleanup: rexray, and what it leaves when killed (rbd-fuse's mounts and
# loop devices, when run outside a VM).
cleanup() {
	[[ -z $pid ]] || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; } || true
	local m l
	for m in $(findmnt -rn -o TARGET | grep "^$work/" | sort -r); do umount -l "$m" || true; done
	for l in $(losetup --list --noheadings --output NAME,BACK-FILE | awk -v w="$work/" 'index($2, w) == 1 { print $1 }'); do
		losetup -d "$l" || true
	done
}
trap cleanup EXIT

# Each tool run costs about a second under emulation: a platform wait of
# 20 s, and a lock check that does not run a tool every second (krbd's and
# rbd-nbd's fence is Ceph's blocklist, which does not wait for it; rbd-fuse
# on this host needs the check: VM_LOCKCHECK=1s).
env REXRAY_DRIVER=rbd RBD_ATTACH="$method" RBD_CEPHARGS="-c $conf" RBD_LOCKCHECK="${VM_LOCKCHECK:-30s}" REXRAY_PLATFORM_WAIT=20s \
	REXRAY_INSTANCEID=vm RBD_FUSEPATH="$work/fuse" REXRAY_HOST="unix://$work/a.sock" REXRAY_STATEDIR="$work/state" \
	LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_MOUNT_PATH="$work/mnt" REXRAY_LOGLEVEL="${VM_LOGLEVEL:-debug}" \
	"$rexray" serve >"$work/a.log" 2>&1 &
pid=$!
t0=$(date +%s%N)
for _ in $(seq 300); do
	grep -q ' serving ' "$work/a.log" && break
	sleep 0.1
done
grep -q ' serving ' "$work/a.log" || { cat "$work/a.log"; exit 1; }

rx() { REXRAY_HOST="unix://$work/a.sock" REXRAY_STATEDIR="$work/state" "$rexray" "$@"; }
now() { date +%s%N; }
# ready: start-up, its restore (which lists the cluster's volumes) and a
# first listing, which waits for it.
rx volume ls >/dev/null || { cat "$work/a.log"; exit 1; }
echo "step ready $(( ($(now) - t0) / 1000000 ))"
# runs: the tool runs of each call, from the debug log's lines
# "ceph tool: ..." (package ceph) and "run ..." (package command).
runs() {
	awk '/msg="(ceph tool: |run )/ && match($0, / req=[^ ]+/) {
		r = substr($0, RSTART + 5, RLENGTH - 5)
		if (!(r in op)) { order[++n] = r; op[r] = "?"; vol[r] = "-" }
		if (match($0, / op=[^ ]+/)) op[r] = substr($0, RSTART + 4, RLENGTH - 4)
		if (match($0, / volume=[^ ]+/)) vol[r] = substr($0, RSTART + 8, RLENGTH - 8)
		if ($0 ~ /msg="ceph tool: /) ceph[r]++; else other[r]++
	}
	END { for (i = 1; i <= n; i++) { r = order[i]; print "runs", op[r], vol[r], ceph[r] + 0, other[r] + 0 } }' "$work/a.log"
}
fail() { echo "$1 failed:"; cat "$work/out"; grep -v 'level=debug' "$work/a.log" | tail -n 20; runs; exit 1; }
# step NAME CMD...: runs CMD, prints its time.
step() {
	local name=$1 t0; shift
	t0=$(now)
	"$@" >"$work/out" 2>&1 || fail "step $name"
	echo "step $name $(( ($(now) - t0) / 1000000 ))"
}
# mnt NAME VOLUME: mounts it and sets m to its mountpoint.
mnt() {
	local t0
	t0=$(now)
	m=$(rx volume mount "$2" 2>"$work/out") || fail "step mount-$1"
	echo "step mount-$1 $(( ($(now) - t0) / 1000000 ))"
}

step create rx volume create "$v" -o size=1
rx volume inspect "$v" --format json | grep -o '"attachMethod": *"[a-z-]*"' | sed 's/.*"\([a-z-]*\)"$/method \1/' | head -1
step attach rx volume attach "$v"
rx volume ls | awk -v v="$v" '$1 == v { for (i = 1; i <= NF; i++) if ($i ~ /^\/dev\//) print "device " $i }'
step detach rx volume detach "$v"
mnt first "$v"
step write bash -c "for i in \$(seq 100); do echo line \$i; done > '$m/lines' && sync '$m/lines'"
step unmount rx volume unmount "$v"
mnt again "$v"
step read test -f "$m/lines"
echo "read $(tail -n 1 "$m/lines")"
step unmount-again rx volume unmount "$v"
step snapshot rx snapshot create "$v" "$v-s"
step clone rx volume create "$v-c" -o snapshotName="$v-s"
mnt clone "$v-c"
echo "clone-read $(tail -n 1 "$m/lines")"
step clone-unmount rx volume unmount "$v-c"

# Hold the volume and sync lines to it, one at a time, until the other
# host takes it over; then a write and its sync must fail.
mnt holder "$v"
ma=$m
n=0
for i in $(seq 20); do
	echo "synced $i" >>"$ma/fenced" && sync "$ma/fenced" && n=$i
done
echo "synced $n"
t0=$(now)
pm=$(REXRAY_HOST="$peer" REXRAY_HOST_INSECURE=true "$rexray" volume mount "$v" 2>"$work/out") || fail "step preempt"
echo "step preempt $(( ($(now) - t0) / 1000000 ))"
echo "peer-mount $pm"
# A write to a blocklisted client fails at once; bound it all the same.
rc=0
{ echo after >>"$ma/fenced" && timeout 60 sync "$ma/fenced"; } 2>/dev/null || rc=$?
case $rc in
0) echo "a write after the takeover succeeded"; exit 1 ;;
124) echo "a write after the takeover hung"; exit 1 ;;
esac
echo fenced
runs
