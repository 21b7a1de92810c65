#!/usr/bin/env bash
# Run a command as root in a VM with Debian's cloud kernel, for the kernel
# paths this host lacks (rbd, nbd, dm-crypt, nfs): qemu (TCG), the host's
# userland as the VM's root, read-only, over virtio-fs, a writable /tmp and
# /run, the kernel's modules loadable with modprobe, the checkout at the same
# path. Prints the command's output and exits with its status.
#   hack/vm.sh [--net NETNS --ip ADDR/LEN] [--mem MiB] [--cpus N] [--share DIR] -- COMMAND [ARG...]
#     --net: the VM's network is a tap on NETNS's bridge (the project's test
#            network, as hack/cluster-up.sh makes it), with address ADDR/LEN
#            and a MAC address made from it, so that VMs share a bridge
#     --share: the host folder DIR is writable in the VM, at its path, and
#            uncached: each side sees the other's changes at once (the
#            control folder of hack/vm-agent.sh)
#   VM_CACHE=DIR   where the kernel is kept (/var/cache/rexray/vm)
#   VM_CPU=MODEL   qemu's CPU model (Nehalem: no AVX, whose emulation is slow,
#                  and which glibc's and Go's string functions pick when offered)
# Installs qemu-system-x86 if missing; stops every process it started (qemu,
# virtiofsd), by PID, and removes its tap, even when killed by a signal.
set -euo pipefail

usage() { echo "usage: $0 [--net NETNS --ip ADDR/LEN] [--mem MiB] [--cpus N] [--share DIR] -- COMMAND [ARG...]" >&2; exit 2; }
netns= ip= mem=1024 cpus=2 share=
while [[ $# -gt 0 && $1 != -- ]]; do
	case $1 in
	--net) netns=${2:?}; shift 2 ;;
	--ip) ip=${2:?}; shift 2 ;;
	--mem) mem=${2:?}; shift 2 ;;
	--cpus) cpus=${2:?}; shift 2 ;;
	--share) share=$(cd "${2:?}" && pwd) || { echo "vm: --share $2: no such folder" >&2; exit 2; }; shift 2 ;;
	*) usage ;;
	esac
done
[[ ${1:-} == -- && $# -ge 2 ]] || usage
shift
[[ -z $netns || -n $ip ]] || { echo "vm: --net needs --ip ADDR/LEN" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${VM_CACHE:-/var/cache/rexray/vm}

# ensure_kernel: the cloud kernel's package unpacked in the cache, with
# modules.dep (Debian's package has none: its postinst makes it).
ensure_kernel() {
	# kmod: depmod here, and modprobe in the VM, which runs this userland.
	command -v qemu-system-x86_64 >/dev/null && [[ -x /usr/lib/qemu/virtiofsd ]] && command -v depmod >/dev/null || {
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 kmod >&2
	}
	local pkg
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
	if [[ -z $pkg ]]; then
		apt-get update -qq
		pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ { print $2; exit }')
	fi
	[[ -n $pkg ]] || { echo "vm: apt knows no linux-image-cloud-amd64 (apt-get update?)" >&2; return 1; }
	kver=${pkg#linux-image-}
	tree=$cache/$kver
	mkdir -p "$cache"
	exec 8>"$cache/.lock"
	flock 8
	if [[ ! -f $tree/.rexray-vm ]]; then
		echo "vm: unpacking $pkg into $tree" >&2
		rm -rf "$tree.new" && mkdir -p "$tree.new"
		(cd "$tree.new" && apt-get -qq -o APT::Sandbox::User=root download "$pkg")
		dpkg-deb -x "$tree.new"/*.deb "$tree.new" && rm "$tree.new"/*.deb
		depmod -b "$tree.new" "$kver"
		initramfs "$tree.new" >"$tree.new/initramfs.cpio"
		touch "$tree.new/.rexray-vm"
		rm -rf "$tree" && mv "$tree.new" "$tree"
	fi
	flock -u 8
}

# initramfs TREE: busybox, the modules virtio-fs needs, and an init that
# mounts the host's userland and hands over to hack/vm-init.sh in it.
initramfs() {
	local t=$1 d m
	d=$(mktemp -d)
	mkdir -p "$d"/{bin,dev,proc,sys,root,mod}
	cp /bin/busybox "$d/bin/"
	for m in virtio_pci virtiofs; do modprobe -d "$t" -S "$kver" --show-depends "$m"; done |
		awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | while read -r ko; do
		cp "$ko" "$d/mod/"
		echo "${ko##*/}" >>"$d/mod/order"
	done
	cat >"$d/init" <<'INIT'
#!/bin/busybox sh
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t devtmpfs dev /dev
for m in $($bb cat /mod/order); do $bb insmod /mod/$m; done
init=$($bb sed -n 's/.* rexray.init=\([^ ]*\).*/\1/p' /proc/cmdline)
$bb mount -t virtiofs -o ro host /root || { echo "vm: no virtio-fs root"; $bb cat /proc/modules; $bb dmesg | $bb tail -20; $bb poweroff -f; }
$bb umount /proc
$bb umount /dev
exec $bb switch_root /root "$init"
INIT
	chmod +x "$d/init"
	(cd "$d" && find . | busybox cpio -o -H newc 2>/dev/null)
	rm -rf "$d"
}

ensure_kernel
# The VM binds the kernel's modules here; the host's own kernel has none.
mkdir -p /lib/modules

work=$(mktemp -d /var/tmp/rexray-vm.XXXXXX)
pids=() tap=
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	[[ -z $tap ]] || ip netns exec "$netns" ip link del "$tap" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The command, quoted, for the VM's init to run (the VM sees /var/tmp as
# the host has it, read-only).
{
	printf 'cd %q\n' "$PWD"
	printf '%q ' "$@"
	echo
} >"$work/cmd"
[[ -z $netns ]] || printf '%s\n' "$ip" >"$work/ip"

# cache=always: the guest keeps what it read of the host's files without
# asking again at each open, which the VM's short life allows (the host's
# userland does not change under it). With cache=auto every exec revalidates
# each library over virtio-fs: a Ceph tool took 1.9 s to start, 0.5 s so.
/usr/lib/qemu/virtiofsd --socket-path="$work/fs.sock" -o source=/ -o cache=always -o sandbox=chroot \
	-o log_level=err -f 2>"$work/virtiofsd.log" &
pids+=($!)
fsdev=()
share_arg=
if [[ -n $share ]]; then
	/usr/lib/qemu/virtiofsd --socket-path="$work/share.sock" -o source="$share" -o cache=none -o sandbox=chroot \
		-o log_level=err -f 2>"$work/virtiofsd-share.log" &
	pids+=($!)
	fsdev=(-chardev "socket,id=share,path=$work/share.sock" -device vhost-user-fs-pci,chardev=share,tag=share)
	share_arg=" rexray.share=$share"
fi
for sock in "$work/fs.sock" ${share:+"$work/share.sock"}; do
	for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
done

net=(-nic none)
run=()
if [[ -n $netns ]]; then
	tap=rxvm$$
	bridge=$(ip netns exec "$netns" ip -o link show type bridge | awk -F': ' '{ print $2; exit }')
	[[ -n $bridge ]] || { echo "vm: netns $netns has no bridge" >&2; exit 1; }
	ip netns exec "$netns" ip tuntap add dev "$tap" mode tap
	ip netns exec "$netns" ip link set "$tap" master "$bridge" up
	# qemu gives every VM one MAC address: two on a bridge would clash.
	IFS=./ read -r o1 o2 o3 o4 _ <<<"$ip"
	mac=$(printf '52:54:%02x:%02x:%02x:%02x' "$o1" "$o2" "$o3" "$o4")
	net=(-netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" -device "virtio-net-pci,netdev=n0,mac=$mac")
	run=(ip netns exec "$netns")
fi

"${run[@]}" qemu-system-x86_64 -accel tcg -cpu "${VM_CPU:-Nehalem}" -smp "$cpus" -m "$mem" -nodefaults -no-user-config \
	-display none -no-reboot \
	-object "memory-backend-memfd,id=mem,size=${mem}M,share=on" -numa node,memdev=mem \
	-chardev "socket,id=fs,path=$work/fs.sock" -device vhost-user-fs-pci,chardev=fs,tag=host \
	"${fsdev[@]}" "${net[@]}" \
	-kernel "$tree/boot/vmlinuz-$kver" -initrd "$tree/initramfs.cpio" \
	-append "console=ttyS0 quiet loglevel=1 panic=-1 rexray.init=$repo/hack/vm-init.sh rexray.repo=$repo rexray.work=$work rexray.modules=$tree/lib/modules$share_arg" \
	-serial stdio -serial "file:$work/status" </dev/null &
pids+=($!)
wait "${pids[-1]}" || true
status=$(tr -dc '0-9' <"$work/status" 2>/dev/null || true)
[[ -n $status ]] || { echo "vm: the VM stopped without the command's status" >&2; exit 1; }
exit "$status"
