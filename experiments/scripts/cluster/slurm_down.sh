#!/usr/bin/env bash
# Stop what slurm_up.sh started in STATE_DIR (jobs, slurmd, slurmctld, munged) and
# remove STATE_DIR. Idempotent: nothing running is fine.
#
#   sudo experiments/scripts/cluster/slurm_down.sh [STATE_DIR=/run/l2run-slurm] [--keep-logs]
#
# Only the daemons whose pid files are in STATE_DIR are stopped (and the job steps
# slurmd started): a system munged or Slurm is left alone.
set -uo pipefail
state="${1:-/run/l2run-slurm}"
keep_logs="${2:-}"
[ "$(id -u)" = 0 ] || { echo "slurm_down.sh: run as root" >&2; exit 2; }
case "$state" in /*) ;; *) echo "slurm_down.sh: STATE_DIR must be an absolute path, got '$state'" >&2; exit 2 ;; esac
[ -d "$state" ] || exit 0

if [ -f "$state/slurm.conf" ] && [ -f "$state/slurmctld.pid" ]; then
    SLURM_CONF="$state/slurm.conf" scancel --full --signal=KILL --partition=l2run >/dev/null 2>&1 || true
    SLURM_CONF="$state/slurm.conf" scancel --partition=l2run >/dev/null 2>&1 || true
fi

# stop_pid PIDFILE NAME: TERM, wait up to 15 s, then KILL; only if the pid is still NAME
stop_pid() {
    local file="$1" name="$2" pid
    [ -f "$file" ] || return 0
    pid="$(cat "$file" 2>/dev/null)"
    if [ -n "$pid" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$name" ]; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 30); do [ -d /proc/"$pid" ] || break; sleep 0.5; done
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$file"
}
# job steps still alive (slurmstepd and their tasks) whose spool is ours
for pid in $(pgrep -x slurmstepd); do
    if tr '\0' ' ' < /proc/"$pid"/cmdline 2>/dev/null | grep -q "$state" \
       || ls -l /proc/"$pid"/cwd 2>/dev/null | grep -q "$state"; then
        pkill -KILL -P "$pid" 2>/dev/null; kill -KILL "$pid" 2>/dev/null
    fi
done
stop_pid "$state/slurmd.pid" slurmd
stop_pid "$state/slurmctld.pid" slurmctld
stop_pid "$state/munge/munged.pid" munged
if [ "$keep_logs" = --keep-logs ]; then
    find "$state" -mindepth 1 -maxdepth 1 ! -name log -exec rm -rf {} +
else
    rm -rf "$state"
fi
exit 0
