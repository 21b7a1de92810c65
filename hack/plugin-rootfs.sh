#!/usr/bin/env bash
# Assemble the plugin's rootfs from our static binary and the Debian tools it
# execs (mkfs.ext4, mkfs.xfs, blkid) with the libraries they load. No image
# is pulled: everything comes from this machine.
#   hack/plugin-rootfs.sh BINARY ROOTFS
set -euo pipefail
bin=$1 root=$2

tools=(/sbin/mkfs.ext4 /sbin/mkfs.ext3 /sbin/mke2fs /sbin/mkfs.xfs /sbin/blkid)

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
	copy "$(command -v "$t")"
	# The dynamic loader and every library, as ldd resolves them here.
	for lib in $(ldd "$t" | grep -o '/[^ ]*'); do
		copy "$lib"
	done
done
# mke2fs reads its defaults (features, inode sizes) from here.
cp /etc/mke2fs.conf "$root/etc/"
