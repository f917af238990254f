"""``l2run stop``: stop a run directory's training job, saved, from any shell.

    l2run stop runs/round2 [runs/round2-symmetry ...] [--no-wait]

Why: a job started with ``nohup ... &`` has no terminal for Ctrl-C, and
signalling it by hand is easy to get wrong: ``pkill -f RUN`` also matches
mpirun, which then kills the ranks before they save. The run directory's lock
names the process holding it, the trainer's rank 0 (:mod:`baselines_ppo.run_lock`).
This sends that process SIGUSR1 (:data:`baselines_ppo.stop.SAVE_AND_STOP`, the
one stop signal that is safe to send twice); after the current iteration rank 0
shares the request with every rank (``mpi.any_rank``), they all save and exit,
and mpirun and the launcher exit with status 0, as after Ctrl-C.

By default it waits until each job has exited and reports its last good
checkpoint; ``--no-wait`` returns once the request is sent. Exit status: 0 when
every named directory's job was asked to stop (or none was running there), 1
when a job could not be asked (its rank 0 runs on another host, or the lock
holder would be killed by the signal rather than stopped).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import List, Tuple


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "stop", help="stop a run directory's training job after its current iteration (it saves)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("run_dirs", nargs="+", type=run_directory, metavar="RUN_DIR",
                        help="run directories of training jobs (l2run train --run-dir)")
    parser.add_argument("--no-wait", action="store_true",
                        help="return once the jobs are asked to stop, not when they have saved and exited")
    parser.set_defaults(func=run)


def run_directory(text: str) -> Path:
    """A directory that exists (a run directory or not: one without a job is reported, not refused)."""
    path = Path(text).expanduser()
    if not path.is_dir():
        reason = "a file" if path.exists() else "no such directory"
        raise argparse.ArgumentTypeError(f"expected a run directory, got {text!r} ({reason})")
    return path


def run(args) -> int:
    from baselines_ppo.run_lock import RunDirBusy, holder_of
    from baselines_ppo.stop import SAVE_AND_STOP, catches_stop
    from experiments.train_cmd import process_start_time

    asked: List[Tuple[Path, int, str]] = []  # (run dir, pid, its start time)
    failed = False
    for run_dir in args.run_dirs:
        try:
            holder = holder_of(run_dir)
        except RunDirBusy as err:
            _say(f"{run_dir}: {err}; not signalled")
            failed = True
            continue
        if holder is None:
            _say(f"{run_dir}: no training job is running there")
            continue
        if not holder.on_this_host:
            _say(f"{run_dir}: the job's rank 0 (pid {holder.pid}) runs on {holder.host}: run l2run stop there")
            failed = True
            continue
        if catches_stop(holder.pid) is not True:
            _say(f"{run_dir}: pid {holder.pid} holds the lock but does not catch SIGUSR1 "
                 "(not an l2run training job?); not signalled")
            failed = True
            continue
        started = process_start_time(holder.pid)
        try:
            os.kill(holder.pid, SAVE_AND_STOP)
        except ProcessLookupError:  # it exited between the lock probe and now
            _say(f"{run_dir}: no training job is running there")
            continue
        _say(f"{run_dir}: asked the job (rank 0, pid {holder.pid}) to stop after its current iteration")
        asked.append((run_dir, holder.pid, started))
    if asked and not args.no_wait:
        _wait_for_exit(asked)
    return 1 if failed else 0


def _wait_for_exit(asked: List[Tuple[Path, int, str]]) -> None:
    """Wait (a tqdm bar of jobs, with the time elapsed) until each asked process
    has exited, then report what each left to resume."""
    from tqdm import tqdm

    from experiments.train_cmd import checkpoint_state, process_alive

    waiting = list(asked)
    with tqdm(total=len(waiting), unit="job", desc="l2run stop: saving and exiting", file=sys.stderr,
              disable=not sys.stderr.isatty()) as bar:
        while waiting:
            for job in [job for job in waiting if not process_alive(job[1], job[2])]:
                waiting.remove(job)
                bar.update(1)
                bar.write(f"l2run stop: {job[0]}: stopped. {checkpoint_state(job[0])}", file=sys.stderr)
            time.sleep(0.5)


def _say(text: str) -> None:
    print(f"l2run stop: {text}", file=sys.stderr, flush=True)
