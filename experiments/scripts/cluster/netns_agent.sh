#!/usr/bin/env bash
# Open MPI's remote launch agent for netns_up.sh's "hosts", in place of ssh:
#
#   PRTE_MCA_plm_ssh_agent=experiments/scripts/cluster/netns_agent.sh
#
# PRRTE calls it as it would call ssh: `agent [ssh options] HOST COMMAND...`, with
# COMMAND a shell command line that starts prted. The options are ignored; the
# command runs under /bin/sh on HOST (its namespace, see on_host.sh), like ssh
# would run it in a login shell there.
set -euo pipefail
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done   # ssh options such as -x
host="${1:-}"
[ $# -ge 2 ] || { echo "netns_agent.sh: usage: netns_agent.sh HOST COMMAND..." >&2; exit 2; }
shift
exec "$(dirname "$0")/on_host.sh" "$host" /bin/sh -c "$*"
