#!/usr/bin/env bash
# Two network namespaces joined by a veth pair: two "hosts" on one machine for the data-parallel
# tests and the scaling measurement. Needs root (CI runs as root).
#   netns.sh up PREFIX     makes PREFIX-0 (10.77.0.1) and PREFIX-1 (10.77.0.2); prints their addresses
#   netns.sh down PREFIX   removes them (the veth pair goes with them)
# Run a rank in one with: ip netns exec PREFIX-0 COMMAND  (temper launch --through "ip netns exec PREFIX-{rank} sh -c").
set -euo pipefail
command=${1:?usage: netns.sh up|down PREFIX}
prefix=${2:?usage: netns.sh up|down PREFIX}
case "$command" in
  up)
    ip netns add "$prefix-0"
    ip netns add "$prefix-1"
    ip link add "${prefix:0:8}-a" type veth peer name "${prefix:0:8}-b"
    ip link set "${prefix:0:8}-a" netns "$prefix-0"
    ip link set "${prefix:0:8}-b" netns "$prefix-1"
    ip -n "$prefix-0" addr add 10.77.0.1/24 dev "${prefix:0:8}-a"
    ip -n "$prefix-1" addr add 10.77.0.2/24 dev "${prefix:0:8}-b"
    for n in 0 1; do
      ip -n "$prefix-$n" link set lo up
    done
    ip -n "$prefix-0" link set "${prefix:0:8}-a" up
    ip -n "$prefix-1" link set "${prefix:0:8}-b" up
    echo "10.77.0.1,10.77.0.2"
    ;;
  down)
    ip netns del "$prefix-0" 2>/dev/null || true
    ip netns del "$prefix-1" 2>/dev/null || true
    ;;
  *) echo "usage: netns.sh up|down PREFIX" >&2; exit 2 ;;
esac
