#!/bin/bash
# Helpers for an NFS client VM of the NFS tests, sourced by the scripts a
# test runs through hack/vm-agent.sh. Each rexray is a host-mode plugin
# (REXRAY_INSTANCEID=$ID) on the loopback store $RX/store of an NFS mount.
#   nfs_mount SERVER:PATH OPTS   mounts the export at $RX/nfs with -o OPTS
#                                (vers=3: with locking, statd started)
#   rx_serve [ENV...]            (re)starts rexray serve, waits till it serves
#   rx ARGS...                   the operator CLI against it
#   rx_stop                      stops it (SIGTERM, by PID)
set -u
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${RX:?}" "${ID:?}"
mkdir -p "$RX"

nfs_mount() {
	local export=$1 opts=$2
	if [[ $opts == *vers=3* ]] && ! pgrep -x rpc.statd >/dev/null; then
		mountpoint -q /var/lib/nfs || mount -t tmpfs tmpfs /var/lib/nfs
		mkdir -p /var/lib/nfs/sm /var/lib/nfs/sm.bak
		rpcbind -w && rpc.statd --no-notify
	fi
	mkdir -p "$RX/nfs"
	mount -t nfs -o "$opts" "$export" "$RX/nfs"
	mkdir -p "$RX/nfs/store"
}

rx_env() {
	echo REXRAY_INSTANCEID="$ID" REXRAY_HOST="unix://$RX/rexray.sock" REXRAY_STATEDIR="$RX/state" \
		LOOPBACK_VOLUMEPATH="$RX/nfs/store" LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_MOUNT_PATH="$RX/mnt" \
		REXRAY_LOGLEVEL=debug
}

rx_serve() {
	rx_stop
	[[ ! -f $RX/serve.log ]] || cat "$RX/serve.log" >>"$RX/serve.old.log"
	# shellcheck disable=SC2046
	env $(rx_env) "$@" setsid "$repo/bin/rexray" serve >"$RX/serve.log" 2>&1 </dev/null &
	echo $! >"$RX/serve.pid"
	for _ in $(seq 300); do
		[[ -S $RX/rexray.sock ]] && grep -q ' serving ' "$RX/serve.log" && return 0
		kill -0 "$(cat "$RX/serve.pid")" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 20 "$RX/serve.log"
	return 1
}

rx() {
	# shellcheck disable=SC2046
	env $(rx_env) "$repo/bin/rexray" "$@"
}

rx_stop() {
	local pid
	[[ -f $RX/serve.pid ]] || return 0
	pid=$(cat "$RX/serve.pid")
	kill "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	rm -f "$RX/serve.pid"
}
