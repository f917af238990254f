"""``l2run average``: one policy whose weights are the mean of a line's late policies.

    l2run average runs/round2/snapshots/policy-00001{46..55}0.npz --out runs/judge/average.npz
    l2run evaluate --policy runs/judge/average.npz --episodes 32 --seed 100 --accuracy 1e-3 --out average.json
    l2run compare line.json average.json

Stochastic weight averaging of policies of one line, listed oldest first: the
last one's observation statistics are kept, every other first layer is rewritten
to read them (``baselines_ppo.averaging``). Whether the mean runs better than
its parts is for a held-out evaluation to say. The file written records the
files it was averaged from; an existing file is never overwritten.
"""
from __future__ import annotations

from .cli_types import existing_file, output_file


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "average", help="average the weights of a line's late policies into one (SWA)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("policies", nargs="+", type=existing_file(".npz"),
                        help="exported policies of one line, oldest first (e.g. its snapshots)")
    parser.add_argument("--out", type=output_file(".npz"), required=True,
                        help="the averaged policy file to write (must not exist)")
    parser.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from baselines_ppo.averaging import average_policies, flat_weights, weight_distances
    from baselines_ppo.export import PolicyFileError, load_policy, save_policy

    if args.out.exists():
        raise SystemExit(f"l2run average: {args.out} exists; name a new file (it is never overwritten)")
    try:
        policies = [load_policy(path) for path in args.policies]
        averaged = average_policies(policies)
    except (PolicyFileError, ValueError) as err:
        raise SystemExit(f"l2run average: {err}") from None
    save_policy(args.out, averaged)
    hidden = " x ".join(str(kernel.shape[1]) for kernel, _ in averaged.actor[:-1])
    print(f"averaged {len(policies)} policies ({hidden} {averaged.activation}) into {args.out}")
    distances = weight_distances(policies, averaged)
    norm = np.linalg.norm(flat_weights(averaged.actor))
    print(f"their weights lie {distances.min():.3g} to {distances.max():.3g} from the mean's "
          f"(whose norm is {norm:.3g})")
    return 0
