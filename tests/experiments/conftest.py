"""Fixtures shared by the sweep tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


@pytest.fixture
def tiny_recipe(tmp_path: Path) -> Path:
    """A recipe file the engine accepts (dry-run and report check every arm through it); fake run functions never
    build its model."""
    recipe = tmp_path / "recipe.yaml"
    model = {"name": "cifar_resnet18", "num_classes": 10, "width": 0.25, "sr_stage": None}
    recipe.write_text(yaml.safe_dump({"seed": 0, "model": model, "optim": {"lr": 0.1}, "train": {"epochs": 9}}))
    return recipe


@pytest.fixture
def no_screen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two seeds an arm make a full table row (p-values, seed counts) rather than a screen: the tests' sweeps are
    small. Both modules that read the threshold see it."""
    from srblock.analysis import stats
    from srblock.experiments import sweep

    for module in (stats, sweep):
        monkeypatch.setattr(module, "SCREEN_SEEDS", 1)
