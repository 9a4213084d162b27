"""Both benchmarks in one go (about 1-2 minutes on one H100), results in one JSON file.

    python benchmarks/run_all.py --device cuda --out $OUT/bench.json

Runs, in this order (the file is rewritten after each part, so a time-out keeps what finished):
  1. sr_overhead: ResNet50 @ 224, batch 1 and 32, eval + train; fp32, then bf16 autocast + channels_last;
  2. engine_throughput: CIFAR ResNet18-SR, batch 128, fp32 and bf16.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import engine_throughput  # the script's folder is on sys.path when run as `python benchmarks/run_all.py`
import sr_overhead
from srblock.io import write_json


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", required=True, help="JSON file for all results")
    p.add_argument("--quick", action="store_true", help="tiny sizes and repeats: checks the script runs")
    args = p.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.quick:  # a smoke test of the whole script (CPU: under a minute); numbers are not meaningful
        sr = ["--input-size", "64", "--batch-sizes", "1", "2", "--repeats", "2", "--warmup", "1"]
        engine = ["--width", "0.25", "--batch-size", "32", "--steps", "2", "--repeats", "2", "--images", "256"]
    else:
        sr = ["--batch-sizes", "1", "32", "--repeats", "20"]
        engine = ["--batch-size", "128", "--repeats", "10"]
    parts = [
        ("sr_overhead_fp32", sr_overhead, sr),
        ("sr_overhead_bf16_cl", sr_overhead, [*sr, "--amp", "bf16", "--channels-last"]),
        ("engine_fp32", engine_throughput, engine),
        ("engine_bf16", engine_throughput, [*engine, "--amp", "bf16"]),
    ]
    results: dict[str, object] = {"device": args.device, "torch": torch.__version__, "parts": {}}
    started = time.perf_counter()
    for name, module, argv in parts:
        print(f"\n== {name}: {module.__name__} {' '.join(argv)}", flush=True)
        try:
            results["parts"][name] = module.main(["--device", args.device, *argv])
        except Exception as err:  # keep the other parts' numbers
            results["parts"][name] = {"error": f"{type(err).__name__}: {err}"}
            print(f"{name} failed: {err}", flush=True)
        results["seconds"] = time.perf_counter() - started
        write_json(out, results)
    print(f"\nwrote {out} ({results['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
