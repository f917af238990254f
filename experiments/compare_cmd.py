"""``l2run compare``: two runners' evaluation reports, paired by course.

    l2run evaluate --policy runs/a/snapshots/policy-00000900.npz --seed 100 --episodes 16 --out a.json
    l2run evaluate --policy runs/b/snapshots/policy-00000900.npz --seed 100 --episodes 16 --out b.json
    l2run compare a.json b.json

The first report's policy is the reference; reports of one policy are merged
(``experiments.comparison``). With three policies or more, one more line asks
whether they differ at all, on the courses all were scored on
(``experiments.spread``).
"""
from __future__ import annotations

from .cli_types import existing_file


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="is one runner better than another? evaluation reports paired by course",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("reports", nargs="+", type=existing_file(".json"),
                        help="reports of `l2run evaluate --out`; the first one's policy is the reference")
    parser.set_defaults(func=run)


def run(args) -> int:
    from .comparison import ComparisonError, common_scores, compare_policies, format_comparison, load_reports
    from .spread import format_spread, spread

    try:
        policies = load_reports(args.reports)
        reference, results = compare_policies(policies)
    except ComparisonError as err:
        raise SystemExit(f"l2run compare: {err}") from None
    print(format_comparison(reference, results))
    scores = common_scores(policies)
    if len(policies) > 2 and scores is not None:  # two: the paired line above says it
        print(format_spread(spread(scores)))
    return 0
