"""Recipes: inheritance, typed overrides, milestone scaling, validation errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from srblock.engine.config import load_config, parse_override, resolve_config

MINIMAL = {"model": {"name": "cifar_resnet18", "num_classes": 10}, "optim": {"lr": 0.1}, "train": {"epochs": 10}}


def test_defaults_inheritance_child_wins(tmp_path: Path) -> None:
    (tmp_path / "_base.yaml").write_text("optim: {lr: 0.1, momentum: 0.9}\ntrain: {epochs: 10, batch_size: 64}\n")
    (tmp_path / "row.yaml").write_text(
        "defaults: _base.yaml\nmodel: {name: cifar_resnet18, num_classes: 10}\ntrain: {epochs: 5}\n"
    )
    config = load_config(tmp_path / "row.yaml")
    assert config["optim"]["momentum"] == 0.9 and config["train"] == config["train"] | {"epochs": 5, "batch_size": 64}
    assert config["data"]["val_fraction"] == 0.1  # the task's data defaults are filled in


def test_inheritance_cycle_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("defaults: b.yaml\n")
    (tmp_path / "b.yaml").write_text("defaults: a.yaml\n")
    with pytest.raises(ValueError, match="cycle"):
        load_config(tmp_path / "a.yaml")


def test_overrides_are_yaml_typed() -> None:
    assert parse_override("model.num_memories=4") == (["model", "num_memories"], 4)
    assert parse_override("schedule.milestones=[3, 6]") == (["schedule", "milestones"], [3, 6])
    assert parse_override("train.amp=null") == (["train", "amp"], None)
    assert parse_override("--data.download=true") == (["data", "download"], True)
    with pytest.raises(ValueError, match=r"section\.key=value"):
        parse_override("model.num_memories")


def test_epochs_override_scales_milestones() -> None:
    config = resolve_config(
        {**MINIMAL, "schedule": {"milestones": [90, 136]}, "train": {"epochs": 182}}, ["train.epochs=2"]
    )
    assert config["schedule"]["milestones"] == [0.989, 1.4945]
    fixed = resolve_config(
        {**MINIMAL, "schedule": {"milestones": [90, 136], "scale_milestones": False}, "train": {"epochs": 182}},
        ["train.epochs=2"],
    )
    assert fixed["schedule"]["milestones"] == [90, 136]
    explicit = resolve_config(
        {**MINIMAL, "schedule": {"milestones": [90, 136]}, "train": {"epochs": 182}},
        ["train.epochs=2", "schedule.milestones=[1]"],
    )
    assert explicit["schedule"]["milestones"] == [1]


def test_iterations_override_scales_eval_interval() -> None:
    base = {**MINIMAL, "train": {"iterations": 80000, "eval_interval": 8000}, "schedule": {"name": "poly"}}
    config = resolve_config(base, ["train.iterations=100"])
    assert config["train"]["eval_interval"] == 10


def test_resolving_twice_changes_nothing() -> None:
    once = resolve_config({**MINIMAL, "schedule": {"milestones": [5]}}, ["train.epochs=3"])
    assert resolve_config(once) == once


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epoch=3", "did you mean 'epochs'"),
        ("optim.lr=-1", "optim.lr must be a positive"),
        ("train.amp=fp8", "train.amp must be one of"),
        ("train.tf32=fast", "train.tf32 must be true, false or null"),
        ("train.tf32=1", "train.tf32 must be true, false or null"),
        ("train.compile=fast", "train.compile must be one of"),
        ("schedule.name=step", "schedule.name must be one of"),
        ("train.iterations=10", "exactly one of train.epochs"),
        ("data.datset=cifar10", "unknown key"),
        ("task=detection", "unknown task"),
    ],
)
def test_invalid_recipes_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_config(MINIMAL, [override])


def test_missing_recipe_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml' is neither a file nor a built-in recipe name"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("mode", [True, False, "reduce-overhead", "max-autotune-no-cudagraphs"])
def test_compile_takes_a_bool_or_a_torch_compile_mode(mode) -> None:
    from srblock.engine import resolve_config

    config = {"model": {"name": "cifar_resnet18", "num_classes": 10}, "optim": {"lr": 0.1}, "train": {"epochs": 1}}
    assert (
        resolve_config(config, [f"train.compile={str(mode).lower() if isinstance(mode, bool) else mode}"])["train"][
            "compile"
        ]
        == mode
    )
    with pytest.raises(ValueError, match=r"train\.compile must be one of"):
        resolve_config(config, ["train.compile=fast"])
