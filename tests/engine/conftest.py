"""A tiny npz dataset and recipe: the engine end to end in about a second on a CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def write_npz(root: Path, num_train: int = 96, num_test: int = 32, size: int = 8, num_classes: int = 4) -> Path:
    """Learnable images: class k has a bright k-th quadrant-ish stripe, plus noise."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", num_train), ("test", num_test)):
        y = np.arange(n) % num_classes
        x = rng.integers(0, 80, size=(n, size, size, 3), dtype=np.uint8)
        for k in range(num_classes):
            x[y == k, :, k * size // num_classes : (k + 1) * size // num_classes, :] += 150
        np.savez(root / f"{name}.npz", x=x, y=y)
    return root


def tiny_config(root: Path, **train: Any) -> dict[str, Any]:
    return {
        "seed": 0,
        "data": {"dataset": "npz", "root": str(root), "val_fraction": 0.25, "crop_padding": 1},
        "model": {
            "name": "cifar_resnet18",
            "num_classes": 4,
            "width": 0.0625,
            "input_size": [3, 8, 8],
            "sr_stage": 2,
            "num_memories": 3,
            "hidden": 4,
            "regularizer": "dropout2d",
        },
        "optim": {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4},
        "schedule": {"milestones": [1]},
        # CPU even on a GPU machine: the bit-exact resume test needs CPU determinism (CUDA runs: test_cuda_*)
        "train": {"epochs": 2, "batch_size": 24, "log_interval": 2, "device": "cpu", **train},
    }
