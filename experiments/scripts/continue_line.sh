#!/usr/bin/env bash
# Continue a training line kept in the repository, on this machine, and keep it saved.
#
#   experiments/scripts/continue_line.sh [LINE_DIR=pretrained/round2] [RUN_DIR=runs/NAME]
#
# Why: a long line lives in the repository as a resumable checkpoint (save_line.sh,
# keep_line.sh), because runs/ does not outlive the machine. Picking it up again by
# hand takes three decisions that are easy to get wrong at the start of a period of
# work: resume RUN_DIR or start from LINE_DIR (a stale runs/ left from an earlier
# period would go back in time), with the line's number of ranks (the continuation
# is bit for bit only with the same), and the watcher that saves it, without which a
# period cut off loses everything since the last save. This makes them:
#
# * RUN_DIR holds a checkpoint at least as far as LINE_DIR's: `--resume` it;
# * RUN_DIR does not exist: `--init-from LINE_DIR` into it;
# * RUN_DIR exists but is behind LINE_DIR (or has no checkpoint): nothing in it is
#   touched; the line goes on from LINE_DIR in RUN_DIR-ITERATION instead.
#
# Both jobs run in the background (nohup), so the shell may close: the trainer logs
# to RUN_DIR.log, and keep_line.sh saves RUN_DIR into LINE_DIR at every checkpoint and
# once more when the trainer exits (RUN_DIR.keep_line.log). The script returns once
# the trainer holds its run directory (or prints the log's tail and fails if it
# exits before). Stop with `l2run stop RUN_DIR`, then commit LINE_DIR.
# RANKS (default: as many as the line's checkpoint was trained with) and ITERATIONS
# (stop once this many iterations exist in total) are passed to `l2run train`.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
line="${1:-$here/pretrained/round2}"
run_dir="${2:-$here/runs/$(basename "$line")}"
bin="${VENV:-$here/.venv}/bin"
start_wait="${START_WAIT:-300}"

iteration_of() {  # the iteration of a directory's latest complete checkpoint; fails if it has none
    local name
    name="$(cat "$1/checkpoints/latest" 2>/dev/null)" || return 1
    [[ "$name" =~ ^ckpt-[0-9]+$ ]] && [ -f "$1/checkpoints/$name/state.json" ] \
        && [ -f "$1/checkpoints/$name/arrays.npz" ] || return 1
    echo $((10#${name#ckpt-}))
}
held() {  # exit 0 while a trainer holds the directory's lock, 1 when none does, 2 if unknown
    "$bin/python" -m baselines_ppo.run_lock "$1"
}

from="$(iteration_of "$line")" || {
    echo "continue_line: $line holds no complete checkpoint (expected $line/checkpoints/latest naming a ckpt-N directory, as save_line.sh writes)" >&2
    exit 2
}
checkpoint="$line/checkpoints/$(cat "$line/checkpoints/latest")"
ranks="${RANKS:-$("$bin/python" -c 'import json, sys
print(len(json.load(open(sys.argv[1]))["rng_states"]))' "$checkpoint/state.json")}"

state=0; held "$run_dir" || state=$?
if [ "$state" = 0 ]; then
    echo "continue_line: $run_dir is already training (stop it with: l2run stop $run_dir)" >&2
    exit 1
elif [ "$state" = 2 ]; then
    echo "continue_line: /proc/locks cannot be read here, so whether $run_dir trains cannot be told; start l2run train and save_line.sh by hand" >&2
    exit 2
fi
if at="$(iteration_of "$run_dir")" && [ "$at" -ge "$from" ]; then
    how="resumes its iteration $at"
    train_args=(--config "$run_dir/config.toml" --resume)
else
    if [ -e "$run_dir" ]; then
        behind="${at:+is at iteration $at}"
        echo "continue_line: $run_dir ${behind:-has no checkpoint}, behind $line (iteration $from): left as it is"
        run_dir="$run_dir-$from"
        if [ -e "$run_dir" ]; then
            echo "continue_line: $run_dir exists too; name a new RUN_DIR as the second argument" >&2
            exit 2
        fi
    fi
    how="continues $line from iteration $from"
    train_args=(--config "$line/config.toml" --init-from "$line")
fi
[ -n "${ITERATIONS:-}" ] && train_args+=(--iterations "$ITERATIONS")

mkdir -p "$(dirname "$run_dir")"
nohup "$bin/l2run" train "${train_args[@]}" --ranks "$ranks" --run-dir "$run_dir" --quiet \
    >> "$run_dir.log" 2>&1 < /dev/null &
trainer=$!
nohup "$here/experiments/scripts/keep_line.sh" "$run_dir" "$line" >> "$run_dir.keep_line.log" 2>&1 < /dev/null &

waited=0
until held "$run_dir"; do
    if ! kill -0 "$trainer" 2>/dev/null; then
        status=0; wait "$trainer" || status=$?
        if [ "$status" = 0 ]; then  # nothing left to train (ITERATIONS reached): keep_line saves and exits
            echo "continue_line: $run_dir $how and has already finished (log: $run_dir.log)"
            exit 0
        fi
        echo "continue_line: the trainer of $run_dir exited with status $status; the end of $run_dir.log:" >&2
        tail -n 5 "$run_dir.log" >&2
        exit 1
    fi
    if [ "$waited" -ge "$start_wait" ]; then
        echo "continue_line: the trainer of $run_dir has not taken its run directory after ${start_wait} s; see $run_dir.log" >&2
        exit 1
    fi
    sleep 1; waited=$((waited + 1))
done
echo "continue_line: $run_dir $how on $ranks ranks (log: $run_dir.log)"
echo "continue_line: keep_line.sh saves it into $line at every checkpoint (log: $run_dir.keep_line.log)"
echo "continue_line: stop with: l2run stop $run_dir; then commit $line"
