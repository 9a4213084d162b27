"""What every benchmark script shares: parse its arguments, run, print, and write the result as JSON on request."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def make_main(
    build_parser: Callable[[], argparse.ArgumentParser], run: Callable[[argparse.Namespace], Any]
) -> Callable[[list[str] | None], Any]:
    """``main(argv)`` of a benchmark: ``run(parsed args)``, then the result to ``--out`` when that is given."""

    def main(argv: list[str] | None = None) -> Any:
        args = build_parser().parse_args(argv)
        result = run(args)
        if getattr(args, "out", None):
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
            print(f"wrote {args.out}")
        return result

    return main
