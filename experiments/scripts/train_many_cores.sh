#!/usr/bin/env bash
# Train the round-2 runner on one many-core machine: one OpenSim env per core.
#
#   experiments/scripts/train_many_cores.sh [RUN_DIR] [extra `l2run train` flags...]
#
# Ranks = cores (override with RANKS=N, the config with CONFIG=path). Each rank runs
# one env and a copy of the policy; gradients are averaged across ranks every
# minibatch, so N ranks collect N x steps_per_rank steps per iteration (the config's
# batch schedule: 2048 per rank for the first 1M steps, then 8192). Re-running the script
# resumes from the run's latest checkpoint. `l2run train --ranks N` starts mpirun
# itself and turns Ctrl-C or SIGTERM (from you or a batch system) into "finish the
# iteration, save a checkpoint, exit"; a second Ctrl-C aborts at once. Watch with
# `l2run plot RUN_DIR` or `tensorboard --logdir RUN_DIR/tb`.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
run_dir="${1:-runs/round2}"
shift || true
ranks="${RANKS:-$(nproc)}"
config="${CONFIG:-$here/experiments/configs/round2.toml}"
bin="${VENV:-$here/.venv}/bin"

# --resume starts a fresh run when RUN_DIR has no checkpoint yet.
exec "$bin/l2run" train --config "$config" --ranks "$ranks" --run-dir "$run_dir" --resume --quiet "$@"
