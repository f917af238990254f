#!/usr/bin/env bash
# Train across several machines with an Open MPI hostfile.
#
#   experiments/scripts/train_cluster.sh HOSTFILE [RUN_DIR] [extra `l2run train` flags...]
#
# HOSTFILE lists one machine per line with its core count, e.g.
#     node01 slots=36
#     node02 slots=36
# Every machine needs the same checkout at the same path with its .venv built
# (`make install`) and passwordless ssh from this machine. Rank 0 (on the first
# host) reads the config and writes checkpoints and logs, so RUN_DIR need only
# exist there; keep it on a shared file system if rank 0 may land elsewhere next
# time. Ranks = total slots unless RANKS=N is set. Re-running resumes; Ctrl-C or
# SIGTERM saves a checkpoint first (see train_many_cores.sh). A rank that dies
# (machine lost, OOM kill) ends the whole job with a message; re-run to resume from
# the last checkpoint.
#
# Open MPI (PRRTE) starts its daemon on the other machines with ssh; to use another
# launcher, export PRTE_MCA_plm_ssh_agent=/path/to/agent (called as `agent HOST
# COMMAND...`). `make test-cluster` runs this script across two network namespaces
# that way (experiments/scripts/cluster/netns_agent.sh; see docs/cluster.md):
#     printf 'l2run-a slots=1\nl2run-b slots=1\n' > hosts
#     experiments/scripts/cluster/on_host.sh l2run-a env \
#         PRTE_MCA_plm_ssh_agent=$PWD/experiments/scripts/cluster/netns_agent.sh \
#         CONFIG=experiments/configs/quick.toml experiments/scripts/train_cluster.sh hosts runs/two-hosts --iterations 5
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
[ $# -ge 1 ] && [ -n "$1" ] || { echo "usage: train_cluster.sh HOSTFILE [RUN_DIR] [l2run train flags...]" >&2; exit 2; }
hostfile="$1"
run_dir="${2:-runs/round2-cluster}"
shift $(( $# >= 2 ? 2 : 1 ))
[ -r "$hostfile" ] || { echo "hostfile not readable: $hostfile" >&2; exit 2; }
slots=$(awk '!/^#/ && NF { n = 1; for (i = 2; i <= NF; i++) if ($i ~ /^slots=/) { split($i, a, "="); n = a[2] } total += n } END { print total + 0 }' "$hostfile")
[ "$slots" -ge 1 ] || { echo "hostfile $hostfile names no host (one per line: NAME slots=N)" >&2; exit 2; }
ranks="${RANKS:-$slots}"
config="${CONFIG:-$here/experiments/configs/round2.toml}"
bin="${VENV:-$here/.venv}/bin"

exec "$bin/l2run" train --config "$config" --ranks "$ranks" --hostfile "$hostfile" --run-dir "$run_dir" \
    --resume --quiet "$@"
