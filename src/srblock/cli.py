"""The ``srblock`` command line: each verb is a thin call into the library.

Verbs register themselves in :data:`VERBS` through ``_add_<verb>`` functions below, one per verb.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from . import __version__

VerbAdder = Callable[[argparse._SubParsersAction], None]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="srblock", description="Squeeze-and-Remember block: train, evaluate, analyse."
    )
    parser.add_argument("--version", action="version", version=f"srblock {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for add in VERBS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a grid of recipes x seeds (resumable) and compare arms with Welch t-tests",
        description="Run sweeps/<name>.yaml one run after another, skipping runs whose summary.json exists; "
        "write results.csv and table.md (mean ± std, Δ vs the baseline arm, Welch p) into the sweep's output.",
    )
    p.add_argument("-c", "--config", help="sweep file (sweeps/<name>.yaml)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and which are done; run nothing")
    p.add_argument("--report", metavar="DIR", help="only re-aggregate the finished runs under DIR")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra override for every run, e.g. --set data.root=/data/cifar10 (repeatable)",
    )
    p.add_argument("--baseline", help="arm to compare against (default: the sweep's baseline)")
    p.add_argument("--metric", help="summary.json key to compare (default: the sweep's metric, test_acc1)")

    def run(args: argparse.Namespace) -> int:
        from .experiments import sweep_command

        return sweep_command(
            args.config,
            report=args.report,
            dry_run=args.dry_run,
            overrides=args.overrides,
            baseline=args.baseline,
            metric=args.metric,
        )

    p.set_defaults(func=run)


VERBS: list[VerbAdder] = [_add_sweep]

if __name__ == "__main__":
    sys.exit(main())
