"""Fixtures of the reliability suite: a private copy of the shared finished run, the tiny recipe as a file."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..engine.conftest import tiny_config

__all__ = ["snapshot", "tiny_config"]


@pytest.fixture(autouse=True)
def ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt here however the suite was started: a non-interactive shell's ``cmd &``
    starts Python with SIGINT ignored, and the interruption tests that raise SIGINT would then test nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def run_copy(finished_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> Path:
    """A private copy of the finished run's folder."""
    return Path(shutil.copytree(finished_run[0], tmp_path / "run"))


@pytest.fixture
def recipe_file(tiny_data: Path, tmp_path: Path) -> Path:
    """The tiny recipe as a YAML file (what the CLI and sweeps take)."""
    import yaml

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tiny_data)))
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (to prove that nothing changed)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def error_line(capsys: pytest.CaptureFixture) -> str:
    """The command's error: stderr's last line, ``srblock: error: ...`` (log lines may come before it, a traceback
    never does)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    last = err.rstrip("\n").splitlines()[-1]
    assert last.startswith("srblock: error: "), err
    return last
