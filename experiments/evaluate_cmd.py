"""``l2run evaluate``: the 2017 score of a policy over seeded courses.

    l2run evaluate --policy runs/round2 --episodes 10 --difficulty 2 --max-obstacles 10 \\
        --accuracy 1e-3 --seed 0 --out report.json [--ranks 2] [--act sample]

With ``--ranks N`` (or under your own ``mpirun -np N l2run evaluate ...``) the
episodes are split over N processes, with the same per-seed scores as one.
"""
from __future__ import annotations

from baselines_ppo.export import ACTS

from .cli_types import accuracy, non_negative_int, obstacle_count, output_file, positive_int
from .mpirun import check_ranks_for_episodes, launched_by_mpirun


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score a policy like the 2017 grader (deterministic, metres per episode)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--policy", required=True,
                        help="a run directory, an exported policy .npz, 'random' or 'zero'")
    parser.add_argument("--episodes", type=positive_int, default=10)
    parser.add_argument("--difficulty", type=int, default=2, choices=(0, 1, 2))
    parser.add_argument("--max-obstacles", type=obstacle_count, default=10)
    parser.add_argument("--accuracy", type=accuracy, default=1e-3,
                        help="integrator accuracy (1e-3: the 2017 grader's)")
    parser.add_argument("--integrator", default="runge_kutta_merson",
                        help="OpenSim integrator (default: the grader's, whatever the policy trained with)")
    parser.add_argument("--max-steps", type=positive_int, default=1000)
    parser.add_argument("--seed", type=non_negative_int, default=0, help="episode i runs the course of seed + i")
    parser.add_argument("--out", type=output_file(), default=None, help="write the report as JSON here")
    parser.add_argument("--act", choices=ACTS, default=None,
                        help="how the policy acts: 'expected' or 'mean' (deterministic, as the grader; default: "
                             "the mode its file records, else expected), or 'sample', drawn as in training "
                             "(seeded per course): what the training distance measures")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--ranks", type=positive_int, default=1,
                        help="split the episodes over this many MPI processes (default 1: this one; "
                             "at most --episodes)")
    parser.set_defaults(func=run)


def relaunch_under_mpirun(args) -> int:
    """Run this same evaluation as ``args.ranks`` MPI processes; mpirun's exit status."""
    from .mpirun import relaunch

    cli_args = ["evaluate", "--policy", args.policy, "--episodes", args.episodes, "--difficulty", args.difficulty,
                "--max-obstacles", args.max_obstacles, "--accuracy", repr(args.accuracy),
                "--integrator", args.integrator, "--max-steps", args.max_steps, "--seed", args.seed,
                "--ranks", args.ranks]
    if args.act is not None:
        cli_args += ["--act", args.act]
    if args.out is not None:
        cli_args += ["--out", args.out.resolve()]
    return relaunch("evaluate", args.ranks, cli_args, args.quiet)


def run(args) -> int:
    from .evaluation import evaluate, format_report, policy_env_config, write_json_atomically
    from .policies import check_act, check_policy_spec

    # Single values are checked as the command line is parsed (experiments.cli_types).
    check_ranks_for_episodes("evaluate", args.ranks, args.episodes)
    try:
        check_policy_spec(args.policy)
        check_act(args.policy, args.act)
        config = policy_env_config(  # reads the policy file: a bad one fails here, before mpirun
            args.policy, difficulty=args.difficulty, max_obstacles=args.max_obstacles,
            integrator_accuracy=args.accuracy, integrator=args.integrator, max_steps=args.max_steps,
        )
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"l2run evaluate: {err}") from err
    if args.ranks > 1 and not launched_by_mpirun():
        return relaunch_under_mpirun(args)
    try:
        report = evaluate(args.policy, args.episodes, config, args.seed, progress=not args.quiet, act=args.act)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"l2run evaluate: {err}") from err
    if report is None:  # not rank 0
        return 0
    print(format_report(report))
    if args.out is not None:
        write_json_atomically(report, args.out)
        print(f"report written to {args.out}")
    return 0
