"""No silent overwrite: a folder holding any run file is refused for a new run, and left byte-for-byte unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from srblock.cli import main
from srblock.engine import train

from .conftest import error_line, snapshot, tiny_config


@pytest.mark.parametrize(
    "kept",
    [
        ("config.yaml", "metrics.csv", "summary.json"),  # a sweep run with keep_checkpoints: false
        ("config.yaml", "metrics.csv", "summary.json", "checkpoint_best.pt"),  # keep_checkpoints: best
        ("config.yaml",),  # killed before the first checkpoint
    ],
)
def test_new_run_into_a_run_folder_is_refused(run_copy: Path, tiny_data: Path, kept: tuple[str, ...]) -> None:
    for path in run_copy.iterdir():
        if path.name not in kept:
            path.unlink()
    before = snapshot(run_copy)
    with pytest.raises(FileExistsError, match=r"already holds a run .*--resume"):
        train(tiny_config(tiny_data), run_copy, quiet=True)
    assert snapshot(run_copy) == before


def test_resume_of_a_finished_run_without_checkpoint_is_refused(run_copy: Path, tiny_data: Path) -> None:
    for name in ("checkpoint_last.pt", "checkpoint_best.pt"):
        (run_copy / name).unlink()
    before = snapshot(run_copy)
    with pytest.raises(FileExistsError, match=r"no checkpoint_last\.pt to resume from"):
        train(tiny_config(tiny_data), run_copy, resume=True, quiet=True)
    assert snapshot(run_copy) == before


def test_cli_refusal_is_one_line_with_exit_status_2(run_copy: Path, recipe_file: Path, capsys) -> None:
    before = snapshot(run_copy)
    assert main(["train", "-c", str(recipe_file), "--output", str(run_copy)]) == 2
    assert "already holds a run" in error_line(capsys)
    assert snapshot(run_copy) == before
