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


VERBS: list[VerbAdder] = []

if __name__ == "__main__":
    sys.exit(main())
