"""Resume continues the same run: changed keys are refused (all named) or applied and recorded; config.yaml is
written only after the restore succeeded."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from srblock.cli import main
from srblock.engine import load_checkpoint, load_config, train

from .conftest import snapshot, tiny_config


@pytest.fixture
def partial(tiny_data: Path, tmp_path: Path) -> Path:
    """A run stopped after its first epoch (3 of 6 iterations)."""
    out = tmp_path / "partial"
    train(tiny_config(tiny_data), out, stop_after=1, quiet=True)
    return out


def test_changed_seed_data_model_are_refused_and_named(partial: Path, tiny_data: Path) -> None:
    config = tiny_config(tiny_data)
    config["seed"] = 1
    config["data"]["val_fraction"] = 0.5
    config["model"]["num_memories"] = 5
    config["optim"]["lr"] = 0.01  # allowed: not named
    before = snapshot(partial)
    with pytest.raises(ValueError, match=r"cannot resume") as info:
        train(config, partial, resume=True, quiet=True)
    message = str(info.value)
    for key in ("seed (0 -> 1)", "data.val_fraction (0.25 -> 0.5)", "model.num_memories (3 -> 5)"):
        assert key in message
    assert "optim.lr" not in message
    assert snapshot(partial) == before  # nothing written, config.yaml still describes the checkpoint


def test_changed_lr_and_length_are_applied_and_recorded(partial: Path, tiny_data: Path) -> None:
    config = tiny_config(tiny_data, epochs=3)  # milestone stays at epoch 1 (set in the recipe)
    config["optim"]["lr"] = 0.02
    summary = train(config, partial, resume=True, quiet=True)
    rows = list(csv.DictReader((partial / "metrics.csv").open()))
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.05, 0.02 * 0.1, 0.02 * 0.1])  # the new lr, decayed
    assert summary["steps"] == 9
    change = summary["config_changes"][0]
    assert change["step"] == 3 and change["changes"]["optim.lr"] == [0.05, 0.02]
    assert change["changes"]["train.epochs"] == [2, 3]
    state = load_checkpoint(partial / "checkpoint_last.pt")
    assert state["config_changes"] == summary["config_changes"]
    assert all(g["initial_lr"] == 0.02 for g in state["optimizer"]["param_groups"])
    assert yaml.safe_load((partial / "config.yaml").read_text())["optim"]["lr"] == 0.02


def test_run_shorter_than_trained_is_refused(partial: Path, tiny_data: Path) -> None:
    config = tiny_config(tiny_data, epochs=2, batch_size=24)
    config["train"]["epochs"] = 1  # 3 iterations, and 3 are already trained: allowed, finishes at once
    assert train(config, partial, resume=True, quiet=True)["steps"] == 3
    config["train"]["iterations"], config["train"]["epochs"] = 2, None
    with pytest.raises(ValueError, match=r"2 iterations: it has trained 3 already"):
        train(config, partial, resume=True, quiet=True)


def test_cli_resume_needs_no_recipe_and_keeps_the_first_overrides(recipe_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = load_config(recipe_file, ["model.num_memories=2", "optim.weight_decay=0.001"])
    train(first, out, stop_after=1, quiet=True)
    assert main(["train", "--output", str(out), "--resume"]) == 0  # no -c: the run's config.yaml is the recipe
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"] == first and summary["config_changes"] == []


def test_config_yaml_is_not_written_when_the_restore_fails(partial: Path, tiny_data: Path) -> None:
    last = partial / "checkpoint_last.pt"
    last.write_bytes(last.read_bytes()[:1000])  # damaged
    config = tiny_config(tiny_data)
    config["optim"]["lr"] = 0.01  # a change the resume would have recorded
    before = (partial / "config.yaml").read_bytes()
    with pytest.raises(ValueError, match=r"checkpoint_last\.pt is damaged"):
        train(config, partial, resume=True, quiet=True)
    assert (partial / "config.yaml").read_bytes() == before


def test_checkpoint_from_before_a_new_engine_key_resumes(partial: Path, tiny_data: Path) -> None:
    """A key the engine gained after the checkpoint was written (so its stored config lacks it) is not a change:
    both configs are compared resolved (found resuming the CPU dynamics sweep across a code update)."""
    import torch

    path = partial / "checkpoint_last.pt"
    state = torch.load(path, weights_only=True)
    for section, key in (("train", "label_smoothing"), ("data", "pad_mode"), ("optim", "groups")):
        state["config"][section].pop(key, None)
    torch.save(state, path)
    summary = train(tiny_config(tiny_data), partial, resume=True, quiet=True)
    assert summary["steps"] == 6 and not summary.get("config_changes")
