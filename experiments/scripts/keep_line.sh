#!/usr/bin/env bash
# Keep a training line saved in the repository while it trains.
#
#   experiments/scripts/keep_line.sh RUN_DIR [OUT_DIR=pretrained/round2]
#
# Why: save_line.sh saves a line when you stop it. A period of work that ends
# without a clean stop (a machine taken away, a session cut off) loses every step
# since the last save, and runs/ does not survive the machine: hours of compute.
# Started beside `l2run train` (before it or after), this saves RUN_DIR's line into
# OUT_DIR with save_line.sh each time the trainer writes a new checkpoint (every
# ppo.checkpoint_every iterations), so the working tree always holds a resumable
# checkpoint at most that many iterations old; once the trainer has exited it saves
# the last one and exits. Commit OUT_DIR when you stop, as with save_line.sh.
#
# It never takes the run's lock (probing it over and over could make a starting
# trainer find its own directory busy): whether a trainer holds it is read from
# /proc/locks (baselines_ppo.run_lock.is_held), so the watcher runs on the
# trainer's host. POLL (seconds, default 30) is how often it looks; WAIT (seconds,
# default 300) is how long it waits for a trainer to take the lock before it saves
# what the run has and exits.
set -uo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
run_dir="${1:?usage: keep_line.sh RUN_DIR [OUT_DIR]}"
out="${2:-$here/pretrained/round2}"
bin="${VENV:-$here/.venv}/bin"
poll="${POLL:-30}"
wait_for="${WAIT:-300}"

held() {  # exit 0 while a trainer holds the run's lock, 1 when none does, 2 if unknown
    "$bin/python" -m baselines_ppo.run_lock "$run_dir"
}
latest() { cat "$run_dir/checkpoints/latest" 2>/dev/null || true; }
saved="$(cat "$out/checkpoints/latest" 2>/dev/null || true)"
save_if_new() {
    local now
    now="$(latest)"
    if [ -n "$now" ] && [ "$now" != "$saved" ]; then
        if "$here/experiments/scripts/save_line.sh" "$run_dir" "$out"; then
            saved="$now"
        else
            echo "keep_line: saving $run_dir ($now) failed; trying again at the next checkpoint" >&2
        fi
    fi
}

held; state=$?
if [ "$state" = 2 ]; then
    echo "keep_line: /proc/locks cannot be read here, so whether $run_dir trains cannot be told; use save_line.sh when it stops" >&2
    exit 2
fi
waited=0
while [ "$state" = 1 ] && [ "$waited" -lt "$wait_for" ]; do
    sleep "$poll"; waited=$((waited + poll))
    held; state=$?
done
if [ "$state" = 1 ]; then
    echo "keep_line: no training job holds $run_dir; saving what it has"
else
    echo "keep_line: $run_dir is training; saving its line into $out at each checkpoint"
    while [ "$state" = 0 ]; do
        save_if_new
        sleep "$poll"
        held; state=$?
    done
    echo "keep_line: the trainer of $run_dir has exited"
fi
save_if_new
if [ -z "$saved" ]; then
    echo "keep_line: $run_dir has no checkpoint: nothing saved" >&2
    exit 2
fi
echo "keep_line: $out holds $saved of $run_dir"
