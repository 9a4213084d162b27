"""Damaged, foreign and malicious files: named, classified, never unpickled; the other checkpoint is pointed to."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from srblock.cli import main
from srblock.engine import load_checkpoint, train
from srblock.engine.checkpoint import CheckpointError
from srblock.experiments import aggregate, expand_grid, load_sweep, run_state, run_sweep

from .conftest import error_line, tiny_config


class _Payload:
    """Pickles to a call of os.system: what a malicious checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running_it(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "checkpoint_best.pt"
    torch.save({"model": {}, "config": {}, "payload": _Payload(marker)}, evil)
    with pytest.raises(CheckpointError, match=r"not an srblock checkpoint.*refuses.*posix.system") as info:
        load_checkpoint(evil)
    assert "weights_only=False" not in str(info.value)
    assert main(["eval", "--checkpoint", str(evil)]) == 2
    assert "weights_only" not in error_line(capsys)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "is damaged"),
        (b"not a torch file at all" * 10, "is damaged"),
        ("truncated", "is damaged"),
        ("state_dict", "not an srblock checkpoint .*load_backbone_weights"),
    ],
)
def test_damaged_or_foreign_checkpoint_is_named(run_copy: Path, content, match: str) -> None:
    last = run_copy / "checkpoint_last.pt"
    if content == "truncated":
        last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    elif content == "state_dict":
        torch.save({"conv1.weight": torch.zeros(1)}, last)
    else:
        last.write_bytes(content)
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(last)
    assert str(last) in str(info.value)
    if "damaged" in match:
        assert str(run_copy / "checkpoint_best.pt") in str(info.value)  # the other checkpoint of the run


def test_resume_from_a_damaged_checkpoint_is_a_one_line_error(run_copy: Path, capsys) -> None:
    last = run_copy / "checkpoint_last.pt"
    last.write_bytes(last.read_bytes()[:4096])
    assert main(["train", "--output", str(run_copy), "--resume"]) == 2
    err = error_line(capsys)
    assert "checkpoint_last.pt is damaged" in err and "checkpoint_best.pt" in err


def test_empty_summary_is_named_not_counted(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    sweep_file = tmp_path / "s.yaml"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps(tiny_config(tiny_data)))
    arms = {"a": {"recipe": str(recipe)}, "b": {"recipe": str(recipe), "overrides": {"model.num_memories": 2}}}
    sweep_file.write_text(json.dumps({"output": str(out), "seeds": [0], "arms": arms}))
    sweep = load_sweep(sweep_file)

    def fake(config, run_dir):
        return {"test_acc1": 50.0, "config": config}

    run_sweep(sweep, run_fn=fake, log=lambda _: None)
    (out / "a" / "seed0" / "summary.json").write_bytes(b"")  # what a full disk did before results were atomic
    state = run_state(next(r for r in expand_grid(sweep) if r.arm == "a"))
    assert state.state == "broken" and "a/seed0/summary.json is damaged" in state.detail
    table = aggregate(out, log=lambda _: None)
    assert "| `a` (baseline) | 0 |" in table and "`a/seed0` (broken:" in table


def test_damaged_sweep_copy_is_named(tmp_path: Path) -> None:
    (tmp_path / "sweep.yaml").write_text("arms: [unclosed")
    with pytest.raises(ValueError, match=r"sweep.yaml is damaged"):
        aggregate(tmp_path, log=lambda _: None)


def test_train_from_resume_of_damaged_best_names_it(run_copy: Path, tiny_data: Path) -> None:
    config = tiny_config(tiny_data, epochs=3)
    best = run_copy / "checkpoint_best.pt"
    best.write_bytes(b"\0" * 100)
    with pytest.raises(CheckpointError, match=r"checkpoint_best\.pt is damaged"):
        train(config, run_copy, resume=True, quiet=True)
