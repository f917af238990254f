#!/usr/bin/env bash
# Run a command on one of netns_up.sh's "hosts": inside its network namespace,
# with its /etc/hosts and, in a UTS namespace of its own, its hostname.
#
#   experiments/scripts/cluster/on_host.sh l2run-a|l2run-b COMMAND [ARGS...]
set -euo pipefail
host="${1:-}"
case "$host" in
    l2run-a|l2run-b) ;;
    *) echo "on_host.sh: first argument must be l2run-a or l2run-b, got '$host'" >&2; exit 2 ;;
esac
shift
[ $# -ge 1 ] || { echo "on_host.sh: no command given" >&2; exit 2; }
ip netns list | grep -qw "^$host" || { echo "on_host.sh: no namespace $host: run netns_up.sh first" >&2; exit 2; }
exec ip netns exec "$host" unshare --uts -- /bin/sh -c 'hostname "$0" && exec "$@"' "$host" "$@"
