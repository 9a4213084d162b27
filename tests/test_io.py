"""Atomic text writes: a failed write leaves the previous file whole and no temporary file behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from srblock._io import write_text_atomic


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_text_atomic(tmp_path / "sub" / "result.json", '{"old": 1}\n')
    assert path.read_text() == '{"old": 1}\n'

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_text_atomic(path, '{"new": 2}\n')
    assert path.read_text() == '{"old": 1}\n'
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]


def test_no_overwrite_and_ordinary_permissions(tmp_path: Path) -> None:
    path = write_text_atomic(tmp_path / "a.yaml", "x: 1\n")
    with pytest.raises(FileExistsError, match=r"a\.yaml already exists"):
        write_text_atomic(path, "x: 2\n", overwrite=False)
    assert path.read_text() == "x: 1\n"
    mask = os.umask(0o022)
    try:
        assert write_text_atomic(tmp_path / "b.yaml", "y\n").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    finally:
        os.umask(mask)
