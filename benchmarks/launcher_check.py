"""The sweep launchers on a real machine (not collected by pytest): the same tiny sweep run sequentially and on
``local:N`` workers, compared run by run, with the wall time of each as a ratio.

A 2-arm (R18, R18+SR) x 2-seed sweep on synthetic CIFAR-sized data (class k: a brighter k-th band, so a few hundred
steps learn it). Prints one JSON object: both wall times and their ratio, each run's metric and device under both
launchers, and the largest metric difference (with cudnn's autotuner on, GPU runs need not be bit-identical across
processes; ``--deterministic`` asks for deterministic kernels).

    python benchmarks/launcher_check.py                          # cuda when present: 2 workers, 300 iterations
    python benchmarks/launcher_check.py --device cpu --iterations 3 --width 0.0625 --train 256
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from srblock.experiments import load_sweep, run_sweep
from srblock.experiments.launchers import make_launcher
from srblock.io import write_text


def _write_data(root: Path, num_train: int, num_test: int = 512, size: int = 32, classes: int = 10) -> None:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for name, n in (("train", num_train), ("test", num_test)):
        y = np.arange(n) % classes
        x = rng.integers(0, 100, size=(n, size, size, 3), dtype=np.uint8)
        band = size // classes
        for k in range(classes):
            x[y == k, :, k * band : (k + 1) * band, :] += 120
        np.savez(root / f"{name}.npz", x=x, y=y)


def _sweep_file(folder: Path, output: Path, args: argparse.Namespace) -> Path:
    recipe = {
        "data": {"dataset": "npz", "root": str(folder / "data"), "val_fraction": 0.1},
        "model": {"name": "cifar_resnet18", "num_classes": 10, "width": args.width, "input_size": [3, 32, 32]},
        "optim": {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4},
        "schedule": {"milestones": [args.iterations * 2 // 3]},
        "train": {
            "iterations": args.iterations,
            "batch_size": 128,
            "log_interval": 100,
            "device": args.device,
            "deterministic": args.deterministic,
        },
    }
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    sweep = {
        "name": "launcher-check",
        "output": str(output),
        "baseline": "r18",
        "seeds": [0, 1],
        "arms": {
            "r18": {"recipe": str(folder / "recipe.yaml")},
            "r18-sr": {
                "recipe": str(folder / "recipe.yaml"),
                "overrides": {"model.sr_stage": 3, "model.num_memories": 10, "model.hidden": 8},
            },
        },
    }
    path = folder / f"{output.name}.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def _runs(output: Path) -> dict[str, dict]:
    found = {}
    for path in sorted(output.glob("*/*/summary.json")):
        summary = json.loads(path.read_text())
        found[f"{path.parent.parent.name}/{path.parent.name}"] = {
            "test_acc1": summary["test_acc1"],
            "device": summary["device"],
            "wall_time_s": round(summary["wall_time_s"], 2),
        }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--train", type=int, default=8192, help="training images")
    parser.add_argument("--device", default="auto", help="train.device of the recipe (auto: cuda when present)")
    parser.add_argument("--threads", type=int, help="threads per local worker (default: cores / workers)")
    parser.add_argument(
        "--deterministic", action="store_true", help="train.deterministic: deterministic kernels, no cudnn autotuner"
    )
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write_data(folder / "data", args.train)
        result: dict = {"args": vars(args)}
        for name, spec in (("sequential", "sequential"), ("local", f"local:{args.workers}")):
            sweep = load_sweep(_sweep_file(folder, folder / name, args))
            options = {"threads": args.threads} if name == "local" and args.threads else {}
            launcher = make_launcher(spec, options, output=sweep.output)
            start = time.perf_counter()
            run_sweep(sweep, launcher=launcher, log=lambda _: None)
            result[f"{name}_wall_s"] = round(time.perf_counter() - start, 2)
            result[f"{name}_runs"] = _runs(sweep.output)
        seq, loc = result["sequential_runs"], result["local_runs"]
        result["same_runs"] = sorted(seq) == sorted(loc)
        result["max_abs_acc1_diff"] = max(abs(seq[k]["test_acc1"] - loc[k]["test_acc1"]) for k in seq)
        result["local_over_sequential_wall"] = round(result["local_wall_s"] / result["sequential_wall_s"], 3)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
