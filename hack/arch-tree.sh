#!/usr/bin/env bash
# A folder holding Debian's ARCH packages of the tools a DRIVER's plugin
# rootfs carries, with their libraries, of the same source versions as the
# host's: what hack/plugin-rootfs.sh copies from for another architecture.
#   hack/arch-tree.sh ARCH DRIVER    ARCH: a Debian architecture (arm64, amd64)
#     -> prints the folder
#   ARCH_CACHE=DIR   where the trees are kept (/var/cache/rexray/arch)
#
# The packages are only unpacked (mmdebstrap's extract variant): nothing of
# them runs here, so no emulator is needed to build. A tree is kept per
# architecture, driver and host versions, and rebuilt when those change.
set -euo pipefail

[[ $# -eq 2 ]] || { echo "usage: $0 ARCH DRIVER" >&2; exit 2; }
arch=$1 driver=$2
cache=${ARCH_CACHE:-/var/cache/rexray/arch}
mirror=http://deb.debian.org/debian

pkgs=(e2fsprogs xfsprogs util-linux)
pkgs+=(cryptsetup-bin)
case $driver in
loopback | virtualbox) ;;
# libsnappy1v5: a compressor plugin librados loads, which ceph-common does not depend on.
rbd) pkgs+=(ceph-common rbd-fuse rbd-nbd libsnappy1v5) ;;
*) echo "arch-tree: unknown driver $driver (loopback, rbd or virtualbox)" >&2; exit 2 ;;
esac

# The host's source version of each package: the tree must hold the same.
declare -A want
for p in "${pkgs[@]}"; do
	want[$p]=$(dpkg-query -W -f '${source:Version}' "$p" 2>/dev/null) ||
		{ echo "arch-tree: $p is not installed here: run hack/setup.sh" >&2; exit 1; }
done
key=$(for p in "${pkgs[@]}"; do echo "$p=${want[$p]}"; done | sha256sum | cut -c1-12)
tree=$cache/$arch-$driver-$key

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [[ ! -f $tree/.rexray-arch-tree ]]; then
	command -v mmdebstrap >/dev/null || { echo "arch-tree: mmdebstrap is missing (make setup installs it)" >&2; exit 1; }
	echo "arch-tree: unpacking Debian's $arch ${pkgs[*]} into $tree" >&2
	rm -rf --one-file-system "$tree.new"
	mmdebstrap --quiet --architectures="$arch" --variant=extract --include="$(IFS=,; echo "${pkgs[*]}")" \
		--skip=cleanup/apt/cache bookworm "$tree.new" \
		"deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
		"deb http://deb.debian.org/debian-security bookworm-security main" >&2
	# A binary rebuild for one architecture (1.47.0-2+b2) keeps the source
	# version: compare that.
	for p in "${pkgs[@]}"; do
		debs=("$tree.new"/var/cache/apt/archives/"${p}"_*_{"$arch",all}.deb)
		deb=
		for d in "${debs[@]}"; do [[ -f $d ]] && deb=$d && break; done
		[[ -n $deb ]] || { echo "arch-tree: no $arch package of $p was unpacked" >&2; exit 1; }
		got=$(dpkg-deb -f "$deb" Source Version | sed -n 's/^Source: .*(\(.*\))$/\1/p;s/^Version: //p' | head -1)
		[[ $got == "${want[$p]}" ]] ||
			{ echo "arch-tree: Debian's $arch $p is $got, the host's is ${want[$p]}: update the host (apt-get upgrade $p)" >&2; exit 1; }
	done
	rm -rf "$tree.new/var/cache/apt/archives"
	touch "$tree.new/.rexray-arch-tree"
	mv "$tree.new" "$tree"
fi
echo "$tree"
