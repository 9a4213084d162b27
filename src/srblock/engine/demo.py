"""``srblock demo``: a baseline and its SR twin on scikit-learn's digits, in about a minute on two CPU cores.

Both are built-in ``digits/`` recipes (the paper's CIFAR protocol in miniature: seeded 90/10 split, best-validation
checkpoint tested once). The demo prints both test accuracies, the SR block's parameter overhead and the accuracy
of the trained SR model with its block removed (the paper's ablation), and saves a heat map of the mean softmax
memory weights per class (``memory_weights.png``) and ``demo.json``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from srblock.recipes import RECIPE_ROOT

from .build import load_trained_model
from .config import load_config
from .trainer import evaluate_checkpoint, seed_everything, train

__all__ = ["CONFIG_DIR", "memory_weights_per_class", "run_demo"]

CONFIG_DIR = RECIPE_ROOT / "digits"
_log = logging.getLogger(__name__)
FAST = ["train.epochs=1", "data.train_subset=128", "data.val_subset=64", "data.test_subset=64"]


def memory_weights_per_class(checkpoint: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the SR block's softmax weights per test class: two ``num_classes x P`` tensors."""
    from srblock.layers import capture_memory_weights

    from .distributed import DistInfo
    from .task import get_task

    model, config = load_trained_model(checkpoint)
    seed_everything(config["seed"])
    loader = get_task(config["task"])(config, DistInfo(), torch.device("cpu")).build_loaders().test
    loader.set_epoch(0)
    weights, labels = [], []
    with torch.no_grad(), capture_memory_weights(model) as captured:
        for images, targets in loader:
            model(images)
            labels.append(targets)
    (block_weights,) = captured.values()  # the recipe has one SR block
    weights, labels = torch.cat(block_weights), torch.cat(labels)
    classes = range(int(config["model"]["num_classes"]))
    mean = torch.stack([weights[labels == c].mean(0) for c in classes])
    std = torch.stack([weights[labels == c].std(0) for c in classes])
    return mean, std


def _plot(mean: torch.Tensor, path: Path) -> None:
    from matplotlib.figure import Figure  # not pyplot: the user's backend stays as it is

    fig = Figure(figsize=(1.0 + 0.5 * mean.shape[1], 4.2), layout="tight")
    ax = fig.subplots()
    image = ax.imshow(mean.numpy(), cmap="viridis", vmin=0.0, aspect="auto")
    ax.set_xlabel("memory block i")
    ax.set_ylabel("digit class")
    ax.set_xticks(range(mean.shape[1]))
    ax.set_yticks(range(mean.shape[0]))
    ax.set_title("mean softmax weight w_i per class (test set)")
    fig.colorbar(image, ax=ax, fraction=0.05)
    fig.savefig(path, dpi=120)


def run_demo(
    output_dir: str | Path = "runs/demo", *, fast: bool = False, seed: int = 0, config_dir: str | Path | None = None
) -> dict[str, Any]:
    """Train the digits baseline and SR twin, compare them, plot the memory weights; returns the numbers printed."""
    started = time.perf_counter()
    config_dir = Path(config_dir) if config_dir is not None else CONFIG_DIR
    if not (config_dir / "r18_d2d_sr.yaml").is_file():
        raise FileNotFoundError(
            f"the demo recipes (r18_d2d.yaml, r18_d2d_sr.yaml) were not found in {config_dir}; pass the folder "
            "that holds them as config_dir"
        )
    output_dir = Path(output_dir)
    overrides = [f"seed={seed}", *(FAST if fast else [])]
    results: dict[str, Any] = {}
    for arm, recipe in (("baseline", "r18_d2d.yaml"), ("sr", "r18_d2d_sr.yaml")):
        run_dir = output_dir / arm
        if (run_dir / "config.yaml").is_file():  # a previous demo run: start over
            shutil.rmtree(run_dir)
        config = load_config(config_dir / recipe, overrides)
        _log.info("training %s (%s) ...", arm, recipe)
        results[arm] = train(config, run_dir, quiet=True)
    ablation = evaluate_checkpoint(output_dir / "sr" / "checkpoint_best.pt", no_sr=True)
    mean, std = memory_weights_per_class(output_dir / "sr" / "checkpoint_best.pt")
    plot = output_dir / "memory_weights.png"
    _plot(mean, plot)

    base, sr = results["baseline"], results["sr"]
    model = sr["config"]["model"]
    data = sr["config"]["data"]
    numbers = {
        "baseline_test_acc1": base["test_acc1"],
        "sr_test_acc1": sr["test_acc1"],
        "sr_removed_test_acc1": ablation["acc1"],
        "params_baseline": base["params"],
        "params_sr": sr["params"],
        "sr_params": sr["sr_params"],
        "overhead_pct": 100.0 * sr["sr_params"] / base["params"],
        "memory_weights_mean": mean.tolist(),
        "memory_weights_std": std.tolist(),
        "plot": str(plot),
        "fast": fast,
        "seed": seed,
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
    with (output_dir / "demo.json").open("w") as f:
        json.dump(numbers, f, indent=2)

    width = model.get("width", 1.0)
    sr_label = f"+ SR (M={model['sr_stage']}, P={model['num_memories']}, U={model['hidden']})"
    rows = [
        ("baseline", base["test_acc1"], f"params {base['params']:,}"),
        (
            sr_label,
            sr["test_acc1"],
            f"params {sr['params']:,} (+{sr['sr_params']:,} = +{numbers['overhead_pct']:.2f} %)",
        ),
        ("SR model, block removed", ablation["acc1"], "(the paper's ablation)"),
    ]
    print(
        f"\nsrblock demo: scikit-learn digits ({data['image_size']}x{data['image_size']}), ResNet18 x{width} + "
        f"Dropout2d, {sr['epochs']:g} epochs, seed {seed}"
    )
    for label, acc, note in rows:
        print(f"  {label:<24} test acc {acc:6.2f} %   {note}")
    print(f"  memory weights per class: {plot}\n  took {numbers['wall_time_s']:.0f} s")
    return numbers
