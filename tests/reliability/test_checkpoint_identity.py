"""Class 3: every checkpoint restored is checked to belong to the run. A ``checkpoint_best.pt`` copied in from another
run (another seed, or the same recipe trained again) is refused on resume instead of being tested and reported as
this run's result."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from srblock.cli import main
from srblock.engine import load_checkpoint, train
from srblock.engine.checkpoint import CheckpointError

from .conftest import error_line, snapshot, tiny_config


@pytest.mark.parametrize("other", ["another seed", "the same recipe trained again"])
def test_a_best_checkpoint_of_another_run_is_refused(
    run_copy: Path, tiny_data: Path, tmp_path: Path, other: str, capsys
) -> None:
    config = tiny_config(tiny_data)
    if other == "another seed":
        config["seed"] = 1
    stranger = tmp_path / "other"
    train(config, stranger, quiet=True)
    shutil.copy(stranger / "checkpoint_best.pt", run_copy / "checkpoint_best.pt")
    before = snapshot(run_copy)
    why = "config differs in seed" if other == "another seed" else "run id"
    with pytest.raises(CheckpointError, match=rf"checkpoint_best.pt does not belong to the run .*{why}"):
        train(None, run_copy, resume=True, quiet=True)
    assert main(["train", "--output", str(run_copy), "--resume", "-q"]) == 2
    assert "does not belong to the run" in error_line(capsys)
    assert snapshot(run_copy) == before


def test_the_runs_own_checkpoints_carry_its_id(run_copy: Path) -> None:
    last, best = (load_checkpoint(run_copy / f"checkpoint_{n}.pt") for n in ("last", "best"))
    assert last["run_id"] == best["run_id"] and len(last["run_id"]) == 16
    (run_copy / "summary.json").unlink()
    summary = train(None, run_copy, resume=True, quiet=True)  # its own best: accepted
    assert summary["run_id"] == last["run_id"]
