"""The ImageNet path (ImageFolder + transforms v2 + DataLoader shards) end to end on a tiny folder made here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from srblock.engine import train


def _folder(root: Path, per_class: int) -> None:
    rng = np.random.default_rng(0)
    for k, wnid in enumerate(("n01440764", "n01443537")):
        (root / wnid).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (40, 48, 3), dtype=np.uint8)
            pixels[:, k * 24 : (k + 1) * 24] += 150
            Image.fromarray(pixels).save(root / wnid / f"{wnid}_{i}.JPEG")


def test_imagenet_folder_run(tmp_path: Path) -> None:
    _folder(tmp_path / "imagenet" / "train", per_class=8)
    _folder(tmp_path / "imagenet" / "val", per_class=3)
    config = {
        "data": {
            "dataset": "imagenet",
            "root": str(tmp_path / "imagenet"),
            "val_fraction": 0.25,
            "image_size": 32,
            "resize_size": 36,
        },
        "model": {
            "name": "resnet18",
            "num_classes": 2,
            "sr_stage": 3,
            "num_memories": 2,
            "hidden": 4,
            "input_size": [3, 32, 32],
        },
        "optim": {"lr": 0.01, "momentum": 0.9},
        "schedule": {"milestones": []},
        "train": {"epochs": 2, "batch_size": 4, "workers": 0, "device": "cpu"},
    }
    summary = train(config, tmp_path / "run", quiet=True)
    assert summary["val"]["count"] == 4 and summary["test"]["count"] == 6
    assert summary["steps"] == 2 * 3  # 12 training images, batch 4
    assert summary["sr_params"] > 0
