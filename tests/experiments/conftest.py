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


def write_fake_recipe(path: Path) -> Path:
    """Write a recipe for the fake run functions (they never build its ``tiny`` model): no SR, 2 epochs."""
    path.write_text(yaml.safe_dump({"seed": 0, "model": {"name": "tiny", "sr_stage": None}, "train": {"epochs": 2}}))
    return path


def write_two_arm_sweep(path: Path, recipe: Path, *, output: Path, seeds: list[int], **fields: object) -> Path:
    """Write a sweep file of two arms on one recipe, ``base`` (the baseline) and ``sr`` (SR after stage 3, P = 10);
    ``fields`` adds top-level keys (``metric``, ``overrides``, ...)."""
    sr = {"recipe": str(recipe), "overrides": {"model.sr_stage": 3, "model.num_memories": 10}}
    doc = {"name": "tiny", "output": str(output), "baseline": "base", "seeds": seeds, **fields}
    doc["arms"] = {"base": {"recipe": str(recipe)}, "sr": sr}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
