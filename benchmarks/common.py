"""What every benchmark script shares: parse its arguments, run, print, and write the result as JSON on request."""

from __future__ import annotations

import argparse
import math
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from srblock.analysis.timing import interleaved_timings
from srblock.io import write_json


def make_main(
    build_parser: Callable[[], argparse.ArgumentParser], run: Callable[[argparse.Namespace], Any]
) -> Callable[[list[str] | None], Any]:
    """``main(argv)`` of a benchmark: ``run(parsed args)``, then the result to ``--out`` when that is given."""

    def main(argv: list[str] | None = None) -> Any:
        args = build_parser().parse_args(argv)
        result = run(args)
        if getattr(args, "out", None):
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            write_json(args.out, result)
            print(f"wrote {args.out}")
        return result

    return main


def calibrate_inner(step: Callable[[], object], args: argparse.Namespace, device: torch.device) -> int:
    """``args.inner``, raised so one timed sample lasts ``args.min_sample_ms`` (launch-bound GPU steps are ~ms).

    ``args.min_sample_ms`` ``None`` means 25 ms on CUDA and no calibration on the CPU.
    """
    target = args.min_sample_ms if args.min_sample_ms is not None else (25.0 if device.type == "cuda" else 0.0)
    if target <= 0:
        return args.inner
    step()  # warm (allocator, cuDNN autotuning)
    seconds = interleaved_timings({"x": step}, repeats=3, warmup=0, device=device)["x"]
    return max(args.inner, math.ceil(target / (1e3 * min(seconds))))


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's, for the result files."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()})"
