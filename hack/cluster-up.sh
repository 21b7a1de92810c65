#!/usr/bin/env bash
# Bring up N Docker hosts on this machine, joined in one Swarm, each with the
# rexray plugin, all sharing one loopback store: a stand-in for N machines
# sharing a filesystem (NFS, CephFS).
#
#   hack/cluster-up.sh DIR N
#     -> one line a host on stdout: "hK unix://DIR/hK/docker.sock IP NODEID"
#   PLUGIN_SETTINGS="LOOPBACK_LEASETTL=4s ..."   extra `docker plugin set` words
#
# Each host is a network namespace (a veth to one bridge, its own address)
# with its own dockerd of the engine DOCKER_ENGINE (20.10, 26.1 or 28.5, the
# default; hack/engine.sh up ENGINE DIR/hK/d, which sees DIR and
# ENGINE_BINDS), entered with nsenter --net.
# 20.10 keeps the host's mount namespace; a newer engine has its own, which
# sees DIR at the same path (its mounts: /proc/<its dockerd>/mountinfo). The plugin comes from
# build/plugin (make plugin); its store is DIR/store, its ledger DIR/hK/state,
# its instance ID hK. Undo it all with hack/cluster-down.sh DIR.
set -euo pipefail

[[ $# -eq 2 && $2 -ge 1 && $2 -le 9 ]] || { echo "usage: $0 DIR N (1 to 9 hosts)" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
dir=$(realpath "$1")
n=$2
source "$repo/hack/cluster-names.sh"

fail() {
  echo "cluster-up: $*" >&2
  "$repo/hack/cluster-down.sh" "$dir" >&2 || true
  exit 1
}
trap 'fail "failed at line $LINENO"' ERR

[[ -f $repo/build/plugin/config.json ]] || fail "no build/plugin: run make plugin first"
ip route | grep -q "^$subnet.0/24" && fail "subnet $subnet.0/24 is in use here"

ip link add "$bridge" type bridge
ip addr add "$subnet.1/24" dev "$bridge"
ip link set "$bridge" up
# A dockerd that manages iptables (the system one, say) sets the FORWARD
# policy to DROP, and with br_netfilter loaded that policy also filters
# frames between ports of our bridge: let our hosts talk to each other.
if command -v iptables >/dev/null; then
  iptables -I FORWARD -i "$bridge" -o "$bridge" -m comment --comment "$bridge" -j ACCEPT
fi
mkdir -p -m 0700 "$dir/store"

for k in $(seq "$n"); do
  ns=$(netns "$k") host=$dir/h$k
  ip netns add "$ns"
  ip link add "$(veth "$k")" type veth peer name eth0 netns "$ns"
  ip link set "$(veth "$k")" master "$bridge" up
  ip -n "$ns" addr add "$(hostip "$k")/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  mkdir -p -m 0700 "$host/state"
  echo "starting h$k ($(hostip "$k"))" >&2
  ENGINE_BINDS="$dir ${ENGINE_BINDS:-}" nsenter --net="/run/netns/$ns" "$repo/hack/engine.sh" up "${DOCKER_ENGINE:-28.5}" "$host/d" >/dev/null
  export DOCKER_HOST=unix://$host/d/docker.sock
  "$repo/hack/import-busybox.sh" busybox:latest >/dev/null
  docker plugin create rexray/loopback:latest "$repo/build/plugin" >/dev/null
  # shellcheck disable=SC2086 # PLUGIN_SETTINGS is a list of words
  docker plugin set rexray/loopback:latest store.source="$dir/store" state.source="$host/state" \
    REXRAY_INSTANCEID="h$k" ${PLUGIN_SETTINGS:-}
  docker plugin enable rexray/loopback:latest >/dev/null
done

export DOCKER_HOST=unix://$dir/h1/d/docker.sock
docker swarm init --advertise-addr "$(hostip 1)" >/dev/null
token=$(docker swarm join-token -q worker)
for k in $(seq 2 "$n"); do
  DOCKER_HOST=unix://$dir/h$k/d/docker.sock docker swarm join --token "$token" \
    --advertise-addr "$(hostip "$k")" "$(hostip 1):2377" >/dev/null
done
for _ in $(seq 60); do
  [[ $(docker node ls --format '{{.Status}}' | grep -c Ready) -eq $n ]] && break
  sleep 1
done
[[ $(docker node ls --format '{{.Status}}' | grep -c Ready) -eq $n ]] || fail "not all $n nodes are Ready after 60s"

for k in $(seq "$n"); do
  sock=unix://$dir/h$k/d/docker.sock
  echo "h$k $sock $(hostip "$k") $(DOCKER_HOST=$sock docker info --format '{{.Swarm.NodeID}}')"
done
