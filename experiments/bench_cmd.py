"""``l2run bench env|memory|integrators|min-excitation|policy|stiffness|scaling``: speed and memory, measured side by side.

Benchmarks print ratios from one run rather than asserting timings in tests:
timings depend on the machine, ratios measured together mostly do not.
"""
from __future__ import annotations

from .cli_types import accuracy, excitation_floor, existing_file, non_negative_int, obstacle_count, positive_int

#: --model of the env benchmarks.
_model_file = existing_file(".osim")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="measure env speed, memory growth, MPI scaling")
    kinds = parser.add_subparsers(dest="bench", required=True, metavar="KIND")

    env = kinds.add_parser("env", help="env vs a bare OpenSim loop, steps/s and ratios")
    env.add_argument("--episodes", type=positive_int, default=6, help="episodes per variant and accuracy")
    env.add_argument("--accuracies", type=accuracy, nargs="+", default=[1e-3, 3e-2])
    env.add_argument("--seed", type=non_negative_int, default=0)
    env.add_argument("--model", type=_model_file, default=None, help="an .osim file (default: gait9dof18musc)")
    env.set_defaults(func=_run_env)

    memory = kinds.add_parser("memory", help="RSS over many random-action episodes")
    memory.add_argument("--episodes", type=positive_int, default=300)
    memory.add_argument("--accuracy", type=accuracy, default=3e-2)
    memory.add_argument("--difficulty", type=int, default=2, choices=(0, 1, 2))
    memory.add_argument("--max-obstacles", type=obstacle_count, default=10)
    memory.add_argument("--seed", type=non_negative_int, default=0)
    memory.add_argument("--model", type=_model_file, default=None)
    memory.set_defaults(func=_run_memory)

    integrators = kinds.add_parser(
        "integrators", help="OpenSim integrators and accuracies against the 2017 grader's: speed and drift")
    integrators.add_argument("--candidates", nargs="+", default=[
        "runge_kutta_merson:3e-2", "semi_explicit_euler2:3e-2", "semi_explicit_euler2:1e-2", "runge_kutta3:3e-2"],
        help="integrator:accuracy pairs (integrators: see l2run.simulator.INTEGRATORS)")
    integrators.add_argument("--episodes", type=positive_int, default=6)
    integrators.add_argument("--max-steps", type=positive_int, default=300)
    integrators.add_argument("--hold", type=positive_int, default=5, help="steps each random excitation is held")
    integrators.add_argument("--seed", type=non_negative_int, default=0)
    integrators.add_argument("--model", type=_model_file, default=None)
    integrators.set_defaults(func=_run_integrators)

    floor = kinds.add_parser(
        "min-excitation", help="steps/s and distance with a floor on muscle excitations (env.min_excitation)")
    floor.add_argument("--floors", type=excitation_floor, nargs="+", default=[0.0, 0.02, 0.05, 0.1],
                       help="minimum excitations to compare; ratios are to the first")
    floor.add_argument("--policy", default=None,
                       help="an exported policy trained without a floor, a run directory, or 'random' "
                            "(default: pretrained/no_floor_954k/policy.npz)")
    floor.add_argument("--episodes", type=positive_int, default=3, help="episodes per floor")
    floor.add_argument("--max-steps", type=positive_int, default=1000)
    floor.add_argument("--hold", type=positive_int, default=5, help="steps each random excitation is held")
    floor.add_argument("--seed", type=non_negative_int, default=0)
    floor.set_defaults(func=_run_min_excitation)

    from .bench_policy import DEFAULT_VARIANTS
    from .bench_stiffness import DEFAULT_VARIANTS as STIFFNESS_VARIANTS

    policy = kinds.add_parser(
        "policy", help="a trained policy's steps/s, excitations at the bounds and integrator steps, per variant")
    _add_policy_arguments(policy, DEFAULT_VARIANTS, episodes=3)
    policy.set_defaults(func=_run_policy)

    stiffness = kinds.add_parser(
        "stiffness", help="which states make the model's ODE stiff under a trained policy (eigen-analysis)")
    _add_policy_arguments(stiffness, STIFFNESS_VARIANTS, episodes=2)
    stiffness.add_argument("--every", type=positive_int, default=25, help="steps between two samples")
    stiffness.set_defaults(func=_run_stiffness)

    from . import bench_scaling

    bench_scaling.add_parser(kinds)


def _add_policy_arguments(parser, variants, episodes: int) -> None:
    """The options ``bench policy`` and ``bench stiffness`` share."""
    parser.add_argument("--policy", default=None,
                        help="an exported policy or a run directory (default: pretrained/round2/policy.npz)")
    parser.add_argument("--variants", nargs="+", default=list(variants),
                        help="ACTIONS[+KEY=VALUE...]: ACTIONS sampled (as in training) or deterministic (the "
                             "clipped mean); keys floor, hipknee, transition (m/s), accuracy, integrator, "
                             "min_step, max_step (s); ratios are to the first variant")
    parser.add_argument("--episodes", type=positive_int, default=episodes, help="episodes per variant")
    parser.add_argument("--max-steps", type=positive_int, default=1000)
    parser.add_argument("--seed", type=non_negative_int, default=0, help="first course seed; noise draws follow it")


def _check_model(kind: str, model_path) -> None:
    """Load ``--model`` once before the benchmark: a file that is no OpenSim model
    fails in one line here, not in a traceback from deep inside the first variant."""
    if model_path is None:
        return
    from l2run import L2RunEnv

    try:
        L2RunEnv(difficulty=0, max_obstacles=0, model_path=model_path).close()
    except (ValueError, OSError) as err:
        raise SystemExit(f"l2run bench {kind}: --model: {err}") from None


def _run_env(args) -> int:
    from .bench_env import bench_env

    _check_model("env", args.model)
    bench_env(tuple(args.accuracies), args.episodes, seed=args.seed, model_path=args.model)
    return 0


def _run_memory(args) -> int:
    from .bench_env import bench_memory

    _check_model("memory", args.model)
    bench_memory(args.episodes, args.accuracy, args.difficulty, args.max_obstacles, args.seed, args.model)
    return 0


def _run_integrators(args) -> int:
    from l2run.simulator import INTEGRATORS

    from .bench_env import bench_integrators

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
    _check_model("integrators", args.model)
    bench_integrators(candidates, args.episodes, args.max_steps, args.hold, args.seed, args.model)
    return 0


def _run_min_excitation(args) -> int:
    from .bench_excitation import NO_FLOOR_POLICY, bench_min_excitation
    from .evaluation import policy_env_config
    from .policies import BUILTIN_POLICIES, check_policy_spec

    policy = str(NO_FLOOR_POLICY) if args.policy is None else args.policy
    try:
        check_policy_spec(policy)
        if policy not in BUILTIN_POLICIES:
            policy_env_config(policy)  # reads the policy file: a bad one fails here, in one line
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"l2run bench min-excitation: {err}") from None
    bench_min_excitation(args.floors, policy, args.episodes, args.max_steps, args.hold, args.seed)
    return 0


def _policy_and_variants(kind: str, args):
    """The policy spec (default: the shipped runner) and parsed variants, or one
    clear line (SystemExit) naming what is wrong."""
    from .bench_policy import DEFAULT_POLICY, parse_variants
    from .evaluation import policy_env_config
    from .policies import BUILTIN_POLICIES, check_policy_spec

    policy = str(DEFAULT_POLICY) if args.policy is None else args.policy
    if policy in BUILTIN_POLICIES:
        raise SystemExit(f"l2run bench {kind}: --policy must be an exported policy or a run directory "
                         f"(it samples with the policy's std), got {policy!r}")
    try:
        check_policy_spec(policy)
        policy_env_config(policy)  # reads the policy file: a bad one fails here, in one line
        variants = parse_variants(args.variants)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"l2run bench {kind}: {err}") from None
    return policy, variants


def _run_policy(args) -> int:
    from .bench_policy import bench_policy

    policy, variants = _policy_and_variants("policy", args)
    bench_policy(policy, variants, args.episodes, args.max_steps, args.seed)
    return 0


def _run_stiffness(args) -> int:
    from .bench_stiffness import bench_stiffness

    policy, variants = _policy_and_variants("stiffness", args)
    bench_stiffness(policy, variants, args.episodes, args.every, args.max_steps, args.seed)
    return 0
