#!/usr/bin/env bash
# Keep a training line in the repository: its latest checkpoint and its curve.
#
#   experiments/scripts/save_line.sh RUN_DIR [OUT_DIR=pretrained/round2]
#
# Why: runs/ is not kept from one machine to the next, and a line of training is
# hours of compute. This copies into OUT_DIR what continuing it needs, under 1 MB:
# the latest complete checkpoint (checkpoints/ckpt-N + latest: both networks, Adam,
# statistics, counters, every rank's RNG) with the policy exported at it (what
# `l2run evaluate --policy OUT_DIR` scores when OUT_DIR has no policy.npz of its own),
# config.toml, progress.csv (with parent_progress.csv and lineage.json of a run
# started with --init-from) and curves.png, which also draws the grader scores of
# the line's policies kept as OUT_DIR/reports/*-seeds*.json (`l2run evaluate --out`
# reports, named for their courses) on the distance panel. Commit OUT_DIR; on any machine
#   l2run train --config OUT_DIR/config.toml --init-from OUT_DIR --run-dir runs/NEW --ranks 2
# then continues the line exactly (same config and ranks: bit for bit). The package's
# previous checkpoint and curve files are replaced (git keeps them); its policy,
# scores and GIF are not touched (ship_pretrained.sh does those).
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
run_dir="${1:?usage: save_line.sh RUN_DIR [OUT_DIR]}"
out="${2:-$here/pretrained/round2}"
bin="${VENV:-$here/.venv}/bin"
latest="$(cat "$run_dir/checkpoints/latest" 2>/dev/null || true)"
[ -n "$latest" ] && [ -f "$run_dir/checkpoints/$latest/arrays.npz" ] \
    || { echo "no complete checkpoint in $run_dir/checkpoints: nothing to save (train first)" >&2; exit 2; }
mkdir -p "$out"
cp "$run_dir/config.toml" "$run_dir/progress.csv" "$out/"
for extra in parent_progress.csv lineage.json; do
    if [ -f "$run_dir/$extra" ]; then cp "$run_dir/$extra" "$out/"; else rm -f "$out/$extra"; fi
done
rm -rf "$out/checkpoints.new" && mkdir -p "$out/checkpoints.new"
cp -r "$run_dir/checkpoints/$latest" "$out/checkpoints.new/"
# The policy exported with that checkpoint, so that `l2run evaluate --policy OUT_DIR`
# scores the line (written right after the checkpoint: check it is the same iteration).
if [ -f "$run_dir/policy.npz" ] && "$bin/python" - "$run_dir/policy.npz" "$run_dir/checkpoints/$latest" <<'PY'
import json, sys
from pathlib import Path
from baselines_ppo import export
policy = export.load_policy(sys.argv[1]).metadata.get("training", {}).get("iteration")
checkpoint = json.loads((Path(sys.argv[2]) / "state.json").read_text())["iteration"]
sys.exit(0 if policy == checkpoint else 1)
PY
then
    cp "$run_dir/policy.npz" "$out/checkpoints.new/$latest/"
else
    echo "note: $run_dir/policy.npz is not the policy of $latest; the saved line has no policy to evaluate" >&2
fi
echo "$latest" > "$out/checkpoints.new/latest"
rm -rf "$out/checkpoints" && mv "$out/checkpoints.new" "$out/checkpoints"
shopt -s nullglob
scored=("$out"/reports/*-seeds*.json)
"$bin/l2run" plot "$run_dir" --out "$out/curves.png" ${scored[@]:+--scores "${scored[@]}"} > /dev/null
echo "saved the line of $run_dir ($latest) to $out"
