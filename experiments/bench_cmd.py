"""``l2run bench env|memory|integrators|min-excitation|scaling``: speed and memory, measured side by side.

Benchmarks print ratios from one run rather than asserting timings in tests:
timings depend on the machine, ratios measured together mostly do not.
"""
from __future__ import annotations


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="measure env speed, memory growth, MPI scaling")
    kinds = parser.add_subparsers(dest="bench", required=True, metavar="KIND")

    env = kinds.add_parser("env", help="env vs a bare OpenSim loop, steps/s and ratios")
    env.add_argument("--episodes", type=int, default=6, help="episodes per variant and accuracy")
    env.add_argument("--accuracies", type=float, nargs="+", default=[1e-3, 3e-2])
    env.add_argument("--seed", type=int, default=0)
    env.add_argument("--model", default=None, help="an .osim file (default: gait9dof18musc)")
    env.set_defaults(func=_run_env)

    memory = kinds.add_parser("memory", help="RSS over many random-action episodes")
    memory.add_argument("--episodes", type=int, default=300)
    memory.add_argument("--accuracy", type=float, default=3e-2)
    memory.add_argument("--difficulty", type=int, default=2, choices=(0, 1, 2))
    memory.add_argument("--max-obstacles", type=int, default=10)
    memory.add_argument("--seed", type=int, default=0)
    memory.add_argument("--model", default=None)
    memory.set_defaults(func=_run_memory)

    integrators = kinds.add_parser(
        "integrators", help="OpenSim integrators and accuracies against the 2017 grader's: speed and drift")
    integrators.add_argument("--candidates", nargs="+", default=[
        "runge_kutta_merson:3e-2", "semi_explicit_euler2:3e-2", "semi_explicit_euler2:1e-2", "runge_kutta3:3e-2"],
        help="integrator:accuracy pairs (integrators: see l2run.simulator.INTEGRATORS)")
    integrators.add_argument("--episodes", type=int, default=6)
    integrators.add_argument("--max-steps", type=int, default=300)
    integrators.add_argument("--hold", type=int, default=5, help="steps each random excitation is held")
    integrators.add_argument("--seed", type=int, default=0)
    integrators.add_argument("--model", default=None)
    integrators.set_defaults(func=_run_integrators)

    floor = kinds.add_parser(
        "min-excitation", help="steps/s and distance with a floor on muscle excitations (env.min_excitation)")
    floor.add_argument("--floors", type=float, nargs="+", default=[0.0, 0.02, 0.05, 0.1],
                       help="minimum excitations to compare; ratios are to the first")
    floor.add_argument("--policy", default=None,
                       help="an exported policy trained without a floor, a run directory, or 'random' "
                            "(default: pretrained/no_floor_954k/policy.npz)")
    floor.add_argument("--episodes", type=int, default=3, help="episodes per floor")
    floor.add_argument("--max-steps", type=int, default=1000)
    floor.add_argument("--hold", type=int, default=5, help="steps each random excitation is held")
    floor.add_argument("--seed", type=int, default=0)
    floor.set_defaults(func=_run_min_excitation)

    from . import bench_scaling

    bench_scaling.add_parser(kinds)


def _positive(name, value):
    if value < 1:
        raise SystemExit(f"l2run bench: {name} must be >= 1, got {value}")


def _run_env(args) -> int:
    from .bench_env import bench_env

    _positive("--episodes", args.episodes)
    bench_env(tuple(args.accuracies), args.episodes, seed=args.seed, model_path=args.model)
    return 0


def _run_memory(args) -> int:
    from .bench_env import bench_memory

    _positive("--episodes", args.episodes)
    bench_memory(args.episodes, args.accuracy, args.difficulty, args.max_obstacles, args.seed, args.model)
    return 0


def _run_integrators(args) -> int:
    from l2run.simulator import INTEGRATORS

    from .bench_env import bench_integrators

    _positive("--episodes", args.episodes)
    candidates = []
    for item in args.candidates:
        name, _, accuracy = item.partition(":")
        try:
            value = float(accuracy)
        except ValueError:
            value = -1.0
        if name not in INTEGRATORS or not 0 < value < 1:
            raise SystemExit(f"l2run bench integrators: candidate {item!r} is not INTEGRATOR:ACCURACY with an "
                             f"integrator in {sorted(INTEGRATORS)} and an accuracy in (0, 1)")
        candidates.append((name, value))
    bench_integrators(candidates, args.episodes, args.max_steps, args.hold, args.seed, args.model)
    return 0


def _run_min_excitation(args) -> int:
    from .bench_excitation import NO_FLOOR_POLICY, bench_min_excitation
    from .policies import check_policy_spec

    _positive("--episodes", args.episodes)
    _positive("--max-steps", args.max_steps)
    _positive("--hold", args.hold)
    bad = [f for f in args.floors if not 0 <= f < 1]
    if bad:
        raise SystemExit(f"l2run bench min-excitation: --floors must lie in [0, 1), got {bad}")
    policy = str(NO_FLOOR_POLICY) if args.policy is None else args.policy
    check_policy_spec(policy)
    bench_min_excitation(args.floors, policy, args.episodes, args.max_steps, args.hold, args.seed)
    return 0
