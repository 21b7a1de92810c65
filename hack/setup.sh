#!/usr/bin/env bash
# Install what a fresh Debian 12 (as root) needs to build, run and test
# rexray. Idempotent: installs only what is missing.
set -euo pipefail

# ceph-*, rbd-fuse, rbd-nbd: the rbd driver, its plugin rootfs and its test cluster
# (rbd-nbd is RBD_ATTACH=nbd, run in the VM of hack/vm.sh).
# docker-compose: Compose v1, which the suite runs the README's Compose file with.
# debootstrap: the trees of the newer Docker engines (hack/engine.sh).
# mmdebstrap: another architecture's packages for its plugin (hack/arch-tree.sh).
# prometheus: promtool, which checks the plugin's /metrics.
# nfs-kernel-server, nfs-common: the NFS server and clients of TestNFS, which
# run in VMs (hack/vm.sh) from this host's userland.
# kmod: modprobe, for the VMs' modules (and depmod for their kernel tree).
pkgs=(docker.io docker-compose docker-registry debootstrap mmdebstrap busybox-static prometheus xfsprogs e2fsprogs util-linux openssl curl iproute2 ca-certificates git make systemd
	ceph-mon ceph-mgr ceph-osd ceph-common rbd-fuse rbd-nbd
	nfs-kernel-server nfs-common kmod)
# cryptsetup-bin: encrypted volumes (LUKS2), their tests and the plugin rootfs.
pkgs+=(cryptsetup-bin)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

export PATH=/usr/local/go/bin:$PATH
command -v go >/dev/null || { echo "setup: Go 1.26 is needed at /usr/local/go" >&2; exit 1; }
cd "$(dirname "$0")/.."
go mod download


# The plugin's default mount sources; dockerd refuses to enable a plugin
# whose bind source is missing.
install -d -m 0700 /var/lib/rexray/loopback /var/lib/rexray/state
# The keys of encrypted volumes (the plugin's keys mount).
install -d -m 0700 /var/lib/rexray/keys
