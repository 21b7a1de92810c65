#!/bin/bash
# The NFS server of the NFS tests, run as a hack/vm.sh VM's command: an
# ext4 folder on a loop device in the VM's /tmp, exported to NET over NFSv3
# and NFSv4.2, until the file DIR/stop appears. The file DIR/restart,
# holding a number of seconds, stops nfsd (its NFSv4 state is lost) for
# that long and starts it again (a grace period begins).
#   hack/vm.sh --net NS --ip ADDR/LEN --share DIR -- hack/vm-nfs-server.sh NET DIR
# Prints "nfs: serving" once clients may mount ADDR:/ (v4, the export is
# its root) or ADDR:/tmp/export (v3). The lease and grace times (NFSv4's
# and the NFSv3 lock manager's) are short (10 s), so that a restarted server and a dead client cost seconds, not
# the 90 s defaults.
set -euo pipefail
net=${1:?usage: vm-nfs-server.sh NET DIR} dir=${2:?usage: vm-nfs-server.sh NET DIR}
modprobe loop
truncate -s 4G /tmp/export.img
mkfs.ext4 -q -F /tmp/export.img
mkdir -p /tmp/export
mount -o loop /tmp/export.img /tmp/export
# The host's userland is read-only: what the daemons write goes to tmpfs.
mount -t tmpfs tmpfs /var/lib/nfs
mkdir -p /var/lib/nfs/{sm,sm.bak,v4recovery,rpc_pipefs}
: >/var/lib/nfs/etab && : >/var/lib/nfs/rmtab
modprobe nfsd
mount -t nfsd nfsd /proc/fs/nfsd
mount -t rpc_pipefs rpc_pipefs /var/lib/nfs/rpc_pipefs 2>/dev/null || true
echo 10 >/proc/fs/nfsd/nfsv4leasetime
echo 10 >/proc/fs/nfsd/nfsv4gracetime
echo 10 >/proc/sys/fs/nfs/nlm_grace_period
rpcbind -w
rpc.statd --no-notify
exportfs -o rw,sync,no_root_squash,no_subtree_check,fsid=0 "$net:/tmp/export"
rpc.mountd
rpc.nfsd 8
echo "nfs: serving /tmp/export to $net"
while [[ ! -e $dir/stop ]]; do
	if [[ -e $dir/restart ]]; then
		down=$(cat "$dir/restart")
		rm -f "$dir/restart"
		rpc.nfsd 0
		echo "nfs: stopped for ${down}s"
		sleep "$down"
		rpc.nfsd 8
		echo "nfs: serving again"
	fi
	sleep 0.2
done
rpc.nfsd 0
exportfs -ua
umount /tmp/export
echo "nfs: stopped"
