"""FLOPs of one training run of a recipe, and the run time they imply at an assumed GPU throughput (an estimate).

Counts with ``torch.utils.flop_counter`` on the meta device (no compute): forward+backward FLOPs per training
image, forward FLOPs per test image times the views of the recipe's test-time augmentation, then
``epochs x training images x train FLOPs + evaluations x test images x eval FLOPs``. The time is that total divided
by ``--tflops`` (sustained, not peak: airbench94 sustains ~94 TFLOP/s on an A100 in fp16, 0.36 PFLOP in 3.83 s;
TF32 on an H100 is in the same range). It ignores start-up, data loading and kernel-launch overhead: a lower bound
for a well-fed GPU, never a measurement.

    python benchmarks/recipe_flops.py cifar10/airbench cifar10/airbench_sr cifar10/r18_d2d_fast --tflops 50 100
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from common import make_main  # the script's folder is on sys.path
from srblock.engine import build_model, load_config

TTA_VIEWS = {None: 1, "flip": 2, "flip_translate": 6}
CIFAR_TRAIN, CIFAR_TEST = 50_000, 10_000


def _flops(fn: Any) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def recipe_flops(name: str, batch: int = 4) -> dict[str, Any]:
    """FLOP counts of one run of recipe ``name`` on full CIFAR-10 (its split, epochs and evaluation schedule)."""
    config = load_config(name)
    with torch.device("meta"):
        model = build_model(config)
    x = torch.randn(batch, *config["model"].get("input_size", [3, 32, 32]), device="meta")
    y = torch.zeros(batch, dtype=torch.long, device="meta")
    train_flops = _flops(lambda: F.cross_entropy(model(x), y).backward()) / batch
    model.eval()
    with torch.no_grad():
        eval_flops = _flops(lambda: model(x)) / batch * TTA_VIEWS[config["data"]["tta"]]
    epochs, every = config["train"]["epochs"], config["train"]["eval_every"]
    train_images = round(CIFAR_TRAIN * (1 - config["data"]["val_fraction"]))
    evaluations = math.ceil(epochs / every)
    eval_images = CIFAR_TEST if config["data"]["val_fraction"] == 0 else CIFAR_TRAIN - train_images
    total = epochs * train_images * train_flops + evaluations * eval_images * eval_flops
    if config["data"]["val_fraction"]:
        total += CIFAR_TEST * eval_flops  # the final test of the best-validation weights
    return {
        "recipe": name,
        "gflops_train_image": round(train_flops / 1e9, 4),
        "gflops_eval_image": round(eval_flops / 1e9, 4),
        "pflops_run": round(total / 1e15, 4),
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("recipes", nargs="+", help="built-in recipe names or YAML paths")
    p.add_argument("--tflops", type=float, nargs="+", default=[50.0, 100.0], help="assumed sustained TFLOP/s")
    p.add_argument("--out", help="write the results as JSON here")
    return p


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for name in args.recipes:
        row = recipe_flops(name)
        row["estimated_s"] = {f"{t:g}": round(row["pflops_run"] * 1e3 / t, 1) for t in args.tflops}
        times = ", ".join(f"{s} s at {t} TFLOP/s" for t, s in row["estimated_s"].items())
        print(
            f"{name}: {row['gflops_train_image']} GFLOP/train image, {row['gflops_eval_image']} GFLOP/test image "
            f"(with TTA), {row['pflops_run']} PFLOP/run; estimate {times}",
            flush=True,
        )
        rows.append(row)
    return rows


main = make_main(build_parser, run)

if __name__ == "__main__":
    main()
