#!/bin/bash
# TestEncrypted's half inside a hack/vm.sh VM (a kernel with dm-crypt):
# two rexray instances in host mode (REXRAY_DRIVER=loopback) on one store,
# each with its own ledger and key folder, as two hosts would be. Each step
# is a record for the test to judge: "@@step NAME rc=STATUS took=SECONDS", then what the
# step printed. Nothing here decides whether the feature works; the test
# does, from these records.
#   encrypted-vm.sh REXRAY MARKER ROOTFS
#     ROOTFS: the plugin's rootfs (build/plugin/rootfs), whose own
#     cryptsetup and mkfs are run on a dm-crypt mapping too
set -u
marker=$2 rootfs=$3
d=/tmp/rx
# The store must be there before rexray starts (it checks what holds it).
mkdir -p "$d/store"
# From the VM's own /tmp: run over virtio-fs, each start of the binary
# costs a second under TCG.
rexray=$d/rexray
cp "$1" "$rexray"
modprobe -a loop dm_crypt

# step NAME COMMAND...: one record, with how long the step took.
step() {
	local name=$1 out rc start=$EPOCHREALTIME
	shift
	out=$("$@" 2>&1)
	rc=$?
	printf '@@step %s rc=%d took=%ss\n%s\n' "$name" "$rc" "$(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $start }")" "$out"
}

# host NAME: the settings of instance NAME (the two differ in ledger, key
# folder, mount root and socket; they share the store).
host() {
	echo "REXRAY_DRIVER=loopback REXRAY_INSTANCEID=$1 REXRAY_HOST=unix://$d/$1.sock" \
		"REXRAY_STATEDIR=$d/$1/state REXRAY_KEYDIR=$d/$1/keys LOOPBACK_VOLUMEPATH=$d/store" \
		"LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_MOUNT_PATH=$d/$1/mnt LOOPBACK_LEASETTL=3s REXRAY_LOGLEVEL=debug"
}
on() {
	local h=$1
	shift
	# shellcheck disable=SC2046
	env $(host "$h") "$rexray" "$@"
}
serve() {
	local h=$1
	shift
	# shellcheck disable=SC2046
	env $(host "$h") "$@" "$rexray" serve >"$d/$h.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		grep -q ' serving ' "$d/$h.log" && return 0
		sleep 0.1
	done
	echo "instance $h did not start:" && cat "$d/$h.log"
	return 1
}
# mappings: the open dm-crypt mappings, one a line.
mappings() { for m in /sys/block/dm-*/dm/name; do [[ -f $m ]] && cat "$m"; done; true; }
# state: what a volume left on the kernel: mappings, loop devices, mounts.
state() {
	echo "mappings: $(mappings | tr '\n' ' ')"
	echo "loops: $(losetup -a | tr '\n' ' ')"
	echo "mounts: $(grep " $d/" /proc/mounts | tr '\n' ' ')"
}
img() { echo "$d/store/volumes/$1.img"; }
uuid() { blkid -o value -s UUID "$(img "$1")"; }
keymode() { stat -c '%a %s' "$1"; }

# A freshly booted kernel's first dm-crypt mapping costs seconds under TCG
# (its crypto's first use), once per boot: paid here, and timed, rather
# than within the first mount's 25 s.
truncate -s 20M "$d/warm.img"
head -c 64 /dev/urandom >"$d/warm.key"
warm=$(losetup -f --show "$d/warm.img")
cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$d/warm.key" "$warm"
step warm-open cryptsetup open --type luks2 --key-file "$d/warm.key" "$warm" rexray-warm
cryptsetup close rexray-warm
losetup -d "$warm"

pids=()
serve a || exit 1
serve b REXRAY_PREEMPT=true || exit 1

# A plain volume, the control: its marker is in its image.
step plain-create on a volume create plain -o size=64M
step plain-mount on a volume mount plain
echo "$marker" >"$d/a/mnt/plain/data/f" && sync
step plain-unmount on a volume unmount plain
step plain-grep grep -c "$marker" "$(img plain)"
step plain-inspect on a volume inspect plain --format json

step enc-create on a volume create enc -o size=64M -o encrypted=true
step enc-key keymode "$d/a/keys/enc.key"
step enc-inspect on a volume inspect enc --format json
step enc-mount on a volume mount enc
step enc-mapped state
step enc-write bash -c "echo $marker >$d/a/mnt/enc/data/f && sync"
step enc-unmount on a volume unmount enc
step enc-released state
step enc-grep grep -c "$marker" "$(img enc)"
step enc-blkid blkid -o value -s TYPE "$(img enc)"
step enc-uuid uuid enc
step enc-remount on a volume mount enc
step enc-read cat "$d/a/mnt/enc/data/f"
step enc-unmount2 on a volume unmount enc

step copy-create on a volume create copy -o volumeName=enc
step copy-key cmp "$d/a/keys/enc.key" "$d/a/keys/copy.key"
step copy-inspect on a volume inspect copy --format json
step copy-mount on a volume mount copy
step copy-read cat "$d/a/mnt/copy/data/f"
step copy-unmount on a volume unmount copy
step copy-grep grep -c "$marker" "$(img copy)"

step snap-create on a snapshot create enc snap1
step snap-key cmp "$d/a/keys/enc.key" "$d/a/keys/snapshots/snap1.key"
step restored-create on a volume create restored -o snapshotName=snap1
step restored-mount on a volume mount restored
step restored-read cat "$d/a/mnt/restored/data/f"
step restored-unmount on a volume unmount restored

# A wrong key, then none: the mount fails and the volume is what it was.
cp "$d/a/keys/enc.key" "$d/enc.key.saved"
head -c 64 /dev/urandom >"$d/a/keys/enc.key"
step wrongkey-mount on a volume mount enc
step wrongkey-state state
step wrongkey-uuid uuid enc
rm "$d/a/keys/enc.key"
step nokey-mount on a volume mount enc
step nokey-state state
step nokey-uuid uuid enc
cp "$d/enc.key.saved" "$d/a/keys/enc.key"
step keyback-mount on a volume mount enc
step keyback-read cat "$d/a/mnt/enc/data/f"
# Grown while mounted: the loop device, then the mapping, then ext4.
step grow-before df --output=size -B1M "$d/a/mnt/enc"
step grow on a volume resize enc 128M
step grow-after df --output=size -B1M "$d/a/mnt/enc"

# The second host sees the volume as encrypted, cannot open it without its
# own copy of the key, and with it takes the volume over from the first.
step b-inspect on b volume inspect enc --format json
step b-nokey-mount on b volume mount enc
step b-nokey-state state
mkdir -p -m 0700 "$d/b/keys" && cp "$d/enc.key.saved" "$d/b/keys/enc.key"
step a-write bash -c "echo second-$marker >>$d/a/mnt/enc/data/f && sync"
step b-preempt on b volume mount enc
step b-read cat "$d/b/mnt/enc/data/f"
# The first host's fence runs in its own loop (every 250 ms): wait for
# its mount to go.
for _ in $(seq 50); do grep -q " $d/a/mnt/enc " /proc/mounts || break; sleep 0.2; done
step preempt-state state
step b-unmount on b volume unmount enc

step copy-rm on a volume rm copy
step copy-rm-key ls "$d/a/keys"
step snap-rm on a snapshot rm snap1
step snap-rm-key ls "$d/a/keys/snapshots"
step enc-rm on b volume rm enc
step enc-rm-key ls "$d/b/keys"
step enc-rm-img ls "$d/store/volumes"

# The plugin's rootfs: its cryptsetup and mkfs, with their libraries, as
# the plugin runs them (the host's /dev, /proc and /sys; a writable root).
root=$d/plugin-root
mkdir -p "$d/ovl/up" "$d/ovl/work" "$root"
mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$d/ovl/up,workdir=$d/ovl/work" "$root"
mount --rbind /dev "$root/dev" && mount -t proc proc "$root/proc" && mount -t sysfs sys "$root/sys"
truncate -s 24M "$d/rootfs.img"
loop=$(losetup -f --show "$d/rootfs.img")
head -c 64 /dev/urandom >"$root/tmp/k"
in_root() { chroot "$root" "$@"; }
step rootfs-format in_root /sbin/cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file /tmp/k "$loop"
step rootfs-open in_root /sbin/cryptsetup open --type luks2 --key-file /tmp/k "$loop" rexray-rootfs-test
step rootfs-mkfs in_root /sbin/mkfs.ext4 -q /dev/mapper/rexray-rootfs-test
step rootfs-blkid in_root /sbin/blkid -o value -s TYPE /dev/mapper/rexray-rootfs-test
step rootfs-close in_root /sbin/cryptsetup close rexray-rootfs-test
losetup -d "$loop"
umount -R "$root"

# A volume whose key is lost is still removed.
rm "$d/a/keys/restored.key"
step lostkey-rm on a volume rm restored
on a volume rm plain >/dev/null 2>&1
step final-state state
kill "${pids[@]}"
wait
cat "$d/a.log" "$d/b.log" | sed 's/^/log: /'
