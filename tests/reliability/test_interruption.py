"""Signals and kill -9 during saves: the checkpoints always load, temporary files never survive the next start."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from srblock.cli import main
from srblock.engine import load_checkpoint, train
from srblock.io import remove_stale_temps

from .conftest import tiny_config

# Saves an 8 MB checkpoint in a loop (step 1, 2, ...) so that a signal almost surely lands inside a write.
WRITER = """
import sys, torch
from srblock.engine.checkpoint import save_checkpoint
state = {"model": {"w": torch.randn(2_000_000)}, "config": {}, "step": 0}
while True:
    state["step"] += 1
    save_checkpoint(state, sys.argv[1])
    if state["step"] == 1:
        print("saved", flush=True)
"""


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    path = os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize(
    "sig",
    [
        signal.SIGKILL,
        pytest.param(signal.SIGINT, marks=pytest.mark.slow),
        pytest.param(signal.SIGTERM, marks=pytest.mark.slow),
    ],
)
def test_signal_during_save_leaves_a_loadable_checkpoint(tmp_path: Path, sig: signal.Signals) -> None:
    path = tmp_path / "checkpoint_last.pt"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, env=_env())
    assert proc.stdout.readline().strip() == b"saved"
    time.sleep(0.1)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert load_checkpoint(path)["step"] >= 1  # the last complete save, whatever the signal interrupted
    if sig == signal.SIGINT:  # a Python-level interrupt cleans up its own temporary file
        assert not list(tmp_path.glob(".*.tmp"))
    remove_stale_temps(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_last.pt"]


def test_stale_temporary_files_are_removed_at_resume(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny_config(tiny_data), out, stop_after=1, quiet=True)
    leftovers = [out / ".checkpoint_last.pt.0badf00d.tmp", out / ".summary.json.12345678.tmp"]
    for tmp in leftovers:
        tmp.write_bytes(b"half a file")
    (out / "notes.tmp").write_text("not ours")  # a user's file is never touched
    train(tiny_config(tiny_data), out, resume=True, quiet=True)
    assert not any(tmp.exists() for tmp in leftovers)
    assert (out / "notes.tmp").exists() and (out / "summary.json").is_file()


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), pytest.param(signal.SIGTERM, 143, marks=pytest.mark.slow)]
)
def test_cli_interrupt_exits_with_the_resume_command(recipe_file: Path, tmp_path: Path, sig, code) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "srblock.cli", "train", "-c", str(recipe_file), "--output", str(out)]
    cmd += ["--epochs", "200"]
    # a shell starts background jobs with SIGINT ignored, and a child inherits that: give it Ctrl-C's default back
    default_sigint = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(), text=True, preexec_fn=default_sigint
    )
    deadline = time.monotonic() + 120
    while not (out / "metrics.csv").is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert f"continue with: srblock train --output {out} --resume" in err
    assert "Traceback" not in err
    step = load_checkpoint(out / "checkpoint_last.pt")["step"]
    assert step > 0 and not list(out.glob(".*.tmp"))
    # the interrupted run continues from its own config.yaml (made shorter: the length may change on resume)
    epochs = step // 3 + 1  # 3 iterations per epoch
    assert main(["train", "--output", str(out), "--resume", "--epochs", str(epochs)]) == 0
    assert json.loads((out / "summary.json").read_text())["epochs"] == epochs


def test_ctrl_c_inside_torch_save_waits_for_the_file_and_then_interrupts(tmp_path: Path, monkeypatch) -> None:
    """A KeyboardInterrupt raised inside torch.save's write callback comes out as RuntimeError('unexpected pos'):
    save_checkpoint holds the signal until the file is complete, then raises the interrupt itself."""
    import torch

    from srblock.engine.checkpoint import save_checkpoint

    real_save = torch.save

    def interrupted_save(obj, f, **kwargs):  # Ctrl-C arrives as the write starts
        signal.raise_signal(signal.SIGINT)
        real_save(obj, f, **kwargs)

    monkeypatch.setattr(torch, "save", interrupted_save)
    path = tmp_path / "checkpoint_last.pt"
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"model": {"w": torch.ones(3)}, "config": {}, "step": 7}, path)
    assert load_checkpoint(path)["step"] == 7 and not list(tmp_path.glob(".*.tmp"))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_signals_held_delivers_sigterm_to_its_handler_after_the_block_and_ignores_an_ignored_one() -> None:
    from srblock.io import signals_held

    seen: list[str] = []
    previous = signal.signal(signal.SIGTERM, lambda *_: seen.append("handled"))
    try:
        with signals_held():
            signal.raise_signal(signal.SIGTERM)
            seen.append("block ended")
        assert seen == ["block ended", "handled"]
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with signals_held():
            signal.raise_signal(signal.SIGTERM)
        assert seen == ["block ended", "handled"] and signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)
