#!/usr/bin/env bash
# Remove what netns_up.sh made: every process still inside l2run-a/l2run-b is
# killed, then the namespaces (and with them the veth link) and /etc/netns/l2run-*.
# Idempotent: nothing to remove is fine.
set -uo pipefail
[ "$(id -u)" = 0 ] || { echo "netns_down.sh: run as root" >&2; exit 2; }
for host in l2run-a l2run-b; do
    if ip netns list 2>/dev/null | grep -qw "^$host"; then
        pids="$(ip netns pids "$host" 2>/dev/null)"
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
        for _ in $(seq 20); do [ -z "$(ip netns pids "$host" 2>/dev/null)" ] && break; sleep 0.25; done
        ip netns delete "$host"
    fi
    rm -rf "/etc/netns/$host"
done
rmdir /etc/netns 2>/dev/null || true              # only if empty (it held just ours)
ip link delete l2run-va >/dev/null 2>&1 || true   # only if a half set-up left it in the root namespace
exit 0
