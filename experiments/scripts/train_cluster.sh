#!/usr/bin/env bash
# Train across several machines with an Open MPI hostfile.
#
#   experiments/scripts/train_cluster.sh HOSTFILE [RUN_DIR] [extra `l2run train` flags...]
#
# HOSTFILE lists one machine per line with its core count, e.g.
#     node01 slots=36
#     node02 slots=36
# Every machine needs the same checkout at the same path with its .venv built
# (`make install`), passwordless ssh from this machine, and the run directory on a
# shared file system (rank 0 writes checkpoints and logs; every rank reads them
# on --resume). Ranks = total slots unless RANKS=N is set. Re-running resumes.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
hostfile="${1:?usage: train_cluster.sh HOSTFILE [RUN_DIR] [flags...]}"
run_dir="${2:-runs/round2-cluster}"
shift $(( $# >= 2 ? 2 : 1 ))
[ -r "$hostfile" ] || { echo "hostfile not readable: $hostfile" >&2; exit 2; }
slots=$(awk '!/^#/ && NF { n = 1; for (i = 2; i <= NF; i++) if ($i ~ /^slots=/) { split($i, a, "="); n = a[2] } total += n } END { print total + 0 }' "$hostfile")
ranks="${RANKS:-$slots}"
config="${CONFIG:-$here/experiments/configs/round2.toml}"
bin="${VENV:-$here/.venv}/bin"

flags=(-np "$ranks" --hostfile "$hostfile" --bind-to none -x OMP_NUM_THREADS=1 -x PATH)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)

resume=()
[ -e "$run_dir/checkpoints/latest" ] && resume=(--resume)

exec "$bin/mpirun" "${flags[@]}" "$bin/python" -m mpi4py -m experiments.cli train \
    --config "$config" --run-dir "$run_dir" --quiet "${resume[@]}" "$@"
