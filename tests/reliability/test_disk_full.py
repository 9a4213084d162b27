"""A full disk (an injected ENOSPC) during any write: the previous file stays whole, no temporary file remains."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest
import torch

from srblock.cli import main
from srblock.engine import load_checkpoint, save_checkpoint, train
from srblock.io import atomic_path, save_figure, write_json, write_text

from .conftest import error_line, snapshot, tiny_config


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _write_through_a_name(path: Path) -> None:
    """A writer that takes a file name (as torch.onnx.export does), through atomic_path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"onnx")


def test_every_writer_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.pyplot as plt

    fig = plt.figure()
    writers = {
        "summary.json": lambda p: write_json(p, {"acc": 1.0}),
        "table.md": lambda p: write_text(p, "| a |\n"),
        "checkpoint_last.pt": lambda p: save_checkpoint({"model": {}, "config": {}, "step": 1}, p),
        "usage.png": lambda p: save_figure(fig, p),
        "model.onnx": _write_through_a_name,
    }
    for name, write in writers.items():
        write(tmp_path / name)
    before = snapshot(tmp_path)
    monkeypatch.setattr(os, "fsync", _disk_full)  # the data did not reach the disk
    for name, write in writers.items():
        with pytest.raises(OSError, match="No space left"):
            write(tmp_path / name)
    plt.close(fig)
    assert snapshot(tmp_path) == before  # old contents, and no .tmp file left


def test_files_get_the_mode_of_a_plain_open(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        save_checkpoint({"model": {}, "config": {}}, tmp_path / "checkpoint_last.pt")
        write_json(tmp_path / "summary.json", {})
        _write_through_a_name(tmp_path / "model.onnx")
    finally:
        os.umask(old)
    for name in ("checkpoint_last.pt", "summary.json", "model.onnx"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o664, name  # group-readable, not 0600


def test_disk_full_mid_run_keeps_the_last_checkpoint(
    tiny_data: Path, recipe_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    out = tmp_path / "run"
    train(tiny_config(tiny_data), out, stop_after=1, quiet=True)
    before = snapshot(out)

    def full_after_a_few_bytes(state, f, *args, **kwargs):
        f.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_after_a_few_bytes)
    assert main(["train", "--output", str(out), "--resume"]) == 1
    assert "No space left on device" in error_line(capsys)
    assert snapshot(out) == before  # config.yaml rewritten with the same content, checkpoints and metrics intact
    monkeypatch.undo()
    summary = train(None, out, resume=True, quiet=True)  # once there is room again, the run simply goes on
    assert summary["steps"] == 6 and load_checkpoint(out / "checkpoint_last.pt")["step"] == 6
    assert json.loads((out / "summary.json").read_text())["steps"] == 6
