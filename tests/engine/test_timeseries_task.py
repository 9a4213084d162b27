"""The time-series task and what the review's protocol added to the engine: Adam, the plateau schedule on the
training loss, model selection on the training loss."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

pytest.importorskip("aeon")

from srblock.data.timeseries import load_ucr
from srblock.engine import load_config, train
from srblock.engine.build import check_buildable
from srblock.engine.checkpoint import load_checkpoint
from srblock.engine.config import config_diff
from srblock.engine.optim import PlateauFactor, build_optimizer, build_scheduler, observe_train_loss
from srblock.recipes import RECIPE_ROOT

# ItalyPowerDemand: 67 training series of 24 steps; a quarter-width FCN trains an epoch in well under a second
QUICK = ["train.epochs=5", "train.eval_every=1", "model.width=0.25", "train.device=cpu"]


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_plateau_factor_halves_after_patience_bad_epochs_down_to_the_floor() -> None:
    plateau = PlateauFactor(gamma=0.5, patience=2, min_delta=0.1, floor=0.3, warmup=0)
    for loss in (1.0, 0.95, 0.99):  # 0.95 is not 0.1 below 1.0: two bad epochs
        plateau.observe(loss)
    assert plateau.factor == 0.5 and plateau.bad_epochs == 0
    plateau.observe(0.5)  # a real improvement resets the count
    assert plateau.bad_epochs == 0
    for loss in (0.5, 0.5, 0.5, 0.5):
        plateau.observe(loss)
    assert plateau.factor == 0.3  # 0.25 would be below the floor min_lr / lr


def test_plateau_schedule_sets_the_lr_and_keeps_its_state_in_the_state_dict() -> None:
    model = torch.nn.Linear(2, 2)
    optimizer = build_optimizer(model, {"name": "adam", "lr": 1e-3, "weight_decay": 0.0})
    assert type(optimizer) is torch.optim.Adam
    schedule = {"name": "plateau", "gamma": 0.5, "patience": 1, "min_delta": 0.0, "min_lr": 1e-4, "warmup_steps": 0}
    schedule |= {"milestones": [], "points": [], "power": 0.9}
    scheduler = build_scheduler(optimizer, schedule, steps_per_unit=1, total_steps=10)
    assert observe_train_loss(scheduler, 1.0) and observe_train_loss(scheduler, 1.0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    fresh = build_scheduler(optimizer, schedule, steps_per_unit=1, total_steps=10)
    fresh.load_state_dict(scheduler.state_dict())
    assert fresh.lr_lambdas[0].factor == 0.5 and fresh.lr_lambdas[0].best == 1.0
    other = build_scheduler(optimizer, {**schedule, "name": "constant"}, steps_per_unit=1, total_steps=10)
    assert not observe_train_loss(other, 1.0)


def test_selection_on_the_training_loss_tests_the_epoch_with_the_lowest_one(tmp_path: Path) -> None:
    config = load_config("timeseries/italypowerdemand_fcn", QUICK)
    summary = train(config, tmp_path / "run", quiet=True)
    rows = _rows(tmp_path / "run")
    losses = [float(r["train_loss"]) for r in rows]  # one row per epoch: each row's loss is its epoch's mean
    best = min(range(len(rows)), key=losses.__getitem__)
    assert summary["best_step"] == int(rows[best]["step"])
    assert summary["test_acc1"] == pytest.approx(float(rows[best]["test_acc1"]))
    assert summary["test_acc1_last"] == pytest.approx(float(rows[-1]["test_acc1"]))
    selected = load_checkpoint(tmp_path / "run" / "checkpoint_best.pt")
    assert selected["best_step"] == summary["best_step"]


def test_selection_between_evaluations_is_tested_at_the_end(tmp_path: Path) -> None:
    config = load_config("timeseries/italypowerdemand_fcn", [*QUICK, "train.eval_every=5"])
    summary = train(config, tmp_path / "run", quiet=True)
    assert len(_rows(tmp_path / "run")) == 1
    assert summary["test_acc1"] is not None and summary["best_step"] % 12 == 0  # 12 steps per epoch (batch 6)


def test_plateau_run_resumes_exactly(tmp_path: Path) -> None:
    # after the first epoch every epoch is "bad" (not 1.0 below the best): the lr halves each epoch, down to 2e-4
    overrides = [*QUICK, "schedule.patience=1", "schedule.min_delta=1.0", "schedule.min_lr=2e-4"]
    config = load_config("timeseries/italypowerdemand_resnet", [*overrides, "model.width=0.125"])
    whole = train(config, tmp_path / "whole", quiet=True)
    train(config, tmp_path / "split", quiet=True, stop_after=2)
    resumed = train(None, tmp_path / "split", resume=True, quiet=True)
    assert [r["lr"] for r in _rows(tmp_path / "whole")] == [r["lr"] for r in _rows(tmp_path / "split")]
    assert [float(r["lr"]) for r in _rows(tmp_path / "whole")] == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4, 2e-4])
    assert resumed["test_acc1"] == whole["test_acc1"] and resumed["best_step"] == whole["best_step"]


def test_sr_recipe_trains_with_dynamics(tmp_path: Path) -> None:
    config = load_config("timeseries/gunpoint_resnet_sr", ["train.epochs=2", "model.width=0.25", "train.device=cpu"])
    summary = train(config, tmp_path / "run", quiet=True)
    assert summary["sr_params"] > 0 and math.isfinite(summary["test_acc1"])
    assert "block3.sr.routing_entropy" in summary["sr_dynamics"]


def test_a_recipe_takes_a_coarse_memory(tmp_path: Path) -> None:
    """model.sr.feat_size (with size_policy interpolate) sizes the memory below the series' 150 steps; the task's
    check of model.input_size against the data still holds, and the run's parameter count is the smaller block's."""
    from srblock.layers.sr import sr_param_count

    coarse = ["train.epochs=1", "model.width=0.25", "train.device=cpu", "model.num_memories=10"]
    coarse += ["model.sr.feat_size=16", "model.sr.size_policy=interpolate"]
    summary = train(load_config("timeseries/gunpoint_fcn_sr", coarse), tmp_path / "run", quiet=True)
    assert summary["sr_params"] == sr_param_count(32, 16, hidden=8, num_memories=10, spatial_dims=1)
    memory = load_checkpoint(tmp_path / "run" / "checkpoint_last.pt")["model"]["block3.sr.memory"]
    assert memory.shape == (10, 32, 16) and math.isfinite(summary["test_acc1"])
    with pytest.raises(ValueError, match=r"pass size_policy='interpolate'"):
        _build("timeseries/gunpoint_fcn_sr", ["model.sr.feat_size=16"])
    _build("timeseries/gunpoint_fcn_sr", ["model.sr.feat_size=null"])  # null: the stage's own size, as if absent


def test_data_length_resamples_the_series_and_the_model_follows(tmp_path: Path) -> None:
    """data.length (beyond the review: for experiments on the length) trains at the new length; the SR block's
    memory and the task's check of model.input_size follow it."""
    quick = ["train.epochs=1", "model.width=0.25", "train.device=cpu", "data.length=40"]
    with pytest.raises(ValueError, match=r"set model.input_size: \[1, 40\]"):
        _build("timeseries/gunpoint_fcn_sr", quick)
    summary = train(
        load_config("timeseries/gunpoint_fcn_sr", [*quick, "model.input_size=[1, 40]"]), tmp_path / "run", quiet=True
    )
    memory = load_checkpoint(tmp_path / "run" / "checkpoint_last.pt")["model"]["block3.sr.memory"]
    assert memory.shape[-1] == 40 and math.isfinite(summary["test_acc1"])


@pytest.mark.parametrize(
    ("recipe", "override", "message"),
    [
        ("basicmotions_fcn", "model.in_channels=1", r"set model.in_channels: 6"),
        ("gunpoint_fcn_sr", "model.input_size=[1, 128]", r"set model.input_size: \[1, 150\]"),
        ("gunpoint_fcn", "train.select=val_loss", r"train\.select must be one of"),
        ("japanesevowels_fcn", "data.interpolation=nearest", r"must be one of \('linear', 'cubic'\), got 'nearest'"),
        ("gunpoint_fcn", "data.normalize=[1]", r"data\.normalize"),
        ("gunpoint_fcn", "data.normalize=null", r"data\.normalize must be true or false, got None"),
        ("gunpoint_fcn", "data.length=1", r"data\.length must be an int of at least 2 steps or null, got 1"),
        ("gunpoint_fcn", "data.detail=x", r"data\.detail must be an int of at least 2 steps or null, got 'x'"),
        ("gunpoint_fcn", "data.detail=150", r"detail must be fewer steps than the series' 150, got 150"),
    ],
)
def test_the_task_checks_the_model_and_the_data_settings(recipe: str, override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _build(f"timeseries/{recipe}", [override])


def test_only_the_multivariate_archive_recipes_keep_the_raw_levels() -> None:
    # the review z-normalised the UCR series (the 2015 archive ships them so) and read its multivariate archive
    # (JapaneseVowels) as it was, resampled by a cubic spline
    for path in TS_RECIPES:
        data = load_config(path)["data"]
        raw = data["name"] == "JapaneseVowels"
        assert (data["normalize"], data["interpolation"]) == ((False, "cubic") if raw else (True, "linear")), path.stem


def _build(recipe: str, overrides: list[str] | None = None) -> None:
    check_buildable(load_config(recipe, overrides or []))


TS_RECIPES = sorted(p for p in (RECIPE_ROOT / "timeseries").glob("*.yaml") if p.name[0] != "_")


def test_every_dataset_has_four_recipes_with_the_reviews_batch() -> None:
    from srblock.data.timeseries import UCR_DATASETS

    assert len(TS_RECIPES) == 4 * len(UCR_DATASETS)
    for name in UCR_DATASETS:
        n_train = len(load_ucr(name).train_y)
        for model, cap, epochs in (("fcn", 16, 2000), ("resnet", 64, 1500)):
            base = load_config(f"timeseries/{name.lower()}_{model}")
            sr = load_config(f"timeseries/{name.lower()}_{model}_sr")
            assert base["train"]["batch_size"] == int(min(n_train / 10, cap)) and base["train"]["epochs"] == epochs
            assert base["data"]["name"] == name and sr["model"]["sr_stage"] == 3
            assert config_diff(base, sr).keys() == {
                "model.sr_stage",
                "model.num_memories",
                "model.hidden",
            }
            assert len(base["model"]["input_size"]) == 2  # [channels, steps], checked against the data when built


@pytest.mark.parametrize("path", TS_RECIPES, ids=lambda p: p.stem)
def test_timeseries_recipe_builds(path: Path) -> None:
    config = load_config(path)
    assert path.read_text().startswith("# "), "a recipe starts with its provenance comment"
    assert config["optim"]["name"] == "adam" and config["schedule"]["name"] == "plateau"
    assert config["train"]["select"] == "train_loss"
    check_buildable(config)  # the task checks the model against the data; the model is built on meta
