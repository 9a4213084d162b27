"""CPU seconds per training epoch of every time-series recipe (FCN, ResNet, each ± SR), to size a sweep.

On one thread, each recipe trains 1 epoch and then 1 + E epochs (E chosen so the E epochs cost about
``--target`` CPU seconds); the difference of the process CPU times over E is the cost of an epoch without the
set-up and the final test. CPU time, not wall time, so that other processes on a shared machine do not inflate it
(they still slow it through the caches: compare ratios). Prints a Markdown table with the full schedule's
extrapolated hours and the SR arm's cost relative to its baseline:

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/timeseries_epoch_time.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from srblock.engine import load_config, train
from srblock.recipes import find_recipe


def _cpu_seconds(recipe: str, epochs: int) -> float:
    config = load_config(f"timeseries/{recipe}", [f"train.epochs={epochs}", f"train.eval_every={epochs}"])
    with tempfile.TemporaryDirectory() as out:
        start = time.process_time()
        train(config, Path(out) / "run", quiet=True)
        return time.process_time() - start


def epoch_seconds(recipe: str, target: float) -> float:
    """CPU seconds of one training epoch of ``recipe`` (see the module docstring)."""
    one = _cpu_seconds(recipe, 1)
    extra = max(1, min(100, round(target / max(one * 0.8, 1e-3))))
    return (_cpu_seconds(recipe, 1 + extra) - one) / extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=8.0, help="CPU seconds the measured epochs should take")
    parser.add_argument("--datasets", nargs="*", default=None, help="lower-case recipe prefixes (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = find_recipe("timeseries/gunpoint_fcn").parent
    names = sorted(p.stem for p in folder.glob("*.yaml") if not p.stem.startswith("_") and not p.stem.endswith("_sr"))
    if args.datasets:
        names = [n for n in names if n.split("_")[0] in args.datasets]
    print("| recipe | CPU s/epoch | + SR | SR / base | full schedule, CPU h (base) | epochs |")
    print("|---|---|---|---|---|---|")
    for name in names:
        base, sr = epoch_seconds(name, args.target), epoch_seconds(f"{name}_sr", args.target)
        full = load_config(f"timeseries/{name}")["train"]["epochs"]
        print(f"| {name} | {base:.3f} | {sr:.3f} | {sr / base:.2f} | {base * full / 3600:.2f} | {full} |", flush=True)


if __name__ == "__main__":
    main()
