"""`srblock export`: a trained run's checkpoint becomes weights-only safetensors plus its model section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from srblock.cli import main
from srblock.engine import export_pretrained, load_checkpoint, load_trained_model
from srblock.models.hub import from_pretrained


def test_export_round_trip_equals_the_trained_model(finished_run: tuple[Path, dict[str, Any]], tmp_path, capsys):
    run, _ = finished_run
    checkpoint = run / "checkpoint_best.pt"
    assert main(["export", "--checkpoint", str(checkpoint), "--output", str(tmp_path / "shared")]) == 0
    assert "model.safetensors" in capsys.readouterr().out

    state = load_checkpoint(checkpoint)
    assert {"optimizer", "rng"} <= set(state)  # what the checkpoint holds and the export must not
    config = json.loads((tmp_path / "shared" / "config.json").read_text())
    assert config == state["config"]["model"]
    weights = load_file(tmp_path / "shared" / "model.safetensors")
    assert weights.keys() == state["model"].keys()
    for key, value in state["model"].items():
        torch.testing.assert_close(weights[key], value, rtol=0, atol=0, msg=key)

    trained, _ = load_trained_model(checkpoint)
    shared = from_pretrained(tmp_path / "shared")
    images = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(shared(images), trained(images), rtol=0, atol=0)


def test_export_refuses_a_non_empty_folder(finished_run, tmp_path, capsys) -> None:
    run, _ = finished_run
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "keep.txt").write_text("mine")
    argv = ["export", "--checkpoint", str(run / "checkpoint_best.pt"), "--output", str(tmp_path / "shared")]
    assert main(argv) != 0
    assert (
        "exists and is not empty; choose another folder or pass overwrite=True (--overwrite)" in capsys.readouterr().err
    )
    assert [p.name for p in (tmp_path / "shared").iterdir()] == ["keep.txt"]
    with pytest.raises(FileExistsError, match="exists and is not empty"):
        export_pretrained(run / "checkpoint_best.pt", tmp_path / "shared")
    assert main([*argv, "--overwrite"]) == 2  # --overwrite replaces only an export, never a folder of the user's
    assert [p.name for p in (tmp_path / "shared").iterdir()] == ["keep.txt"]
    (tmp_path / "shared" / "keep.txt").unlink()
    assert main(argv) == 0
    assert main([*argv, "--overwrite"]) == 0
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["README.md", "config.json", "model.safetensors"]
