#!/usr/bin/env bash
# Assemble the plugin's rootfs from our static binary and the Debian tools it
# execs (mkfs.ext4, mkfs.xfs, blkid, resize2fs, xfs_growfs, cryptsetup) with the libraries they load. No image
# is pulled: everything comes from this machine's packages, or for another
# architecture from Debian's packages of the same versions (hack/arch-tree.sh).
#   hack/plugin-rootfs.sh BINARY ROOTFS [DRIVER [ARCH]]
#     DRIVER: loopback (the default), rbd or virtualbox
#     ARCH: a Debian architecture, the host's by default; BINARY must be built for it
#
# rbd adds Ceph's client tools (rbd, rados, rbd-fuse, rbd-nbd from Debian's
# ceph-common, rbd-fuse and rbd-nbd: `rbd device map -t nbd` runs rbd-nbd),
# their libraries, and the plugins librados loads
# at run time (compressors, crypto), which no ELF header names.
set -euo pipefail
bin=$1 root=$2 driver=${3:-loopback} arch=${4:-$(dpkg --print-architecture)}

tools=(/sbin/mkfs.ext4 /sbin/mkfs.ext3 /sbin/mke2fs /sbin/mkfs.xfs /sbin/blkid /sbin/resize2fs /usr/sbin/xfs_growfs)
# cryptsetup: encrypted volumes (LUKS2 on dm-crypt), for every driver.
tools+=(/sbin/cryptsetup)
case $driver in
loopback | virtualbox) ;;
rbd) tools+=(/usr/bin/rbd /usr/bin/rados /usr/bin/rbd-fuse /usr/bin/rbd-nbd) ;;
*) echo "plugin-rootfs: unknown driver $driver (loopback, rbd or virtualbox)" >&2; exit 2 ;;
esac
case $arch in
amd64) triplet=x86_64-linux-gnu ;;
arm64) triplet=aarch64-linux-gnu ;;
*) echo "plugin-rootfs: unknown architecture $arch (amd64 or arm64)" >&2; exit 2 ;;
esac

# tree: where the tools and libraries are read from.
tree=
if [[ $arch != "$(dpkg --print-architecture)" ]]; then
	tree=$("$(dirname "$0")/arch-tree.sh" "$arch" "$driver")
fi

rm -rf "$root"
mkdir -p "$root"/{usr/bin,sbin,etc,tmp,dev,proc,sys,run/docker/plugins} "$root"/var/lib/rexray/{loopback,state,volumes}
chmod 1777 "$root/tmp"
install -m 0755 "$bin" "$root/usr/bin/rexray"

# real PATH: PATH in the tree with its symlinks followed inside the tree
# (an absolute link means the tree's root, not the host's).
real() {
	local p=$1 target n=0
	while [[ -L $tree$p ]]; do
		target=$(readlink "$tree$p")
		[[ $target == /* ]] || target=$(dirname "$p")/$target
		p=$target
		((++n < 40)) || { echo "plugin-rootfs: $1: too many links" >&2; return 1; }
	done
	echo "$tree$p"
}

# copy PATH: the tree's file at PATH, its links followed, kept at PATH.
copy() {
	mkdir -p "$root$(dirname "$1")"
	cp -L "$(real "$1")" "$root$1"
}

# find_lib NAME RUNPATH: where the loader finds library NAME.
find_lib() {
	local dir
	for dir in ${2//:/ } /lib/$triplet /usr/lib/$triplet /lib /usr/lib; do
		[[ -e $tree$dir/$1 ]] && { echo "$dir/$1"; return; }
	done
	return 1
}

# with_libs PATH: copy PATH, its loader and every library it loads, as the
# ELF headers name them (the same for every architecture, unlike ldd).
declare -A copied
with_libs() {
	local f=$1 file interp runpath lib dep
	[[ -n ${copied[$f]:-} ]] && return
	copied[$f]=1
	[[ -e $root$f ]] || copy "$f"
	file=$(real "$f")
	interp=$(readelf -lW "$file" | sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p')
	[[ -z $interp ]] || with_libs "$interp"
	runpath=$(readelf -dW "$file" | sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]$/\2/p')
	for lib in $(readelf -dW "$file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
		dep=$(find_lib "$lib" "$runpath") || { echo "plugin-rootfs: $f needs $lib, not found in ${tree:-/}" >&2; return 1; }
		with_libs "$dep"
	done
}

for t in "${tools[@]}"; do
	[[ -x $tree$t ]] || { echo "plugin-rootfs: $tree$t is missing: run hack/setup.sh" >&2; exit 1; }
	with_libs "$t"
done
# mke2fs reads its defaults (features, inode sizes) from here.
cp "$tree/etc/mke2fs.conf" "$root/etc/"
# cryptsetup's locks of the devices it formats and opens.
mkdir -p "$root/run/cryptsetup"

if [[ $driver == rbd ]]; then
	plugins=/usr/lib/$triplet/ceph
	for dir in compressor crypto; do
		[[ -d $tree$plugins/$dir ]] || continue # crypto's are x86 only
		mkdir -p "$root$plugins/$dir"
		cp -a "$tree$plugins/$dir/." "$root$plugins/$dir/"
		for lib in "$tree$plugins/$dir"/*.so; do
			with_libs "${lib#"$tree"}"
		done
	done
	# /etc/ceph is the "ceph" mount (ceph.conf and the keyring); the
	# clients' default admin sockets and logs go under /var/run/ceph and
	# /var/log/ceph; rbd-fuse mounts under /run/rexray/rbd.
	mkdir -p "$root"/etc/ceph "$root"/var/run/ceph "$root"/var/log/ceph "$root"/run/rexray/rbd
fi
