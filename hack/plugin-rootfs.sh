#!/usr/bin/env bash
# Assemble the plugin's rootfs from our static binary and the Debian tools it
# execs (mkfs.ext4, mkfs.xfs, blkid, resize2fs, xfs_growfs) with the libraries they load. No image
# is pulled: everything comes from this machine.
#   hack/plugin-rootfs.sh BINARY ROOTFS [DRIVER]    (DRIVER: loopback, the default, rbd or virtualbox)
#
# rbd adds Ceph's client tools (rbd, rados, rbd-fuse from Debian's
# ceph-common and rbd-fuse), their libraries, and the plugins librados loads
# at run time (compressors, crypto), which ldd cannot see.
set -euo pipefail
bin=$1 root=$2 driver=${3:-loopback}

tools=(/sbin/mkfs.ext4 /sbin/mkfs.ext3 /sbin/mke2fs /sbin/mkfs.xfs /sbin/blkid /sbin/resize2fs /sbin/xfs_growfs)
case $driver in
loopback | virtualbox) ;;
rbd) tools+=(/usr/bin/rbd /usr/bin/rados /usr/bin/rbd-fuse) ;;
*) echo "plugin-rootfs: unknown driver $driver (loopback, rbd or virtualbox)" >&2; exit 2 ;;
esac

rm -rf "$root"
mkdir -p "$root"/{usr/bin,sbin,etc,tmp,dev,proc,sys,run/docker/plugins} "$root"/var/lib/rexray/{loopback,state,volumes}
chmod 1777 "$root/tmp"
install -m 0755 "$bin" "$root/usr/bin/rexray"

# copy PATH: a file with its symlink chain resolved, kept at the same path.
copy() {
	local src=$1
	mkdir -p "$root$(dirname "$src")"
	cp -L "$src" "$root$src"
}
for t in "${tools[@]}"; do
	[[ -x $t ]] || { echo "plugin-rootfs: $t is missing: run hack/setup.sh" >&2; exit 1; }
	copy "$(command -v "$t")"
	# The dynamic loader and every library, as ldd resolves them here.
	for lib in $(ldd "$t" | grep -o '/[^ ]*'); do
		copy "$lib"
	done
done
# mke2fs reads its defaults (features, inode sizes) from here.
cp /etc/mke2fs.conf "$root/etc/"

if [[ $driver == rbd ]]; then
	plugins=/usr/lib/x86_64-linux-gnu/ceph
	for dir in compressor crypto; do
		mkdir -p "$root$plugins/$dir"
		cp -a "$plugins/$dir/." "$root$plugins/$dir/"
		for lib in "$plugins/$dir"/*.so; do
			for dep in $(ldd "$lib" | grep -o '/[^ ]*'); do
				[[ -e $root$dep ]] || copy "$dep"
			done
		done
	done
	# /etc/ceph is the "ceph" mount (ceph.conf and the keyring); the
	# clients' default admin sockets and logs go under /var/run/ceph and
	# /var/log/ceph; rbd-fuse mounts under /run/rexray/rbd.
	mkdir -p "$root"/etc/ceph "$root"/var/run/ceph "$root"/var/log/ceph "$root"/run/rexray/rbd
fi
