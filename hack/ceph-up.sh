#!/usr/bin/env bash
# Start a throwaway single-node Ceph cluster (Debian 12's Ceph 16) whose
# data, config, logs and sockets all live under DIR: one mon, one mgr, one
# bluestore OSD on a sparse file, pool size 1, everything on 127.0.0.1 (or
# CEPH_ADDR).
# Bootstrapped by hand, without systemd or cephadm.
#
#   hack/ceph-up.sh DIR          -> prints DIR/ceph.conf and DIR/keyring, one a line
#
# DIR/etc-ceph/ is the same cluster as a client's /etc/ceph (ceph.conf naming
# /etc/ceph/keyring, and the keyring): the source of the rbd plugin's "ceph"
# mount.
#   CEPH_MON_PORT=PORT           -> the mon's msgr2 port (PORT+1 is msgr1);
#                                   default: a free one derived from DIR
#   CEPH_ADDR=10.213.1.1         -> the address the daemons listen on, for
#                                   clients in other network namespaces
#   CEPH_OSD_SIZE=8G             -> the OSD's sparse file
#   CEPH_POOL=rbd                -> an rbd pool made ready ("" for none)
#
# Stop it with hack/ceph-down.sh DIR.
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$1"
dir=$(realpath "$1")
pool=${CEPH_POOL-rbd}
addr=${CEPH_ADDR:-127.0.0.1}
network=$addr/32
[[ $addr == 127.0.0.1 ]] && network=127.0.0.0/8
for t in ceph-mon ceph-mgr ceph-osd ceph-authtool monmaptool ceph rbd; do
  command -v "$t" >/dev/null || { echo "$t is missing: run hack/setup.sh (it installs Debian's ceph packages)" >&2; exit 1; }
done
if [[ -e $dir/ceph.conf ]]; then
  echo "$dir holds a cluster already; run hack/ceph-down.sh $dir first" >&2
  exit 1
fi

port_free() { [[ -z $(ss -Hltn "sport = :$1") && -z $(ss -Hltn "sport = :$(($1 + 1))") ]]; }
if [[ -n ${CEPH_MON_PORT:-} ]]; then
  port=$CEPH_MON_PORT
  port_free "$port" || { echo "port $port or $((port + 1)) is in use; pick another CEPH_MON_PORT" >&2; exit 1; }
else
  # Derived from DIR so that two clusters (two test runs) differ, then the
  # next free pair. Outside 3300/6789 and the OSDs' 6800-7300.
  port=$((20000 + 2 * ($(printf %s "$dir" | cksum | cut -d' ' -f1) % 4000)))
  for _ in $(seq 200); do port_free "$port" && break; port=$((port + 2)); done
  port_free "$port" || { echo "no free port pair found from 20000 on" >&2; exit 1; }
fi

start=$(date +%s%N)
fsid=$(cat /proc/sys/kernel/random/uuid)
conf=$dir/ceph.conf
mkdir -p "$dir"/{mon,mgr,osd,run,log}
cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:$addr:$port,v1:$addr:$((port + 1))]
public network = $network
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
# The default warns below 30% free on the mon's filesystem, which a big,
# shared test disk crosses (HEALTH_WARN MON_DISK_LOW, seen here at 31%).
mon data avail warn = 5
auth allow insecure global id reclaim = false
# Keep memory small: this OSD serves tests.
osd memory target = 536870912
bluestore cache autotune = false
bluestore cache size = 134217728
[mon]
mon data = $dir/mon/\$cluster-\$id
[mgr]
mgr data = $dir/mgr/\$cluster-\$id
[osd]
osd data = $dir/osd/\$cluster-\$id
osd objectstore = bluestore
bluestore block path = $dir/osd/block
# Under [client], not [global]: daemons have their own keyrings, and a
# global one makes ceph-mgr fail to authenticate.
[client]
keyring = $dir/keyring
# Every client process its own socket, or the second rbd-fuse fails to bind.
admin socket = $dir/run/\$name.\$pid.asok
log file = $dir/log/\$name.\$pid.log
EOF

# stdin/stdout of daemons redirected so a caller reading our output does not hang.
q() { "$@" </dev/null >>"$dir/log/bootstrap.log" 2>&1 || { echo "failed: $*" >&2; tail -n 20 "$dir/log/bootstrap.log" >&2; exit 1; }; }
c() { ceph -c "$conf" --connect-timeout 10 "$@"; }

# Keys: the mon's, client.admin's (the keyring clients use), the OSD
# bootstrap key, all in the mon's initial keyring.
q ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *'
q ceph-authtool --create-keyring "$dir/keyring" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *'
q ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/keyring"
q monmaptool --create --addv a "[v2:$addr:$port,v1:$addr:$((port + 1))]" --fsid "$fsid" "$dir/monmap"
q ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/mon.keyring"
q ceph-mon -c "$conf" -i a --pid-file "$dir/run/mon.pid"

wait_for() { # what seconds command...
  local what=$1 n=$(($2 * 5))
  shift 2
  while ((n-- > 0)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "ceph-up: $what did not happen in time; logs are in $dir/log" >&2
  exit 1
}
wait_for "the mon answering" 30 c -s

# mgr: its key, then the daemon.
mkdir -p "$dir/mgr/ceph-x"
c auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' >"$dir/mgr/ceph-x/keyring"
q ceph-mgr -c "$conf" -i x --pid-file "$dir/run/mgr.pid"

# OSD 0: bluestore on a sparse file.
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
osd_secret=$(ceph-authtool --gen-print-key)
id=$(echo "{\"cephx_secret\": \"$osd_secret\"}" | c osd new "$osd_uuid" -i - -n client.admin)
[[ $id == 0 ]] || { echo "ceph-up: expected OSD id 0, got '$id'" >&2; exit 1; }
osd_dir=$dir/osd/ceph-0
mkdir -p "$osd_dir"
truncate -s "${CEPH_OSD_SIZE:-8G}" "$dir/osd/block"
q ceph-authtool --create-keyring "$osd_dir/keyring" --name osd.0 --add-key "$osd_secret"
q ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid"
q ceph-osd -c "$conf" -i 0 --pid-file "$dir/run/osd.pid"

if [[ -n $pool ]]; then
  c osd pool create "$pool" 8 8 >/dev/null
  c osd pool set "$pool" size 1 --yes-i-really-mean-it >/dev/null
  rbd -c "$conf" pool init "$pool"
fi

# All PGs active+clean, whatever their number (the mgr adds its own pool).
pgs_clean() {
  local json total clean
  json=$(c pg stat --format json 2>/dev/null) || return 1
  total=$(grep -o '"num_pgs": *[0-9]*' <<<"$json" | grep -o '[0-9]*$')
  clean=$(grep -o '"name": *"active+clean", *"num": *[0-9]*' <<<"$json" | grep -o '[0-9]*$' || echo 0)
  [[ -n $total && $total -gt 0 && $total == "$clean" ]] && c osd pool ls | grep -q .
}
wait_for "all PGs active+clean" 120 pgs_clean
healthy() { c health | grep -q HEALTH_OK; }
(wait_for "HEALTH_OK" 60 healthy) || { c health detail >&2; exit 1; }

mkdir -p "$dir/etc-ceph"
cat >"$dir/etc-ceph/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:$addr:$port,v1:$addr:$((port + 1))]
[client]
keyring = /etc/ceph/keyring
admin socket = /var/run/ceph/\$cluster-\$name.\$pid.asok
log file = /var/log/ceph/\$cluster-\$name.\$pid.log
EOF
cp "$dir/keyring" "$dir/etc-ceph/keyring"

echo "ceph-up: cluster $fsid on $addr:$port up in $((($(date +%s%N) - start) / 1000000)) ms" >&2
echo "$conf"
echo "$dir/keyring"
