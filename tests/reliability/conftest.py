"""Fixtures of the reliability suite: the engine tests' tiny npz set and recipe, and one finished run to copy."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ..engine.conftest import tiny_config, write_npz

__all__ = ["snapshot", "tiny_config"]


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_npz(tmp_path_factory.mktemp("reliability") / "data")


@pytest.fixture(scope="session")
def done_run(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A finished 2-epoch run (shared: copy it with ``run_copy`` before changing anything)."""
    from srblock.engine import train

    out = tmp_path_factory.mktemp("done") / "run"
    return out, train(tiny_config(tiny_root), out, quiet=True)


@pytest.fixture
def run_copy(done_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> Path:
    """A private copy of the finished run's folder."""
    return Path(shutil.copytree(done_run[0], tmp_path / "run"))


@pytest.fixture
def recipe_file(tiny_root: Path, tmp_path: Path) -> Path:
    """The tiny recipe as a YAML file (what the CLI and sweeps take)."""
    import yaml

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tiny_root)))
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
