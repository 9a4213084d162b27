"""Class 4 (every number finite and in range when the config is read, before any file is written) and class 8
(data checked before work: labels, image sizes, per-channel lists, before the first epoch)."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from srblock.cli import main
from srblock.engine import resolve_config, train
from srblock.engine.build import check_buildable
from srblock.experiments import load_sweep, run_sweep

from ..engine.conftest import write_npz
from .conftest import error_line, tiny_config
from .test_sweep_arms import FakeTrain, sweep_file  # noqa: F401  (sweep_file is a fixture)

#: every numeric key of the schema with its valid range (lo, hi, lo included, hi included)
RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "optim.lr": (0, math.inf, False, False),
    "optim.momentum": (0, 1, True, False),
    "optim.weight_decay": (0, math.inf, True, False),
    "schedule.gamma": (0, math.inf, False, False),
    "schedule.min_lr": (0, math.inf, True, False),
    "schedule.power": (-math.inf, math.inf, False, False),
    "train.grad_clip": (0, math.inf, False, False),
    "train.sr_balance": (0, math.inf, True, False),
    "train.label_smoothing": (0, 1, True, False),
    "data.val_fraction": (0, 1, True, False),
    "model.sr.logit_scale": (0, math.inf, False, False),
    "model.sr.memory_std": (0, math.inf, True, False),
}


def _with(config: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    config = copy.deepcopy(config)
    *path, leaf = key.split(".")
    node = config
    for part in path:
        node = node.setdefault(part, {})
    node[leaf] = value
    return config


def _in_range(key: str, value: float) -> bool:
    lo, hi, lo_in, hi_in = RANGES[key]
    return math.isfinite(value) and (lo <= value if lo_in else lo < value) and (value <= hi if hi_in else value < hi)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.sampled_from(sorted(RANGES)),
    value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 1.0, -1.0, 0.5, 2.0])),
)
def test_every_number_is_finite_and_in_range_or_refused_by_name(tiny_data: Path, key: str, value: float) -> None:
    """Property: a numeric key either resolves and builds (then its value is finite and in range) or is refused with
    a ``ValueError`` naming the key."""
    config = _with(tiny_config(tiny_data), key, value)
    try:
        check_buildable(resolve_config(config))
    except ValueError as err:
        assert key.rpartition(".")[2] in str(err), (key, value, str(err))
        assert not _in_range(key, value), (key, value, str(err))
    else:
        assert _in_range(key, value), (key, value)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
@pytest.mark.parametrize("key", ["optim.lr", "optim.momentum", "schedule.gamma", "train.grad_clip", "data.std"])
def test_nan_and_inf_are_refused_before_anything_is_written(
    recipe_file: Path, tmp_path: Path, key: str, value: str, capsys
) -> None:
    shown = f"[{value}, 0.2, 0.2]" if key == "data.std" else value
    out = tmp_path / "run"
    assert main(["train", "-c", str(recipe_file), "--output", str(out), "--set", f"{key}={shown}", "-q"]) == 2
    assert key.rpartition(".")[2] in error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"mean": [0.5, 0.5]}, r"data.mean has 2 value\(s\) but the images have 3 channel"),
        ({"std": [0.2, 0.2, 0.2, 0.2]}, r"data.std has 4 value\(s\)"),
        ({"std": [0.2, 0.0, 0.2]}, r"data.std must be null or a list of positive numbers"),
    ],
)
def test_per_channel_lists_have_one_value_per_channel(
    tiny_data: Path, tmp_path: Path, data: dict, message: str
) -> None:
    config = tiny_config(tiny_data)
    config["data"].update(data)
    with pytest.raises(ValueError, match=message):
        train(config, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def _npz(root: Path, name: str, x: np.ndarray, y: np.ndarray) -> None:
    root.mkdir(parents=True, exist_ok=True)
    np.savez(root / f"{name}.npz", x=x, y=y)


@pytest.mark.parametrize("bad", [-1, -100])
def test_a_label_outside_the_classes_is_refused_before_training(tmp_path: Path, bad: int) -> None:
    root = write_npz(tmp_path / "data")
    with np.load(root / "train.npz") as arrays:
        x, y = arrays["x"], arrays["y"].copy()
    y[5] = bad  # cross_entropy ignores -100 silently and fails on -1 only in the first epoch
    _npz(root, "train", x, y)
    with pytest.raises(ValueError, match=rf"labels must be class indices >= 0, .* holds {bad}"):
        train(tiny_config(root), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_test_images_of_another_size_are_refused_before_training(tmp_path: Path) -> None:
    root = write_npz(tmp_path / "data")
    with np.load(root / "test.npz") as arrays:
        _npz(root, "test", np.zeros((8, 10, 10, 3), np.uint8), arrays["y"][:8])
    with pytest.raises(ValueError, match=r"test images are 3x10x10 .* training images 3x8x8"):
        train(tiny_config(root), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_resume_with_a_recipe_says_it_uses_the_runs_own(run_copy: Path, recipe_file: Path, capsys) -> None:
    (run_copy / "summary.json").unlink()
    assert main(["train", "-c", str(recipe_file), "--output", str(run_copy), "--resume", "-q"]) == 0
    assert f"-c {recipe_file} is not used" in capsys.readouterr().err


def test_an_arm_with_invalid_data_values_stops_the_sweep_before_any_run(sweep_file: Path) -> None:  # noqa: F811
    doc = yaml.safe_load(sweep_file.read_text())
    doc["arms"]["sr"]["overrides"] = {"data.dataset": "cifar10", "data.mean": [0.5, 0.5], "data.val_fraction": 0.2}
    sweep_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    train = FakeTrain()
    with pytest.raises(ValueError, match=r"arm 'sr': data.mean has 2 value\(s\) but cifar10 images have 3 channels"):
        run_sweep(load_sweep(sweep_file), run_fn=train, log=lambda _: None)
    assert train.calls == [] and not load_sweep(sweep_file).output.exists()
