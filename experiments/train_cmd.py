"""``l2run train``: train PPO on L2Run from an experiment config, over MPI.

    l2run train --config round2 --ranks 2 [--run-dir runs/round2] [--iterations K]
                [--resume | --overwrite] [--quiet] [--hostfile hosts]

With ``--ranks N > 1`` and not already under mpirun, the command re-launches
itself under mpirun (:mod:`experiments.mpirun`). ``mpirun -np N l2run train ...``
works too (each rank then aborts the job itself on an error).

The launcher starts mpirun in its own session and turns Ctrl-C / SIGTERM into
SIGUSR1, which mpirun forwards to every rank: the ranks finish the iteration,
save a checkpoint and exit (mpirun's own SIGINT handling would kill them at
once). A second Ctrl-C aborts. SIGHUP (the terminal closed) is a stop like
SIGTERM. On a terminal the launcher draws the progress bar from progress.csv,
since mpirun forwards output only line by line.

Every rank catches stop signals from its first instant (:mod:`baselines_ppo.stop`):
a Ctrl-C during start-up ends the job with "stopped before the first iteration;
nothing to save", not with ranks killed by SIGUSR1.

If the launcher itself dies (kill -9, a crash), the ranks do not train on
unseen: they stop as after Ctrl-C (:func:`_stop_when_launcher_dies`,
:class:`LauncherWatch`).

One job per run directory: the trainer's rank 0 holds ``run_dir/.lock``; the
preflight only probes it (takes and drops it), because the ranks it launches
must be able to take it, so a second ``l2run train`` fails before any rank starts.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

from baselines_ppo.stop import SAVE_AND_STOP, status_catches_stop
from experiments.cli_types import positive_int
from experiments.mpirun import (MpirunNotFound, launch_environment, launched_by_mpirun, mpirun_command,
                                private_shared_memory)

CONFIG_TOML = "config.toml"
#: "<host> <pid> <start time>" of the launcher, for the ranks to watch (LauncherWatch).
LAUNCHER_ENV = "L2RUN_LAUNCHER"
#: Seconds the ranks give the current iteration after the launcher died before abandoning it.
LAUNCHER_GONE_GRACE_S = float(os.environ.get("L2RUN_LAUNCHER_GRACE_S", "20"))


class UsageError(Exception):
    """A problem the user can fix from the command line; printed without a traceback."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a runner with PPO over MPI",
        description="Train PPO on L2Run (or a gymnasium env, see gym_id) from a TOML experiment config.")
    parser.add_argument("--config", default="round2",
                        help="TOML file or bundled config name: quick, round1, round2 (default: round2)")
    parser.add_argument("--ranks", type=positive_int, default=1,
                        help="MPI processes, one env each (default 1: in this process)")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="where checkpoints, logs and the policy go (default: runs/<config name>)")
    parser.add_argument("--iterations", type=positive_int, default=None,
                        help="stop once this many iterations exist in total, resumed ones included "
                             "(default: enough for ppo.total_timesteps)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the run dir's newest complete, readable checkpoint (a new run in "
                             "an empty run dir)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start a new run in a run dir that holds an earlier one: its files are moved "
                             "into RUN_DIR/superseded-<time>/ (never deleted)")
    parser.add_argument("--quiet", action="store_true",
                        help="one plain line per iteration instead of a progress bar (for batch logs)")
    parser.add_argument("--hostfile", type=Path, default=None, help="Open MPI hostfile for multi-machine runs")
    parser.add_argument("--init-from", type=Path, default=None, metavar="PATH",
                        help="start a new run from a checkpoint directory, a run directory (its latest checkpoint) "
                             "or an exported policy .npz (e.g. pretrained/round2); steps count on from the "
                             "parent's. Ignored when --resume finds a checkpoint in the run dir")
    # Internal: how rank 0 shows progress when the launcher draws the bar itself.
    parser.add_argument("--progress", choices=("bar", "lines", "none"), default=None, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args) -> int:
    from baselines_ppo.stop import StopRequest

    trains_here = launched_by_mpirun() or args.ranks == 1
    # A rank catches stops before anything slow (config, TensorFlow, the env) starts;
    # the launcher handles stop signals itself (launch_mpirun).
    with (StopRequest() if trains_here else contextlib.nullcontext()) as stop:
        if launched_by_mpirun():
            LauncherWatch.start_from_env(stop)
        try:
            return _run(args, stop)
        except UsageError as err:
            print(f"l2run train: error: {err}", file=sys.stderr)
            return 2


def _run(args, stop=None) -> int:
    from experiments.config import load_config, resolve_config_path

    if args.overwrite and args.resume:
        raise UsageError("--overwrite starts a new run and --resume continues one: pass one of them")
    try:
        config_path = resolve_config_path(args.config).resolve()
        config = load_config(config_path)
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    run_dir = (args.run_dir or Path("runs") / config.name).resolve()
    symmetry_for(config)  # a mirror_augmentation the env cannot do fails here, before mpirun starts

    if launched_by_mpirun():
        return train_in_this_process(args, config, config_path, run_dir, stop)
    preflight(config, run_dir, args.resume, args.init_from, args.overwrite)
    if args.ranks > 1:
        return launch_mpirun(args, config, config_path, run_dir)
    return train_in_this_process(args, config, config_path, run_dir, stop)


def preflight(config, run_dir: Path, resume: bool, init_from: Optional[Path] = None, overwrite: bool = False) -> None:
    """Checks that need no env and no MPI, done once before mpirun starts N copies.
    The trainer's rank 0 applies the same rules again, with the same functions;
    this only gives the same one line before any rank starts."""
    from baselines_ppo.checkpoint import CheckpointError, check_can_start, find_resume_point
    from baselines_ppo.compatibility import check_compatible
    from baselines_ppo.init_from import load_init_source
    from baselines_ppo.run_lock import RunDirBusy, check_unlocked

    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--run-dir {run_dir} exists and is not a directory")
    check_writable(run_dir)
    try:
        check_unlocked(run_dir)  # before reading checkpoints a live job may be writing
    except RunDirBusy as err:
        raise UsageError(str(err)) from None
    except OSError as err:
        raise UsageError(f"cannot write to run directory {run_dir} ({err.strerror or err}); "
                         "choose a writable --run-dir") from None
    point = None if overwrite else find_resume_point(run_dir)
    try:
        if point is not None:
            check_can_start(run_dir, point)
        if point is None or point.data is None:
            if init_from is not None:  # a missing or damaged parent (the trainer checks that it fits)
                load_init_source(init_from)
            return
        if not resume:
            raise UsageError(f"{run_dir} already holds a run (checkpoint {point.path.name}): pass --resume to "
                             "continue it, --overwrite to set it aside and start anew, or choose another --run-dir")
        check_compatible(point.data, config.ppo, task_of(config))  # the env's sizes: the trainer's rank 0
    except CheckpointError as err:
        raise UsageError(error_message(err, run_dir)) from None


def check_writable(run_dir: Path) -> None:
    """One line, before any rank starts, if run_dir cannot be created or written
    (a read-only mount, another user's directory): a file is created and deleted
    in it (or in its nearest existing parent), the one test that also holds for
    root, who passes every permission check."""
    import tempfile

    existing = next(p for p in (run_dir, *run_dir.parents) if p.exists())
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".l2run-write-test-"):
            pass
    except OSError as err:
        raise UsageError(f"cannot write to run directory {run_dir} ({existing} is not writable: "
                         f"{err.strerror or err}); choose a writable --run-dir") from None


def task_of(config) -> dict:
    """The settings that define the task a config trains on: what the trainer
    records in checkpoints and compares on resume (baselines_ppo.compatibility)."""
    from experiments.config import config_to_dict

    saved = config_to_dict(config)
    return {"gym_id": saved["gym_id"], "env": saved["env"]}


def error_message(err: Exception, run_dir: Path) -> str:
    """The one line for an error the trainer raises; a changed task in the CLI's terms."""
    from baselines_ppo.compatibility import TaskChanged

    if isinstance(err, TaskChanged):
        return (f"{run_dir} was trained on another env than the config describes ({', '.join(err.changes)}); "
                f"resume with --config {run_dir / CONFIG_TOML}, or train the new env in another --run-dir")
    return str(err)


def make_env_fn(config):
    """seed -> env for the trainer: L2Run from [env], or a gymnasium env by id."""
    if config.gym_id is not None:
        def make_gym(seed):
            import gymnasium as gym

            env = gym.make(config.gym_id)
            env.action_space.seed(seed)
            return env
        return make_gym

    def make_l2run(seed):
        from experiments.envs import make_env

        return make_env(config.env, seed)
    return make_l2run


def symmetry_for(config):
    """The env's left-right symmetry when ppo.mirror_augmentation or ppo.symmetry_coef asks for one, else None."""
    asking = [(name, off) for name, off, on in (("mirror_augmentation", "false", config.ppo.mirror_augmentation),
                                                ("symmetry_coef", "0", config.ppo.symmetry_coef > 0)) if on]
    if not asking:
        return None
    if config.gym_id is not None:
        name, off = asking[0]
        raise UsageError(f"ppo.{name} needs a left-right symmetry of the env, and none is known for "
                         f"gym_id = {config.gym_id!r} (only L2Run has one); set {name} = {off}")
    from experiments.envs import env_symmetry

    return env_symmetry(config.env)


def train_in_this_process(args, config, config_path: Path, run_dir: Path, stop=None) -> int:
    """Train as one rank of the current MPI world (a world of 1 without mpirun)."""
    from baselines_ppo import mpi
    from baselines_ppo.checkpoint import CheckpointError
    from baselines_ppo.run import train
    from baselines_ppo.run_lock import RunDirBusy, RunDirUnwritable
    from experiments.config import config_to_dict, config_to_toml

    size = mpi.size()
    if launched_by_mpirun() and args.ranks not in (1, size) and mpi.is_root():
        print(f"l2run train: note: --ranks {args.ranks} ignored, mpirun started {size} ranks", file=sys.stderr)
    try:
        result = train(make_env_fn(config), config.ppo, run_dir, iterations=args.iterations, resume=args.resume,
                       progress=args.progress or ("lines" if args.quiet else None), metadata=config_to_dict(config),
                       task=task_of(config), run_files={CONFIG_TOML: config_to_toml(config)},
                       symmetry=symmetry_for(config), init_from=args.init_from, overwrite=args.overwrite, stop=stop)
    except (CheckpointError, RunDirBusy, RunDirUnwritable) as err:  # raised identically on every rank
        if mpi.is_root():
            print(f"l2run train: error: {error_message(err, run_dir)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        raise
    except BaseException as err:
        if size > 1 and not isinstance(err, SystemExit):
            mpi.abort_on_exception(err)  # the other ranks would wait for this one forever
        raise
    if mpi.is_root():
        if not result.started:
            print("l2run train: stopped before the first iteration; nothing to save", file=sys.stderr)
        else:
            state = "stopped" if result.interrupted else "done"
            print(f"l2run train: {state} at iteration {result.iterations} ({result.timesteps} steps); "
                  f"run dir {run_dir}", file=sys.stderr)
    # 0 for a stop before the first iteration too: the request was honoured and
    # the run dir is consistent, as after a stop that saved (make train relies on it).
    return 0


# --- the launcher ------------------------------------------------------------------


def train_command(args, config_path: Path, run_dir: Path, progress: str) -> List[str]:
    """The command that runs this same training as ``args.ranks`` MPI processes."""
    cli_args = ["train", "--config", config_path, "--ranks", args.ranks, "--run-dir", run_dir,
                "--progress", progress]
    if args.iterations is not None:
        cli_args += ["--iterations", args.iterations]
    if args.resume:
        cli_args.append("--resume")
    if args.overwrite:
        cli_args.append("--overwrite")
    if args.init_from is not None:
        cli_args += ["--init-from", args.init_from.resolve()]
    if args.quiet:
        cli_args.append("--quiet")
    try:
        return mpirun_command(args.ranks, cli_args, args.hostfile)
    except MpirunNotFound as err:
        raise UsageError(str(err)) from None


def launch_mpirun(args, config, config_path: Path, run_dir: Path) -> int:
    """Run mpirun, forward stop requests gently, report how it ended."""
    follow = not args.quiet and sys.stderr.isatty()
    progress = args.progress or ("none" if follow else "lines")
    command = train_command(args, config_path, run_dir, progress)
    env = launch_environment()
    env[LAUNCHER_ENV] = f"{socket.gethostname()} {os.getpid()} {process_start_time(os.getpid())}"
    with private_shared_memory(env, local=args.hostfile is None) as env:
        return _run_and_forward_stops(args, config, run_dir, command, env, follow)


def _run_and_forward_stops(args, config, run_dir: Path, command: List[str], env: Dict[str, str],
                           follow: bool) -> int:
    """mpirun in its own session; Ctrl-C/SIGTERM/SIGHUP become one SIGUSR1 (save and stop), a second aborts."""
    process = subprocess.Popen(command, env=env, start_new_session=True,
                               preexec_fn=_stop_when_launcher_dies(os.getpid()))

    stops = []

    def request_stop(signum, frame):
        stops.append(signum)
        if len(stops) == 1:
            _say("\nl2run train: stopping after the current iteration (it is saved; if training has not started "
                 "yet, nothing is); Ctrl-C again to abort now")
            # a rank still starting Python would die of SIGUSR1: wait (briefly) until each has its handler
            wait_for_stop_handlers(process.pid, expected=args.ranks if args.hostfile is None else None)
            process.send_signal(SAVE_AND_STOP)
        else:
            process.send_signal(signal.SIGTERM)

    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # SIGHUP: the terminal was closed
    previous = {sig: signal.signal(sig, request_stop) for sig in stop_signals}
    follower = None
    if follow:
        iterations = args.iterations or config.ppo.total_iterations(args.ranks)
        follower = ProgressFollower(run_dir / "progress.csv", iterations * config.ppo.steps_per_rank * args.ranks)
        follower.start()
    try:
        code = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if follower is not None:
            follower.stop()
    if code != 0:
        reason = f"signal {-code}" if code < 0 else f"status {code}"
        _say(f"l2run train: mpirun exited with {reason}; see the messages above. {checkpoint_state(run_dir)}")
        return code if code > 0 else 128 - code
    return 0


def checkpoint_state(run_dir: Path) -> str:
    """What a failed job left to resume, checked, never assumed."""
    from baselines_ppo.checkpoint import find_resume_point

    try:
        point = find_resume_point(run_dir)
    except OSError as err:
        return f"Cannot read {run_dir} ({err.strerror or err})."
    if point.data is None:
        return f"{run_dir} holds no checkpoint to resume: nothing was saved."
    return (f"The last good checkpoint in {run_dir} is {point.path.name} (iteration {point.data.iteration}): "
            "continue with --resume")


def _say(text: str) -> None:
    """Print to stderr; a closed terminal (SIGHUP) must not turn a stop into a traceback."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def process_start_time(pid: int) -> str:
    """The start time of ``pid`` in clock ticks since boot ("" if unknown): with the
    pid it names one process, whatever later reuses the pid."""
    fields = _stat_fields(pid)
    return fields[19] if fields else ""


def process_alive(pid: int, start_time: str) -> bool:
    """Whether ``pid`` is still the process that started at ``start_time``
    (:func:`process_start_time`): not gone, not a zombie (exited, not yet reaped),
    not a later process that reuses the pid."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] not in ("Z", "X") and fields[19] == start_time


def _stat_fields(pid: int) -> List[str]:
    """The fields of /proc/PID/stat after the command name, from the state on ([] if unreadable)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat[stat.rindex(")") + 2:].split()


def _stop_when_launcher_dies(launcher_pid: int):
    """preexec_fn for mpirun (Linux): the kernel sends it SIGUSR1 when the launcher
    dies, however it dies, and mpirun forwards that to every rank as a stop.
    None elsewhere (the ranks' LauncherWatch still covers the launcher's host)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def preexec():
        libc.prctl(pr_set_pdeathsig, int(SAVE_AND_STOP), 0, 0, 0)
        if os.getppid() != launcher_pid:  # the launcher died before prctl: stop at once
            os._exit(1)
    return preexec


def wait_for_stop_handlers(mpirun_pid: int, expected: Optional[int], timeout: float = 15.0) -> None:
    """Wait until the ranks mpirun started on this host (``expected`` of them if
    known) catch SIGUSR1 (Linux /proc); returns at ``timeout`` regardless."""
    deadline = time.monotonic() + timeout
    while time.monotonic() <= deadline:
        ranks = _local_ranks(mpirun_pid)  # None: no /proc, cannot tell
        if ranks is None or ((expected is None or len(ranks) >= expected) and all(ranks.values())):
            return
        time.sleep(0.05)


def _local_ranks(mpirun_pid: int) -> Optional[dict]:
    """{pid: catches SIGUSR1} of mpirun's child processes running experiments.cli."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    found = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
            if int(fields.get("PPid", "0")) != mpirun_pid:
                continue
            if b"experiments.cli" not in (entry / "cmdline").read_bytes():
                continue
        except (OSError, ValueError):
            continue
        found[int(entry.name)] = bool(status_catches_stop(status))
    return found


class LauncherWatch(threading.Thread):
    """In a rank: notices that the launcher that started mpirun is gone.

    Then it requests a stop (the iteration ends and is saved, as after Ctrl-C),
    and if the rank is still alive ``grace`` seconds later it abandons the
    iteration: os._exit, which makes mpirun end every rank; the last good
    checkpoint is untouched (saves are atomic). Only ranks on the launcher's host
    can see its pid; elsewhere mpirun's forwarded SIGUSR1 does the job.
    """

    def __init__(self, stop, host: str, pid: int, start_time: str, grace: float, interval: float = 0.5):
        super().__init__(daemon=True, name="launcher-watch")
        self.stop, self.pid, self.start_time, self.grace, self.interval = stop, pid, start_time, grace, interval
        self.speaker = os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", "0") == "0"

    @classmethod
    def start_from_env(cls, stop) -> None:
        try:
            host, pid, start_time = os.environ[LAUNCHER_ENV].split(" ")
        except (KeyError, ValueError):
            return
        if host == socket.gethostname():
            cls(stop, host, int(pid), start_time, LAUNCHER_GONE_GRACE_S).start()

    def launcher_alive(self) -> bool:
        return process_alive(self.pid, self.start_time)

    def run(self):
        while self.launcher_alive():
            time.sleep(self.interval)
        if self.speaker:
            _say(f"l2run train: the launcher (pid {self.pid}) is gone: stopping after this iteration (saved), "
                 f"or abandoning it in {self.grace:g} s")
        self.stop.request()
        time.sleep(self.grace)
        if self.speaker:
            _say("l2run train: the iteration did not end in time after the launcher died: abandoning it; the "
                 "last good checkpoint is intact")
        os._exit(3)


class ProgressFollower(threading.Thread):
    """Draws a tqdm bar in the launcher from the rows rank 0 appends to progress.csv."""

    def __init__(self, csv_path: Path, total_steps: int, interval: float = 1.0):
        super().__init__(daemon=True)
        self.csv_path, self.total_steps, self.interval = csv_path, total_steps, interval
        self._done = threading.Event()
        self._started_ns = None

    def run(self):
        from tqdm import tqdm

        from baselines_ppo.progress import format_postfix, read_progress

        self._started_ns = time.time_ns()
        bar = tqdm(total=self.total_steps, unit="step", unit_scale=True, dynamic_ncols=True, file=sys.stderr)
        seen = None
        try:
            while not self._done.wait(self.interval):
                try:
                    stat = self.csv_path.stat()
                    if stat.st_mtime_ns < self._started_ns or (stat.st_mtime_ns, stat.st_size) == seen:
                        continue
                    seen = (stat.st_mtime_ns, stat.st_size)
                    rows = read_progress(self.csv_path)[1]
                except (OSError, ValueError):
                    continue
                row = _last_complete(rows)
                if row is None:
                    continue
                bar.set_postfix_str(format_postfix(row), refresh=False)
                bar.update(max(0, int(row["time/timesteps"]) - bar.n))
        finally:
            bar.close()

    def stop(self):
        self._done.set()
        self.join(timeout=5)


def _last_complete(rows) -> Optional[dict]:
    for raw in reversed(rows):
        try:
            row = {key: float(value) for key, value in raw.items() if key is not None}
        except (TypeError, ValueError):
            continue
        if math.isfinite(row.get("time/timesteps", math.nan)):
            return row
    return None
