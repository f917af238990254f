#!/usr/bin/env bash
# Package a training run as a pretrained runner: policy, config, curves, GIF, scores.
#
#   experiments/scripts/ship_pretrained.sh RUN_DIR [OUT_DIR=pretrained/round2] [EPISODES=10]
#
# Takes RUN_DIR's best_policy.npz (the best mean training distance so far; set
# POLICY=path to ship another, e.g. one picked on held-out seeds), scores it
# like the 2017 grader (Runge-Kutta-Merson at 1e-3, round-2 course, seeds 0..EPISODES-1,
# split over the cores), and writes into OUT_DIR: policy.npz, config.toml,
# progress.csv (and parent_progress.csv, lineage.json of a run started with --init-from),
# curves.png, gait.gif (the median episode; its seed in gait_seed.txt), evaluation.json,
# and the line's latest checkpoint
# (save_line.sh), so that on any machine
#   l2run train --config OUT_DIR/config.toml --init-from OUT_DIR --run-dir runs/NEW --ranks 2
# continues the very line that produced the runner.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
run_dir="${1:?usage: ship_pretrained.sh RUN_DIR [OUT_DIR] [EPISODES]}"
out="${2:-$here/pretrained/round2}"
episodes="${3:-10}"
bin="${VENV:-$here/.venv}/bin"
policy="${POLICY:-$run_dir/best_policy.npz}"
[ -f "$policy" ] || { echo "no policy file $policy: train first, or set POLICY to an exported .npz" >&2; exit 2; }
[ -f "$run_dir/checkpoints/latest" ] \
    || { echo "no complete checkpoint in $run_dir/checkpoints: cannot ship the line's checkpoint" >&2; exit 2; }
"$here/experiments/scripts/save_line.sh" "$run_dir" "$out"  # checkpoint, config, curves
cp "$policy" "$out/policy.npz"
"$bin/l2run" evaluate --policy "$out/policy.npz" --episodes "$episodes" --difficulty 2 --max-obstacles 10 \
    --accuracy 1e-3 --seed 0 --ranks "$(nproc)" --quiet --out "$out/evaluation.json"
# The GIF shows a representative episode: the one whose score is the median's
# (the lower middle one of an even count), not whatever seed 0 happens to give.
seed="$("$bin/python" - "$out/evaluation.json" <<'PY'
import json, sys
episodes = sorted(json.load(open(sys.argv[1]))["episodes"], key=lambda e: (e["score"], e["seed"]))
print(episodes[(len(episodes) - 1) // 2]["seed"])
PY
)"
"$bin/l2run" render --policy "$out/policy.npz" --out "$out/gait.gif" --seed "$seed" --every 5 --fps 20 \
    --width 480 --height 270  # real time, small enough to commit
echo "$seed" > "$out/gait_seed.txt"
echo "shipped $run_dir to $out"
