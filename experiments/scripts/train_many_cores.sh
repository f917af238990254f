#!/usr/bin/env bash
# Train the round-2 runner on one many-core machine: one OpenSim env per core.
#
#   experiments/scripts/train_many_cores.sh [RUN_DIR] [extra `l2run train` flags...]
#
# Ranks = cores (override with RANKS=N). Each rank runs one env and a copy of the
# policy; gradients are averaged across ranks every minibatch, so N ranks collect
# N x 2048 steps per iteration. Re-running the script resumes from the run's
# latest checkpoint. Ctrl-C (or SIGTERM from a batch system) saves a checkpoint
# before exiting. Watch with `l2run plot RUN_DIR` or `tensorboard --logdir RUN_DIR/tb`.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
run_dir="${1:-runs/round2}"
shift || true
ranks="${RANKS:-$(nproc)}"
config="${CONFIG:-$here/experiments/configs/round2.toml}"
bin="${VENV:-$here/.venv}/bin"

flags=(-np "$ranks" --bind-to none)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
# More ranks than cores works but each env gets a fraction of a core.
[ "$ranks" -gt "$(nproc)" ] && flags+=(--oversubscribe)

resume=()
[ -e "$run_dir/checkpoints/latest" ] && resume=(--resume)

export OMP_NUM_THREADS=1  # one thread per rank: extra threads only fight OpenSim
exec "$bin/mpirun" "${flags[@]}" "$bin/python" -m mpi4py -m experiments.cli train \
    --config "$config" --run-dir "$run_dir" --quiet "${resume[@]}" "$@"
