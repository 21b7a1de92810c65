#!/usr/bin/env bash
# Let this host run ARCH's binaries, in containers and plugins too: qemu-user
# registered in binfmt_misc as rexray-ARCH with the F flag (the kernel opens
# the emulator once, here, so a rootfs without it runs it as well).
#   hack/binfmt.sh ARCH    ARCH: arm64
#   QEMU_CACHE=DIR  where the emulator is kept (/var/cache/rexray/qemu)
#
# The emulator is trixie's qemu-user (10.0), unpacked, not installed:
# bookworm's (7.2) lacks the BLKBSZSET ioctl, and mkfs.xfs fails with
# "cannot set blocksize 512 on block device: Function not implemented".
# Entries added last are matched first, so this one wins over any other
# registration of the same format. Safe to run twice.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 ARCH" >&2; exit 2; }
case $1 in
arm64) qarch=aarch64 ;;
*) echo "binfmt: unknown architecture $1 (arm64)" >&2; exit 2 ;;
esac
# The ELF header of an aarch64 executable, as Debian's qemu registers it.
magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
cache=${QEMU_CACHE:-/var/cache/rexray/qemu}
qemu=$cache/usr/bin/qemu-$qarch

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [[ ! -x $qemu ]]; then
	apt=$cache/apt
	mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" >"$apt/sources.list"
	opts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" -o Acquire::Check-Valid-Until=false
		-o APT::Sandbox::User=root)
	apt-get "${opts[@]}" -qq update
	(cd "$apt" && apt-get "${opts[@]}" -qq download qemu-user)
	dpkg-deb -x "$apt"/qemu-user_*.deb "$cache"
	rm -f "$apt"/qemu-user_*.deb
	[[ -x $qemu ]] || { echo "binfmt: trixie's qemu-user has no $qemu" >&2; exit 1; }
fi

misc=/proc/sys/fs/binfmt_misc
[[ -f $misc/register ]] || mount -t binfmt_misc binfmt_misc "$misc"
entry=$misc/rexray-$qarch
if [[ -f $entry ]]; then
	grep -qx "interpreter $qemu" "$entry" && grep -q '^flags:.*F' "$entry" && grep -qx enabled "$entry" && exit 0
	echo -1 >"$entry"
fi
echo ":rexray-$qarch:M::$magic:$mask:$qemu:F" >"$misc/register"
