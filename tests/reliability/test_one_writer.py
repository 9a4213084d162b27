"""Class 1: a run folder has one writer. A second ``train`` (fresh or ``--resume``) is refused while another process
holds the folder, a killed holder's lock is taken over, start-up clean-up never deletes a live writer's temporary
file, and a start that fails leaves nothing that blocks the corrected retry."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from srblock.cli import main
from srblock.engine import train
from srblock.io import LOCK_NAME, FolderBusyError, remove_stale_temps

from .conftest import error_line, snapshot, tiny_config


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    path = os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def _hold(folder: Path, pid: int | None = None) -> Path:
    """Hold ``folder``'s lock as a live process would (this test process, or ``pid``)."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_NAME
    lock.write_text(f"{socket.gethostname()}:{os.getpid() if pid is None else pid}")
    return lock


def test_a_second_train_into_a_held_new_folder_is_refused(tmp_path: Path, recipe_file: Path) -> None:
    """Two ``srblock train`` on one new --output: the second (a real process) exits 2 and writes nothing."""
    out = tmp_path / "run"
    _hold(out)
    before = snapshot(out)
    proc = subprocess.run(
        [sys.executable, "-m", "srblock", "train", "-c", str(recipe_file), "--output", str(out)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("srblock: error: ") and "being written by another srblock process" in last
    assert str(os.getpid()) in last and "Traceback" not in proc.stderr
    assert snapshot(out) == before


def test_a_second_resume_is_refused_and_changes_nothing(run_copy: Path, capsys) -> None:
    (run_copy / "summary.json").unlink()  # an unfinished run: resumable
    _hold(run_copy)
    before = snapshot(run_copy)
    with pytest.raises(FolderBusyError, match="being written by another srblock process"):
        train(None, run_copy, resume=True, quiet=True)
    assert main(["train", "--output", str(run_copy), "--resume", "--set", "optim.lr=0.01", "-q"]) == 2
    assert "being written by another" in error_line(capsys)
    assert snapshot(run_copy) == before


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path: Path, tiny_data: Path) -> None:
    out = tmp_path / "run"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _hold(out, dead.pid)  # a pid that no longer runs
    train(tiny_config(tiny_data, epochs=1), out, quiet=True)
    assert (out / "summary.json").is_file() and not (out / LOCK_NAME).exists()


def test_cleanup_never_deletes_the_temporary_file_of_a_live_writer(tmp_path: Path) -> None:
    live = tmp_path / f".metrics.csv.0123abcd-{os.getpid()}.tmp"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = tmp_path / f".metrics.csv.4567abcd-{gone.pid}.tmp"
    old = tmp_path / ".checkpoint_last.pt.89abcdef.tmp"  # written by an srblock before pids were in the names
    for path in (live, dead, old):
        path.write_text("partial")
    assert sorted(p.name for p in remove_stale_temps(tmp_path)) == sorted([dead.name, old.name])
    assert live.is_file()


def test_a_failed_start_leaves_nothing_that_blocks_the_retry(tmp_path: Path, tiny_data: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(FileNotFoundError):
        train(tiny_config(tmp_path / "no-data"), out, quiet=True)
    assert not out.exists()
    diverging = tiny_config(tiny_data, epochs=1)
    diverging["optim"]["lr"] = 1e30  # fails in the first epoch, after the model and data were built
    with pytest.raises(FloatingPointError):
        train(diverging, out, quiet=True)
    assert not out.exists(), sorted(p.name for p in out.iterdir())
    train(tiny_config(tiny_data, epochs=1), out, quiet=True)  # the corrected retry: no --resume needed
    assert (out / "summary.json").is_file()


DDP_WORKER = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from conftest import tiny_config
from srblock.engine import train
from srblock.io import FolderBusyError
try:
    train(tiny_config(Path({data!r})), {out!r}, quiet=True)
except FolderBusyError as err:
    print("refused:", err)
    sys.exit(3)
"""


@pytest.mark.slow
def test_under_torchrun_every_rank_is_refused_together(tmp_path: Path, tiny_data: Path) -> None:
    """Rank 0 holds the lock; when it cannot, no other rank is left waiting for it (no hang)."""
    out = tmp_path / "run"
    _hold(out)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**_env(), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2"}
    tests = str(Path(__file__).resolve().parents[1] / "engine")
    script = DDP_WORKER.format(tests=tests, data=str(tiny_data), out=str(out))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    outputs = [proc.communicate(timeout=240)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [3, 3], outputs
    assert all("being written by another srblock process" in o for o in outputs)
