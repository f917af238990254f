"""The ``l2run`` command: one subcommand per module.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``
(which registers the subparser and sets ``func``) so that this file only lists
them and heavy imports (TensorFlow, OpenSim) happen only for the command run.
"""
import argparse
import importlib
import os
import sys

from baselines_ppo.threads import limit_threads

#: subcommand modules, in the order ``l2run --help`` lists them.
COMMAND_MODULES = (
    "experiments.train_cmd",
    "experiments.stop_cmd",
    "experiments.evaluate_cmd",
    "experiments.compare_cmd",
    "experiments.select_cmd",
    "experiments.average_cmd",
    "experiments.render_cmd",
    "experiments.plot_cmd",
    "experiments.obs_stats_cmd",
    "experiments.falls_cmd",
    "experiments.bench_cmd",
)


def build_parser(modules=COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="l2run",
        description="Train, evaluate and render PPO runners for OpenSim's Learning to Run model.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in modules:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv=None) -> int:
    # the variables, before a subcommand first imports numpy (the trainer sizes TensorFlow's pools)
    limit_threads(os.environ)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
