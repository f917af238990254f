#!/usr/bin/env bash
# Make two "hosts" on this machine: network namespaces l2run-a and l2run-b joined by a
# virtual ethernet link, each with its own address and name.
#
#   sudo experiments/scripts/cluster/netns_up.sh      # then: on_host.sh l2run-a CMD...
#   sudo experiments/scripts/cluster/netns_down.sh
#
#   l2run-a  10.213.0.1/24  (veth l2run-va)  <---->  (veth l2run-vb)  10.213.0.2/24  l2run-b
#
# Private addresses on a link that has no other end: no traffic leaves the machine
# (the namespaces have no default route). Each namespace gets /etc/netns/NAME/hosts,
# which `ip netns exec` mounts over /etc/hosts there, so both names resolve on both
# "hosts"; on_host.sh also gives each its own hostname (a UTS namespace). Open MPI
# reaches l2run-b through netns_agent.sh instead of ssh. Override the addresses
# with SUBNET=10.x.y (the /24 must be free here). Idempotent (a previous set-up is
# removed first); on a failure, what was created is removed again.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
subnet="${SUBNET:-10.213.0}"
die() { echo "netns_up.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "run as root (it creates network namespaces)"
[ $# -eq 0 ] || die "takes no arguments (set SUBNET=10.x.y to change the addresses)"
[[ "$subnet" =~ ^10\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "SUBNET must look like 10.x.y (a private /24), got '$subnet'"
if ! command -v ip >/dev/null || ! command -v unshare >/dev/null; then
    command -v apt-get >/dev/null || die "ip (iproute2) or unshare (util-linux) missing"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 util-linux; } >/dev/null \
        || die "apt-get install iproute2 util-linux failed"
fi
if ip -o addr show | grep -q " inet $subnet\."; then
    ip netns list | grep -q '^l2run-a' || die "$subnet.0/24 is already used on this machine: set SUBNET=10.x.y"
fi

"$here/netns_down.sh" >/dev/null 2>&1 || true
trap 'status=$?; if [ $status -ne 0 ]; then echo "netns_up.sh: failed, removing the namespaces again" >&2; "$here/netns_down.sh" >/dev/null 2>&1 || true; fi' EXIT

ip netns add l2run-a
ip netns add l2run-b
ip link add l2run-va type veth peer name l2run-vb
ip link set l2run-va netns l2run-a
ip link set l2run-vb netns l2run-b
i=1
for host in l2run-a l2run-b; do
    dev="l2run-v${host#l2run-}"
    ip -n "$host" link set lo up
    ip -n "$host" addr add "$subnet.$i/24" dev "$dev"
    ip -n "$host" link set "$dev" up
    mkdir -p "/etc/netns/$host"
    printf '127.0.0.1 localhost\n%s.1 l2run-a\n%s.2 l2run-b\n' "$subnet" "$subnet" > "/etc/netns/$host/hosts"
    echo "$host" > "/etc/netns/$host/hostname"
    i=$((i + 1))
done
for _ in $(seq 20); do   # the veth pair comes up once both ends are up
    ip -n l2run-a -br link show l2run-va | grep -q ' UP ' && ip -n l2run-b -br link show l2run-vb | grep -q ' UP ' && break
    sleep 0.25
done
ip -n l2run-a -br link show l2run-va | grep -q ' UP ' || die "the link l2run-va <-> l2run-vb did not come up"
echo "netns_up.sh: l2run-a ($subnet.1) <-> l2run-b ($subnet.2) up"
