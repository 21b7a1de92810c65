#!/usr/bin/env bash
# Run inside a VM (hack/vm.sh): the rbd driver's kernel attach paths for
# real. Serves rexray in host mode with REXRAY_DRIVER=rbd and RBD_ATTACH=$1
# (krbd, nbd or auto) against the Ceph cluster whose client config is
# $2 (a ceph.conf naming its keyring), and walks a volume through create,
# attach, first mount (mkfs), write, unmount, detach, remount and read,
# snapshot, clone, preempt by a second instance, remove. Prints one
# "step NAME MS" line per step and "method M" for what auto picked.
#   hack/vm-rbd-attach.sh METHOD CEPH_CONF
set -euo pipefail
method=${1:?method} conf=${2:?ceph.conf}
repo=$(cd "$(dirname "$0")/.." && pwd)
rexray=$repo/bin/rexray
modprobe rbd
modprobe nbd nbds_max=8
work=$(mktemp -d /tmp/rbdvm.XXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

# serve ID [ENV...]: a host-mode rexray with instance ID on its own socket.
serve() {
	local id=$1; shift
	env REXRAY_DRIVER=rbd RBD_ATTACH="$method" RBD_CEPHARGS="-c $conf" RBD_LOCKCHECK=1s \
		REXRAY_INSTANCEID="$id" REXRAY_HOST="unix://$work/$id.sock" REXRAY_STATEDIR="$work/$id/state" \
		LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_MOUNT_PATH="$work/$id/mnt" REXRAY_LOGLEVEL=info "$@" \
		"$rexray" serve >"$work/$id.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		grep -q ' serving ' "$work/$id.log" && return 0
		sleep 0.1
	done
	cat "$work/$id.log"; return 1
}
# rx ID ARGS: the operator command against instance ID's socket.
rx() {
	local id=$1; shift
	REXRAY_HOST="unix://$work/$id.sock" REXRAY_STATEDIR="$work/$id/state" "$rexray" "$@"
}
now() { date +%s%N; }
# step NAME CMD...: runs CMD, prints its time.
step() {
	local name=$1 t0; shift
	t0=$(now)
	"$@" >"$work/out" 2>&1 || { echo "step $name failed:"; cat "$work/out"; tail -n 20 "$work"/*.log; return 1; }
	echo "step $name $(( ($(now) - t0) / 1000000 ))"
}
# mnt ID VOLUME: mounts it through instance ID and sets m to its mountpoint.
mnt() {
	local t0=$(now)
	m=$(rx "$1" volume mount "$2" 2>"$work/out") || { echo "mount $2 on $1 failed:"; cat "$work/out"; tail -n 20 "$work"/*.log; return 1; }
	echo "step mount-$3 $(( ($(now) - t0) / 1000000 ))"
}

serve a
serve b REXRAY_PREEMPT=true
v=vm$$
step create rx a volume create "$v" -o size=1
step attach rx a volume attach "$v"
rx a volume ls | grep -w "$v" | grep -o '/dev/[a-z]*[0-9]*' | sed 's/^/device /'
step detach rx a volume detach "$v"
mnt a "$v" first
step write bash -c "for i in \$(seq 100); do echo line \$i; done > '$m/lines'; sync '$m/lines'"
step unmount rx a volume unmount "$v"
mnt a "$v" again
step read grep -qx 'line 100' "$m/lines"
step unmount-again rx a volume unmount "$v"
step snapshot rx a snapshot create "$v" "$v-s"
step clone rx a volume create "$v-c" -o snapshotName="$v-s"
mnt a "$v-c" clone
step clone-read grep -qx 'line 100' "$m/lines"
step clone-unmount rx a volume unmount "$v-c"
# a holds the volume with a write it synced; b preempts.
mnt a "$v" holder
echo synced-by-a >"$m/fenced" && sync "$m/fenced"
ma=$m
mnt b "$v" preempt
if echo after >>"$ma/fenced" 2>/dev/null && sync "$ma/fenced" 2>/dev/null; then
	echo "a's write after the preempt succeeded"; exit 1
fi
echo "a fenced"
step read-b grep -qx synced-by-a "$m/fenced"
step unmount-b rx b volume unmount "$v"
rx a volume unmount "$v" >/dev/null 2>&1 || true
step remove-clone rx b volume rm "$v-c"
step remove-snapshot rx b snapshot rm "$v-s"
step remove rx b volume rm "$v"
echo "left: $(rbd -c "$conf" device list 2>/dev/null | tail -n +2 | wc -l) mapped, $(findmnt -rn -o TARGET | grep -c "$work" || true) mounts"
