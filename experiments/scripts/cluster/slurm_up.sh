#!/usr/bin/env bash
# Start a private single-node Slurm on this machine: munged + slurmctld + slurmd.
#
#   sudo experiments/scripts/cluster/slurm_up.sh [STATE_DIR=/run/l2run-slurm]
#   export SLURM_CONF=STATE_DIR/slurm.conf     # then sbatch, squeue, scontrol...
#   sudo experiments/scripts/cluster/slurm_down.sh [STATE_DIR]
#
# For `make test-cluster` (tests/cluster): root, Debian/Ubuntu packages
# slurm-wlm, munge and libpmix-dev (installed here with apt-get if missing). Everything lives in
# STATE_DIR: its own munge key and socket, slurm.conf, spool and state, logs, pid
# files; nothing in /etc is touched, and a system munged or Slurm keeps running
# unharmed (our daemons use their own ports, below). One node named after this
# machine with CPUS cpus (default: nproc, at least 2), one partition `l2run`;
# jobs may be requeued (JobRequeue=1). Idempotent: a previous instance in STATE_DIR
# is stopped first; on a failure everything started so far is stopped again.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
state="${1:-/run/l2run-slurm}"
cpus="${CPUS:-$(( $(nproc) > 2 ? $(nproc) : 2 ))}"
ctld_port="${SLURMCTLD_PORT:-16817}"
slurmd_port="${SLURMD_PORT:-16818}"

die() { echo "slurm_up.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "run as root (it starts munged, slurmctld and slurmd)"
case "$state" in /*) ;; *) die "STATE_DIR must be an absolute path, got '$state'" ;; esac

# libpmix-dev: Slurm's mpi/pmix plugin dlopens the unversioned libpmix.so (srun --mpi=pmix)
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
   || ! ldconfig -p | grep -q 'libpmix\.so '; then
    command -v apt-get >/dev/null || die "slurmctld, slurmd, munged or libpmix.so missing and no apt-get to install them (install slurm-wlm, munge and libpmix-dev)"
    echo "slurm_up.sh: installing slurm-wlm, munge and libpmix-dev with apt-get" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge libpmix-dev; } >/dev/null \
        || die "apt-get install slurm-wlm munge libpmix-dev failed"
fi

"$here/slurm_down.sh" "$state" >/dev/null 2>&1 || true   # idempotent: a previous instance goes first
trap 'status=$?; if [ $status -ne 0 ]; then echo "slurm_up.sh: failed, stopping what was started (logs in $state/log)" >&2; tail -n 5 "$state"/log/*.log >&2 2>/dev/null || true; "$here/slurm_down.sh" "$state" --keep-logs >/dev/null 2>&1 || true; fi' EXIT

node="$(hostname -s)"
mkdir -p "$state"/{munge,ctld,spool,log}
chown munge: "$state/munge"
chmod 755 "$state/munge"   # the socket must be reachable; the key file itself is 0600

# munge: our own key, socket and pid file
runuser -u munge -- mungekey --create --keyfile "$state/munge/munge.key" --force >/dev/null
runuser -u munge -- munged --socket "$state/munge/munge.socket" --key-file "$state/munge/munge.key" \
    --pid-file "$state/munge/munged.pid" --log-file "$state/munge/munged.log" --seed-file "$state/munge/munged.seed"

cat > "$state/slurm.conf" <<CONF
# written by experiments/scripts/cluster/slurm_up.sh: a private one-node test cluster
ClusterName=l2run
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
AuthType=auth/munge
# cred_expire also delays a requeued job's restart (default 120 s)
AuthInfo=socket=$state/munge/munge.socket,cred_expire=${CRED_EXPIRE:-20}
CredType=cred/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SwitchType=switch/none
MailProg=/bin/true
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobRequeue=1
KillWait=60
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=l2run Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF

slurmctld -i -f "$state/slurm.conf"
slurmd -f "$state/slurm.conf"
export SLURM_CONF="$state/slurm.conf"
for _ in $(seq 60); do
    if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
        echo "slurm_up.sh: node $node up with $cpus CPUs; export SLURM_CONF=$state/slurm.conf"
        exit 0
    fi
    sleep 1
done
die "the node did not come up within 60 s: $(sinfo -h -N -o '%T %E' 2>&1 | head -1)"
