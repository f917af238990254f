"""``l2run select``: pick a run's runner on held-out seeds, report it on others.

    l2run select runs/round2 --seeds 100-115 [--report-seeds 0-9] [--ranks 2] \\
        [--out runs/round2/selection.json] [--ship runs/round2/selected.npz]

Scores the run's snapshots, best_policy.npz and policy.npz (``--from-iteration
N``: only those from iteration N on; ``--include``: policies from elsewhere,
such as the runner already shipped) in both
deterministic modes at the grader's settings (round-2 course, Runge-Kutta-Merson
at 1e-3) on ``--seeds``, prints a table (mean, standard error, min, falls),
then scores the winner on ``--report-seeds``, which must not overlap
``--seeds`` (:mod:`experiments.selection`). ``--ship`` writes the winner with
its mode recorded, so ``evaluate`` and ``render`` act in that mode by default;
``POLICY=... experiments/scripts/ship_pretrained.sh`` then packages it.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .cli_types import accuracy, obstacle_count, output_file, positive_int
from .mpirun import launched_by_mpirun


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "select", help="pick a run's runner on held-out seeds, report it on others",
        description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a training run directory")
    parser.add_argument("--seeds", required=True, help="selection seeds, e.g. 100-115")
    parser.add_argument("--report-seeds", default="0-9",
                        help="seeds the winner is reported on, disjoint from --seeds (default 0-9, the grader's); "
                             "'none' to skip")
    parser.add_argument("--modes", nargs="+", default=["expected", "mean"], choices=("expected", "mean"),
                        help="deterministic act modes to try (default: both)")
    parser.add_argument("--from-iteration", type=positive_int, default=None, metavar="N",
                        help="only the run's policies from training iteration N on (a long line's recent "
                             "snapshots)")
    parser.add_argument("--include", type=Path, nargs="+", default=[], metavar="NPZ",
                        help="exported policies from outside the run to score alongside, e.g. the runner "
                             "already shipped (pretrained/round2/policy.npz)")
    parser.add_argument("--difficulty", type=int, default=2, choices=(0, 1, 2))
    parser.add_argument("--max-obstacles", type=obstacle_count, default=10)
    parser.add_argument("--accuracy", type=accuracy, default=1e-3, help="integrator accuracy (1e-3: the grader's)")
    parser.add_argument("--max-steps", type=positive_int, default=1000)
    parser.add_argument("--ranks", type=positive_int, default=1, help="MPI processes to spread the episodes over")
    parser.add_argument("--out", type=output_file(".json"), default=None,
                        help="write the table and report as JSON (default: RUN_DIR/selection.json)")
    parser.add_argument("--ship", type=output_file(".npz"), default=None, metavar="NPZ",
                        help="write the winner here, recording its act mode")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    from .selection import SelectionError

    try:
        return _run(args)
    except SelectionError as err:
        print(f"l2run select: error: {err}", file=sys.stderr)
        return 2


def _run(args) -> int:
    from .selection import check_disjoint, find_candidates, parse_seeds

    seeds = parse_seeds(args.seeds)
    report_seeds = [] if str(args.report_seeds).lower() == "none" else parse_seeds(args.report_seeds,
                                                                                   "--report-seeds")
    check_disjoint(seeds, report_seeds)
    out = args.out if args.out is not None else args.run_dir / "selection.json"
    # Fails here, before mpirun, on a run with none.
    candidates = find_candidates(args.run_dir, args.from_iteration, args.include)
    if args.ranks > 1 and not launched_by_mpirun():
        return _relaunch(args, out)
    return _select_here(args, seeds, report_seeds, candidates, out)


def _select_here(args, seeds, report_seeds, candidates, out: Path) -> int:
    from baselines_ppo.export import with_act_mode

    from .evaluation import policy_env_config, write_json_atomically
    from .selection import format_table, select

    env_config = policy_env_config(str(candidates[0].path), difficulty=args.difficulty,
                                   max_obstacles=args.max_obstacles, integrator_accuracy=args.accuracy,
                                   max_steps=args.max_steps)
    result = select(args.run_dir, seeds, report_seeds, env_config, candidates, args.modes, progress=not args.quiet)
    if result is None:  # not rank 0
        return 0
    print(format_table(result))
    write_json_atomically(result, out)
    print(f"selection written to {out}")
    if args.ship is not None:
        winner = result["winner"]
        chosen = next(c for c in candidates if c.name == winner["candidate"])
        selection = {"selection": {"run_dir": str(args.run_dir), "candidate": winner["candidate"],
                                   "seeds": seeds, "mean": winner["mean"], "sem": winner["sem"],
                                   "report_seeds": report_seeds,
                                   "report_mean": result["report"]["summary"]["mean"] if result["report"] else None}}
        with_act_mode(chosen.load(), args.ship, winner["mode"], selection)  # the bytes scored, not the path now
        print(f"winner {winner['candidate']} (mode {winner['mode']}) written to {args.ship}")
    return 0


def _relaunch(args, out: Path) -> int:
    from .mpirun import MpirunNotFound, run_under_mpirun

    cli_args = ["select", args.run_dir.resolve(), "--seeds", args.seeds, "--report-seeds", args.report_seeds,
                "--modes", *args.modes, "--difficulty", args.difficulty, "--max-obstacles", args.max_obstacles,
                "--accuracy", repr(args.accuracy), "--max-steps", args.max_steps, "--ranks", args.ranks,
                "--out", out.resolve()]
    if args.from_iteration is not None:
        cli_args += ["--from-iteration", args.from_iteration]
    if args.include:
        cli_args += ["--include", *(path.resolve() for path in args.include)]
    if args.ship is not None:
        cli_args += ["--ship", args.ship.resolve()]
    if args.quiet:
        cli_args.append("--quiet")
    try:
        return run_under_mpirun("select", args.ranks, cli_args)
    except MpirunNotFound as err:
        print(f"l2run select: error: {err}", file=sys.stderr)
        return 2
