"""``l2run train``: train PPO on L2Run from an experiment config, over MPI.

    l2run train --config round2 --ranks 2 [--run-dir runs/round2] [--iterations K]
                [--resume] [--quiet] [--hostfile hosts]

With ``--ranks N > 1`` and not already under mpirun, the command re-launches
itself under mpirun (:mod:`experiments.mpirun`). ``mpirun -np N l2run train ...``
works too (each rank then aborts the job itself on an error).

The launcher starts mpirun in its own session and turns Ctrl-C / SIGTERM into
SIGUSR1, which mpirun forwards to every rank: the ranks finish the iteration,
save a checkpoint and exit (mpirun's own SIGINT handling would kill them at
once). A second Ctrl-C aborts. On a terminal the launcher draws the progress
bar from progress.csv, since mpirun forwards output only line by line.

One job per run directory: the trainer's rank 0 holds ``run_dir/.lock``
(:mod:`baselines_ppo.run_lock`) while it trains. The preflight checks it first,
so a second ``l2run train`` on a live run fails before starting any rank; it
only probes the lock (takes and drops it), because the ranks it launches must
be able to take it.
"""
from __future__ import annotations

import argparse
import math
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional

from experiments.mpirun import MpirunNotFound, launch_environment, launched_by_mpirun, mpirun_command

CONFIG_TOML = "config.toml"


class UsageError(Exception):
    """A problem the user can fix from the command line; printed without a traceback."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a runner with PPO over MPI",
        description="Train PPO on L2Run (or a gymnasium env, see gym_id) from a TOML experiment config.")
    parser.add_argument("--config", default="round2",
                        help="TOML file or bundled config name: quick, round1, round2 (default: round2)")
    parser.add_argument("--ranks", type=int, default=1,
                        help="MPI processes, one env each (default 1: in this process)")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="where checkpoints, logs and the policy go (default: runs/<config name>)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="stop once this many iterations exist in total, resumed ones included "
                             "(default: enough for ppo.total_timesteps)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the run dir's latest checkpoint (a fresh run if it has none)")
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
    try:
        return _run(args)
    except UsageError as err:
        print(f"l2run train: error: {err}", file=sys.stderr)
        return 2


def _run(args) -> int:
    from experiments.config import load_config, resolve_config_path

    if args.ranks < 1:
        raise UsageError(f"--ranks must be at least 1, got {args.ranks}")
    if args.iterations is not None and args.iterations < 1:
        raise UsageError(f"--iterations must be at least 1, got {args.iterations}")
    try:
        config_path = resolve_config_path(args.config).resolve()
        config = load_config(config_path)
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    run_dir = (args.run_dir or Path("runs") / config.name).resolve()
    symmetry_for(config)  # a mirror_augmentation the env cannot do fails here, before mpirun starts

    if launched_by_mpirun():
        return train_in_this_process(args, config, config_path, run_dir)
    preflight(config, run_dir, args.resume, args.init_from)
    if args.ranks > 1:
        return launch_mpirun(args, config, config_path, run_dir)
    return train_in_this_process(args, config, config_path, run_dir)


def preflight(config, run_dir: Path, resume: bool, init_from: Optional[Path] = None) -> None:
    """Checks that need no env and no MPI, done once before mpirun starts N copies."""
    from baselines_ppo.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
    from baselines_ppo.run_lock import RunDirBusy, check_unlocked

    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--run-dir {run_dir} exists and is not a directory")
    try:
        check_unlocked(run_dir)  # before reading checkpoints a live job may be writing
    except RunDirBusy as err:
        raise UsageError(str(err)) from None
    latest = latest_checkpoint(run_dir)
    if latest is None:
        if init_from is not None:
            check_init_source(config, init_from)
        return
    if not resume:
        raise UsageError(f"{run_dir} already holds a run (checkpoint {latest.name}): pass --resume to continue "
                         "it, or choose another --run-dir")
    try:
        saved = load_checkpoint(latest).config
    except CheckpointError as err:
        raise UsageError(str(err)) from None
    for key, wanted in (("hidden_sizes", list(config.ppo.hidden_sizes)), ("activation", config.ppo.activation)):
        if saved.get(key) != wanted:
            raise UsageError(f"checkpoint {latest} was trained with ppo.{key} = {saved.get(key)}, but the config "
                             f"has ppo.{key} = {wanted}; resume with the checkpoint's settings or choose "
                             "another --run-dir")
    check_same_env(config, run_dir)


def check_init_source(config, init_from: Path) -> None:
    """Read the parent once before mpirun starts: a missing or damaged one is one
    line; a parent trained on another env is said (training it on another course
    is allowed: the networks' sizes are checked by the trainer)."""
    from baselines_ppo.checkpoint import CheckpointError
    from baselines_ppo.init_from import load_init_source

    try:
        source = load_init_source(init_from)
    except CheckpointError as err:
        raise UsageError(str(err)) from None
    changed = env_changes(config, source.metadata)
    if changed:
        print(f"l2run train: note: {source.path} was trained on another env than the config describes "
              f"({changed}); training it on the config's env", file=sys.stderr)


def env_changes(config, saved_metadata) -> str:
    """"env.key = old -> new, ..." for the env settings that differ between a
    run's saved metadata and ``config`` ("" if none)."""
    import dataclasses
    import json

    from experiments.config import config_to_dict
    from experiments.envs import EnvConfig

    saved = saved_metadata or {}
    wanted = json.loads(json.dumps(config_to_dict(config)))  # the same JSON types as the saved side
    defaults = json.loads(json.dumps(dataclasses.asdict(EnvConfig())))  # fields newer than the run
    saved_env = {"gym_id": saved.get("gym_id"), **defaults, **(saved.get("env") or {})}
    wanted_env = {"gym_id": wanted.get("gym_id"), **(wanted.get("env") or {})}
    changed = {key: (saved_env.get(key), wanted_env.get(key)) for key in sorted(set(saved_env) | set(wanted_env))
               if saved_env.get(key) != wanted_env.get(key)}
    return ", ".join(f"env.{key} = {old!r} -> {new!r}" for key, (old, new) in changed.items())


def check_same_env(config, run_dir: Path) -> None:
    """Refuse to resume a run on another task: an env changed mid-run (course,
    integrator, excitation floor, reward, frame skip...) would make its curves,
    its best policy and its step count mean nothing. PPO settings may change."""
    import json

    from baselines_ppo.trainer import RUN_CONFIG_FILE

    try:
        saved = json.loads((run_dir / RUN_CONFIG_FILE).read_text()).get("metadata") or {}
    except (OSError, ValueError):
        return  # a run written by the trainer alone: nothing to compare with
    listed = env_changes(config, saved)
    if listed:
        raise UsageError(f"{run_dir} was trained on another env than the config describes ({listed}); resume "
                         f"with --config {run_dir / CONFIG_TOML}, or train the new env in another --run-dir")


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
    """The env's left-right symmetry when ppo.mirror_augmentation asks for one, else None."""
    if not config.ppo.mirror_augmentation:
        return None
    if config.gym_id is not None:
        raise UsageError(f"ppo.mirror_augmentation needs a left-right symmetry of the env, and none is known for "
                         f"gym_id = {config.gym_id!r} (only L2Run has one); set mirror_augmentation = false")
    from experiments.envs import env_symmetry

    return env_symmetry(config.env)


def train_in_this_process(args, config, config_path: Path, run_dir: Path) -> int:
    """Train as one rank of the current MPI world (a world of 1 without mpirun)."""
    from baselines_ppo.tf_util import limit_threads

    limit_threads()  # before anything starts TensorFlow
    from baselines_ppo import mpi
    from baselines_ppo.checkpoint import CheckpointError
    from baselines_ppo.run_lock import RunDirBusy
    from baselines_ppo.trainer import train
    from experiments.config import config_to_dict, config_to_toml

    size = mpi.size()
    if launched_by_mpirun() and args.ranks not in (1, size) and mpi.is_root():
        print(f"l2run train: note: --ranks {args.ranks} ignored, mpirun started {size} ranks", file=sys.stderr)
    try:
        result = train(make_env_fn(config), config.ppo, run_dir, iterations=args.iterations, resume=args.resume,
                       quiet=args.quiet, progress=args.progress, metadata=config_to_dict(config),
                       run_files={CONFIG_TOML: config_to_toml(config)}, symmetry=symmetry_for(config),
                       init_from=args.init_from)
    except (CheckpointError, RunDirBusy) as err:  # raised identically on every rank
        if mpi.is_root():
            print(f"l2run train: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        raise
    except BaseException as err:
        if size > 1 and not isinstance(err, SystemExit):
            mpi.abort_on_exception(err)  # the other ranks would wait for this one forever
        raise
    if mpi.is_root():
        state = "stopped" if result.interrupted else "done"
        print(f"l2run train: {state} at iteration {result.iterations} ({result.timesteps} steps); "
              f"run dir {run_dir}", file=sys.stderr)
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
    process = subprocess.Popen(command, env=launch_environment(), start_new_session=True)

    stops = []

    def request_stop(signum, frame):
        stops.append(signum)
        if len(stops) == 1:
            print("\nl2run train: stopping after the current iteration (checkpoint follows); "
                  "Ctrl-C again to abort now", file=sys.stderr, flush=True)
            process.send_signal(signal.SIGUSR1)
        else:
            process.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
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
        print(f"l2run train: mpirun exited with {reason}; see the messages above. The last good checkpoint "
              f"in {run_dir} is intact: continue with --resume", file=sys.stderr)
        return code if code > 0 else 128 - code
    return 0


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
