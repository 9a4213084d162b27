"""Every file srblock writes goes through here: atomic (a reader sees the old file or the new one, never a mix).

A write goes to a temporary file in the target's folder, is flushed and ``fsync``-ed, then ``os.replace``-d over
the target (atomic on POSIX and Windows within one file system). A crash, a signal, ``kill -9`` or a full disk in
the middle leaves the previous file intact; the temporary file is removed on any Python-level failure and by
:func:`remove_stale_temps` after a hard kill. The new file gets the mode a plain ``open(path, "w")`` would give
(``0o666`` minus the umask, or the mode of the file it replaces), not ``tempfile``'s ``0o600``.

Written by hand: none of the project's dependencies offers an atomic writer (``atomicwrites`` is archived and
creates ``0o600`` files).

JSON is strict: NaN and ±inf become ``null`` (Python's ``json`` would write the non-standard bare ``NaN``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = [
    "TEMP_SUFFIX",
    "atomic_open",
    "atomic_path",
    "json_safe",
    "remove_stale_temps",
    "save_figure",
    "write_json",
    "write_text",
]

TEMP_SUFFIX = ".tmp"


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform/file system, where it is skipped.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _create_temp(path: Path) -> tuple[Path, int]:
    """A fresh temporary file beside ``path`` (created, open for writing) with the mode ``path`` will get."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    # O_EXCL on a fresh random name; mode 0o666 so the kernel applies the umask exactly as a plain open() does.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(fd if os.chmod in os.supports_fd else tmp, stat.S_IMODE(os.stat(path).st_mode))
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    return tmp, fd


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, newline: str | None = None) -> Iterator[IO[Any]]:
    """``open(path, mode)`` that replaces ``path`` only when the ``with`` block completes.

    ``mode`` is ``"w"`` (text, UTF-8) or ``"wb"``. Parent folders are created.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_open(folder / "a.txt") as f:
    ...     _ = f.write("hello")
    >>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
    ('hello', ['a.txt'])
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    tmp, fd = _create_temp(path)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as f:
            fd = -1  # owned by f now
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary file name beside ``path`` for writers that take a name, not a file object (``torch.onnx.export``);
    what they wrote there replaces ``path`` when the ``with`` block completes, as :func:`atomic_open` does.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_path(folder / "model.onnx") as tmp:
    ...     _ = tmp.write_bytes(b"onnx")
    >>> (folder / "model.onnx").read_bytes(), sorted(p.name for p in folder.iterdir())
    (b'onnx', ['model.onnx'])
    """
    path = Path(path)
    tmp, fd = _create_temp(path)
    os.close(fd)
    try:
        yield tmp
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_open(path) as f:
        f.write(text)
    return Path(path)


def json_safe(value: Any) -> Any:
    """``value`` with NaN/±inf floats replaced by ``None`` (recursively through dicts, lists and tuples).

    >>> json_safe({"a": float("nan"), "b": [1.0, float("inf")]})
    {'a': None, 'b': [1.0, None]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path: str | Path, value: Any, *, default: Any = None) -> Path:
    """Write ``value`` as strict JSON (NaN/inf → ``null``, 2-space indent, trailing newline) atomically.

    ``default`` converts objects ``json`` cannot (as in :func:`json.dumps`); its results are made strict too.
    """
    if default is not None:
        value = json.loads(json.dumps(value, default=default, allow_nan=True))
    text = json.dumps(json_safe(value), indent=2, allow_nan=False)
    return write_text(path, text + "\n")


def save_figure(fig: Any, path: str | Path, **savefig_kwargs: Any) -> Path:
    """``fig.savefig`` into a temporary file, then replace ``path`` (the format comes from the suffix)."""
    path = Path(path)
    savefig_kwargs.setdefault("format", path.suffix.lstrip(".").lower() or "png")
    with atomic_open(path, "wb") as f:
        fig.savefig(f, **savefig_kwargs)
    return path


def remove_stale_temps(folder: str | Path, names: Iterable[str] | None = None) -> list[Path]:
    """Delete temporary files that a killed :func:`atomic_open` left in ``folder``; returns what was removed.

    ``names``: only temporaries of these target file names (default: of any file).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    wanted = None if names is None else set(names)
    removed = []
    for tmp in folder.glob(f".*{TEMP_SUFFIX}"):
        target, _, token = tmp.name[1 : -len(TEMP_SUFFIX)].rpartition(".")
        if not target or len(token) != 8 or (wanted is not None and target not in wanted):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed
