"""Non-finite numbers: a NaN evaluation metric is divergence (the run stops, nothing new is written) and every JSON
file srblock writes is strict (NaN and inf become null)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from srblock.cli import main
from srblock.engine import load_checkpoint, train
from srblock.engine.classification import ClassificationTask
from srblock.engine.trainer import DivergenceError
from srblock.io import write_json

from .conftest import error_line, snapshot, tiny_config


def _strict(text: str):
    def refuse(constant: str):
        raise AssertionError(f"bare {constant} in JSON")

    return json.loads(text, parse_constant=refuse)


def test_nan_validation_metrics_stop_the_run(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    out = tmp_path / "run"
    train(tiny_config(tiny_data), out, stop_after=1, quiet=True)
    before = snapshot(out)
    original = ClassificationTask.evaluate

    def nan_loss(self, model, loader):
        return {**original(self, model, loader), "loss": math.nan}

    monkeypatch.setattr(ClassificationTask, "evaluate", nan_loss)
    with pytest.raises(DivergenceError, match=r"non-finite val metric\(s\) loss=nan at iteration 6.*\(iteration 3\)"):
        train(tiny_config(tiny_data), out, resume=True, quiet=True)
    assert snapshot(out) == before  # no summary.json, checkpoint and metrics of iteration 3 untouched
    assert load_checkpoint(out / "checkpoint_last.pt")["step"] == 3
    assert main(["train", "--output", str(out), "--resume"]) == 1  # a failed run, not a usage error
    assert "srblock: error: non-finite val metric(s)" in error_line(capsys)


def test_json_files_are_strict(finished_run, tmp_path: Path) -> None:
    out, _ = finished_run
    _strict((out / "summary.json").read_text())
    write_json(tmp_path / "x.json", {"a": math.nan, "b": [math.inf, -math.inf, 1.5]})
    assert _strict((tmp_path / "x.json").read_text()) == {"a": None, "b": [None, None, 1.5]}
