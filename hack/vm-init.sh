#!/bin/bash
# The init of a hack/vm.sh VM, run from the host's userland (read-only):
# the kernel file systems, a writable /tmp and /run, the kernel's modules at
# /lib/modules, then the command hack/vm.sh wrote, as root; its status goes
# to the second serial port and the VM powers off.
set -u
arg() { sed -n "s/.* rexray\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# A checkout under /tmp stays at its path over the VM's own /tmp.
repo=$(arg repo)
mkdir -p /dev/shm/host-tmp
mount --bind /tmp /dev/shm/host-tmp
mount -t tmpfs -o mode=1777 tmpfs /tmp
if [[ $repo == /tmp/* ]]; then
	mkdir -p "$repo"
	mount --bind "/dev/shm/host-tmp/${repo#/tmp/}" "$repo"
fi
umount -l /dev/shm/host-tmp
mount -t tmpfs -o mode=0755 tmpfs /run
share=$(arg share)
if [[ -n $share ]]; then
	mkdir -p "$share" 2>/dev/null
	mount -t virtiofs share "$share" || echo "vm: cannot mount the shared folder $share" >&2
fi
mount --bind "$(arg modules)" /lib/modules
work=$(arg work)
# A name of its own, as every host has: an NFSv4 client names itself to
# the server by it, and two clients of one name are taken for one client
# that rebooted, each dropping the other's state (sessions, opens, locks).
hostname "$(basename "$work" | tr . -)"
ip link set lo up
if [[ -f $work/ip ]]; then
	modprobe virtio_net
	ip link set eth0 up && ip addr add "$(cat "$work/ip")" dev eth0
fi
# The command's output reaches the host byte for byte, without \r.
stty -F /dev/ttyS0 -onlcr 2>/dev/null
export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
bash "$work/cmd" </dev/null
echo $? >/dev/ttyS1
sync
busybox poweroff -f
