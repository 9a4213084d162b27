"""A tiny classifier with one SR block, trained for a few steps on a synthetic 3-class problem (milliseconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from srblock.data.corruptions import CORRUPTIONS, SEVERITIES
from srblock.layers import SRBlock

CLASS_NAMES = ["red", "green", "blue"]


class TinySRNet(nn.Module):
    """conv (8 channels, stride 2) -> SR block on the 4x4 map (or nothing) -> global pool -> linear."""

    def __init__(self, sr: bool = True, num_classes: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.sr = SRBlock(8, 4, num_memories=3, hidden=4) if sr else nn.Identity()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.sr(self.stem(x)))


def make_batches(n: int = 60, batch: int = 16, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Images whose class sets the brightest colour channel, plus noise; a list, so it can be iterated twice."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    images = torch.randn(n, 3, 8, 8, generator=g) * 0.5
    images[torch.arange(n), labels] += 1.0
    return [(images[i : i + batch], labels[i : i + batch]) for i in range(0, n, batch)]


@pytest.fixture(scope="module")
def batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    return make_batches()


@pytest.fixture(scope="module")
def trained(batches) -> TinySRNet:
    torch.manual_seed(0)
    model = TinySRNet()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(5):
        for images, labels in batches:
            opt.zero_grad()
            nn.functional.cross_entropy(model(images), labels).backward()
            opt.step()
    return model.eval()


def fake_robustness_run(folder: Path, seed: int, clean: float, mca: float) -> None:
    """A finished run whose summary carries the benchmark (as ``train.robustness: true`` writes it)."""
    folder.mkdir(parents=True)
    acc = {name: [mca + 2 - s for s in range(len(SEVERITIES))] for name in CORRUPTIONS}
    corruption = {"acc1": acc, "mean": {n: float(np.mean(v)) for n, v in acc.items()}, "seed": 0, "count": 10}
    corruption["by_severity"] = [mca + 2 - s for s in range(len(SEVERITIES))]
    summary = {"seed": seed, "test_acc1": clean, "test_corruption_acc1": mca, "test_corruption": corruption}
    (folder / "summary.json").write_text(json.dumps(summary))
