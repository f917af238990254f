"""``l2run select``: pick a run's runner on held-out seeds, report it on others.

    l2run select runs/round2 --seeds 100-115 [--report-seeds 0-9] [--ranks 2] \\
        [--out runs/round2/selection.json] [--ship runs/round2/selected.npz]
    l2run select --reports reports/line-*-seeds100-131.json [--report-seeds 0-9] \\
        [--policy-files DIR] [--out FILE.json] [--ship NPZ]

Scores the run's snapshots, best_policy.npz and policy.npz (``--from-iteration
N``: only those from iteration N on; ``--include``: policies from elsewhere,
such as the runner already shipped) in both
deterministic modes at the grader's settings (round-2 course, Runge-Kutta-Merson
at 1e-3) on ``--seeds``, prints a table (mean, standard error, min, falls),
then scores the winner on ``--report-seeds``, which must not overlap
``--seeds`` (:mod:`experiments.selection`). ``--ship`` writes the winner with
its mode recorded, so ``evaluate`` and ``render`` act in that mode by default;
``POLICY=... experiments/scripts/ship_pretrained.sh`` then packages it.

With ``--reports`` instead of a run directory, the table is made of
``l2run evaluate`` reports already on file, at the settings they were scored
at, and only the winner runs (:mod:`experiments.report_selection`).
"""
from __future__ import annotations

import sys
from pathlib import Path

from .cli_types import accuracy, existing_file, obstacle_count, output_file, positive_int
from .mpirun import launched_by_mpirun


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "select", help="pick a run's runner on held-out seeds, report it on others",
        description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, nargs="?", default=None,
                        help="a training run directory (or give --reports)")
    parser.add_argument("--reports", type=existing_file(".json"), nargs="+", default=None, metavar="REPORT",
                        help="choose among the policies these `l2run evaluate --out` reports score, without "
                             "running them again; only the winner runs, on --report-seeds")
    parser.add_argument("--policy-files", type=Path, nargs="+", default=[], metavar="NPZ_OR_DIR",
                        help="with --reports: where else to look for the winner's file, matched by the sha256 "
                             "its reports recorded (when the path they name is gone or holds another file)")
    parser.add_argument("--seeds", default=None,
                        help="selection seeds, e.g. 100-115 (with --reports: default, the courses every report "
                             "scored)")
    parser.add_argument("--report-seeds", default="0-9",
                        help="seeds the winner is reported on, disjoint from --seeds (default 0-9, the grader's); "
                             "'none' to skip")
    parser.add_argument("--modes", nargs="+", default=None, choices=("expected", "mean"),
                        help="deterministic act modes to try (default: both)")
    parser.add_argument("--from-iteration", type=positive_int, default=None, metavar="N",
                        help="only the run's policies from training iteration N on (a long line's recent "
                             "snapshots)")
    parser.add_argument("--include", type=Path, nargs="+", default=[], metavar="NPZ",
                        help="exported policies from outside the run to score alongside, e.g. the runner "
                             "already shipped (pretrained/round2/policy.npz)")
    # None: the grader's (SETTINGS below), or with --reports the reports' own
    parser.add_argument("--difficulty", type=int, default=None, choices=(0, 1, 2), help="default 2")
    parser.add_argument("--max-obstacles", type=obstacle_count, default=None, help="default 10")
    parser.add_argument("--accuracy", type=accuracy, default=None,
                        help="integrator accuracy (default 1e-3: the grader's)")
    parser.add_argument("--max-steps", type=positive_int, default=None, help="default 1000")
    parser.add_argument("--ranks", type=positive_int, default=1, help="MPI processes to spread the episodes over")
    parser.add_argument("--out", type=output_file(".json"), default=None,
                        help="write the table and report as JSON (default: RUN_DIR/selection.json; with "
                             "--reports, selection.json beside the first report)")
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


#: (option attribute, EnvConfig field, flag, the grader's value): the settings a run directory is scored at.
SETTINGS = (("difficulty", "difficulty", "--difficulty", 2), ("max_obstacles", "max_obstacles", "--max-obstacles", 10),
            ("accuracy", "integrator_accuracy", "--accuracy", 1e-3), ("max_steps", "max_steps", "--max-steps", 1000))


def _run(args) -> int:
    from .selection import SelectionError, check_disjoint, find_candidates, parse_seeds

    if (args.run_dir is None) == (args.reports is None):
        raise SelectionError("give a run directory or --reports REPORT..., not both" if args.run_dir is not None
                             else "give a run directory to score its policies, or --reports REPORT... to choose "
                                  "among evaluate reports")
    seeds = None if args.seeds is None else parse_seeds(args.seeds)
    report_seeds = [] if str(args.report_seeds).lower() == "none" else parse_seeds(args.report_seeds,
                                                                                   "--report-seeds")
    if args.reports is not None:
        return _run_reports(args, seeds, report_seeds)
    if args.policy_files:
        raise SelectionError("--policy-files works with --reports; a run directory's policies are its own files")
    if seeds is None:
        raise SelectionError("a run directory's selection needs --seeds, e.g. --seeds 100-115")
    for attribute, _, _, grader in SETTINGS:
        if getattr(args, attribute) is None:
            setattr(args, attribute, grader)
    args.modes = args.modes or ["expected", "mean"]
    check_disjoint(seeds, report_seeds)
    out = args.out if args.out is not None else args.run_dir / "selection.json"
    # Fails here, before mpirun, on a run with none.
    candidates = find_candidates(args.run_dir, args.from_iteration, args.include)
    if args.ranks > 1 and not launched_by_mpirun():
        return _relaunch(args, out)
    return _select_here(args, seeds, report_seeds, candidates, out)


def _run_reports(args, seeds, report_seeds) -> int:
    """``--reports``: the table from the reports, then the winner alone runs.
    Every check (the courses, the settings, the winner's file) is made before
    mpirun starts, and again on every rank (reading a few JSON files)."""
    from .evaluation import write_json_atomically
    from .report_selection import check_settings, select_from_reports, table_from_reports, winner_candidate
    from .selection import SelectionError, check_disjoint, format_table

    for option, value in (("--include", args.include), ("--from-iteration", args.from_iteration),
                          ("--modes", args.modes)):
        if value:
            raise SelectionError(f"{option} works with a run directory; with --reports the candidates are the "
                                 "reports' policies, in the modes they were scored in")
    for path in args.policy_files:
        if not path.exists():
            raise SelectionError(f"--policy-files {path}: no such file or directory (expected an exported .npz or "
                                 "a directory of them)")
    table = table_from_reports(args.reports, seeds)
    check_disjoint(table.seeds, report_seeds)
    check_settings(table, {field: (flag, getattr(args, attribute)) for attribute, field, flag, _ in SETTINGS})
    winner, mode = None, None
    if report_seeds or args.ship is not None:
        winner, mode = winner_candidate(table, args.policy_files)
    out = args.out if args.out is not None else Path(args.reports[0]).parent / "selection.json"
    if args.ranks > 1 and report_seeds and not launched_by_mpirun():
        return _relaunch(args, out)
    result = select_from_reports(table, report_seeds, winner, mode, progress=not args.quiet)
    if result is None:  # not rank 0
        return 0
    print(format_table(result))
    if winner is not None and Path(winner.path) != Path(table.policies[table.winner].source):
        print(f"the winner's file: {winner.path} (its sha256 is the one its reports recorded)")
    write_json_atomically(result, out)
    print(f"selection written to {out}")
    if args.ship is not None:
        _ship(winner, result, {"reports": result["reports"]}, args.ship)
    return 0


def _ship(chosen, result: dict, source: dict, path: Path) -> None:
    """Write the winner ``chosen`` (the bytes scored, not what its path holds now)
    in the mode it won in, with how it was selected (``source``: where its
    candidates came from) in its metadata."""
    from baselines_ppo.export import with_act_mode

    winner = result["winner"]
    selection = {"selection": {**source, "candidate": winner["candidate"], "seeds": result["selection_seeds"],
                               "mean": winner["mean"], "sem": winner["sem"], "report_seeds": result["report_seeds"],
                               "report_mean": result["report"]["summary"]["mean"] if result["report"] else None}}
    with_act_mode(chosen.load(), path, winner["mode"], selection)
    print(f"winner {chosen.name} (mode {winner['mode']}) written to {path}")


def _select_here(args, seeds, report_seeds, candidates, out: Path) -> int:
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
        _ship(chosen, result, {"run_dir": str(args.run_dir)}, args.ship)
    return 0


def _relaunch(args, out: Path) -> int:
    from .mpirun import MpirunNotFound, run_under_mpirun

    if args.reports is not None:
        cli_args = ["select", "--reports", *(path.resolve() for path in args.reports)]
        if args.seeds is not None:
            cli_args += ["--seeds", args.seeds]
        if args.policy_files:
            cli_args += ["--policy-files", *(path.resolve() for path in args.policy_files)]
    else:
        cli_args = ["select", args.run_dir.resolve(), "--seeds", args.seeds, "--modes", *args.modes]
        if args.from_iteration is not None:
            cli_args += ["--from-iteration", args.from_iteration]
        if args.include:
            cli_args += ["--include", *(path.resolve() for path in args.include)]
    for attribute, _, flag, _ in SETTINGS:
        value = getattr(args, attribute)
        if value is not None:
            cli_args += [flag, repr(value) if isinstance(value, float) else value]
    cli_args += ["--report-seeds", args.report_seeds, "--ranks", args.ranks, "--out", out.resolve()]
    if args.ship is not None:
        cli_args += ["--ship", args.ship.resolve()]
    if args.quiet:
        cli_args.append("--quiet")
    try:
        return run_under_mpirun("select", args.ranks, cli_args)
    except MpirunNotFound as err:
        print(f"l2run select: error: {err}", file=sys.stderr)
        return 2
