"""Every file srblock writes goes through here: atomic (a reader sees the old file or the new one, never a mix).

A write goes to a temporary file in the target's folder, is flushed and ``fsync``-ed, then ``os.replace``-d over
the target (atomic on POSIX and Windows within one file system). A crash, a signal, ``kill -9`` or a full disk in
the middle leaves the previous file intact; the temporary file is removed on any Python-level failure and by
:func:`remove_stale_temps` after a hard kill. The new file gets the mode a plain ``open(path, "w")`` would give
(``0o666`` minus the umask, or the mode of the file it replaces), not ``tempfile``'s ``0o600``.

Written by hand: none of the project's dependencies offers an atomic writer (``atomicwrites`` is archived and
creates ``0o600`` files).

JSON is strict: NaN and ±inf become ``null`` (Python's ``json`` would write the non-standard bare ``NaN``).

A folder has one writer: :func:`claim_folder` / :func:`lock_folder` hold ``<folder>/.srblock.lock`` (created
exclusively, naming host and process) for as long as a run or a sweep writes there. What srblock wrote into a
folder that people also use (sweep tables, analysis reports) is listed with its SHA-256 in
``<folder>/.srblock-owned.json``, in the same step as the write (``ours=True`` on :func:`atomic_open` and the
writers over it; :func:`mark_ours` for files written otherwise); :func:`check_ours` refuses to replace a file that is
not listed there, or changed since.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import secrets
import signal
import socket
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = [
    "FIGURE_COLORS",
    "LOCK_NAME",
    "OWNED_NAME",
    "TEMP_SUFFIX",
    "FolderBusyError",
    "atomic_open",
    "atomic_path",
    "check_ours",
    "claim_folder",
    "file_sha256",
    "json_safe",
    "lock_folder",
    "mark_ours",
    "remove_ours",
    "remove_stale_temps",
    "save_figure",
    "signals_held",
    "write_json",
    "write_text",
]

TEMP_SUFFIX = ".tmp"
LOCK_NAME = ".srblock.lock"
OWNED_NAME = ".srblock-owned.json"


def _temp_name(path: Path) -> Path:
    # the writer's pid in the name: remove_stale_temps never deletes the file of a process that is still writing it
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}-{os.getpid()}{TEMP_SUFFIX}")


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
    fd = -1
    try:
        # O_EXCL on a fresh random name; mode 0o666 so the kernel applies the umask exactly as a plain open() does.
        # Inside the try: a Ctrl-C is raised right after the call returns, when the file exists but fd is not set.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with contextlib.suppress(FileNotFoundError):
            os.chmod(fd if os.chmod in os.supports_fd else tmp, stat.S_IMODE(os.stat(path).st_mode))
    except FileExistsError:
        raise  # not ours (O_EXCL): leave it
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    return tmp, fd


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM until the block ends, then deliver the first one received as it would have
    been (main thread only; elsewhere the block runs as is).

    For writes done by C code that calls back into Python, such as ``torch.save``: an interrupt raised inside its
    write callback comes out of it as an unrelated ``RuntimeError`` (``unexpected pos``), not as the interrupt.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    # a handler installed outside Python (getsignal: None) could not be put back: such a signal is left alone
    held = [sig for sig in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(sig) is not None]
    previous = {sig: signal.signal(sig, lambda signum, _: received.append(signum)) for sig in held}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        handler = previous[received[0]]
        if callable(handler):
            handler(received[0], None)
        elif handler == signal.SIG_DFL:
            signal.raise_signal(received[0])


@contextlib.contextmanager
def atomic_open(
    path: str | Path, mode: str = "w", *, newline: str | None = None, ours: bool = False
) -> Iterator[IO[Any]]:
    """``open(path, mode)`` that replaces ``path`` only when the ``with`` block completes.

    ``mode`` is ``"w"`` (text, UTF-8) or ``"wb"``. Parent folders are created. ``ours=True`` lists the new file in
    its folder's ``.srblock-owned.json`` (:func:`mark_ours`) in the same step as the replace, Ctrl-C and SIGTERM
    held between the two (:func:`signals_held`): an interrupt never leaves a file of srblock's unlisted, which
    :func:`check_ours` would then refuse to replace.

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
        with signals_held() if ours else contextlib.nullcontext():
            os.replace(tmp, path)
            if ours:
                mark_ours(path)
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


def write_text(path: str | Path, text: str, *, ours: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (``ours``: listed as srblock's, :func:`atomic_open`); returns
    the path."""
    with atomic_open(path, ours=ours) as f:
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


def write_json(path: str | Path, value: Any, *, default: Any = None, ours: bool = False) -> Path:
    """Write ``value`` as strict JSON (NaN/inf → ``null``, 2-space indent, trailing newline) atomically.

    ``default`` converts objects ``json`` cannot (as in :func:`json.dumps`); its results are made strict too.
    ``ours``: listed as srblock's (:func:`atomic_open`).
    """
    if default is not None:
        value = json.loads(json.dumps(value, default=default, allow_nan=True))
    text = json.dumps(json_safe(value), indent=2, allow_nan=False)
    return write_text(path, text + "\n", ours=ours)


#: Colours of a saved PNG figure's palette (:func:`save_figure`).
FIGURE_COLORS = 256


def save_figure(fig: Any, path: str | Path, *, palette: bool = True, ours: bool = False, **savefig_kwargs: Any) -> Path:
    """``fig.savefig`` into a temporary file, then replace ``path`` (the format comes from the suffix).

    An opaque PNG is stored with a palette of at most :data:`FIGURE_COLORS` colours (Pillow's median cut, then its
    optimised encoder, keeping the resolution): a plot's few colours stay as they are, a smooth colour map is cut to
    256 steps, and the file is about a third of matplotlib's RGBA one. Result figures are committed with the runs,
    and the repository must stay small enough to travel to a GPU machine. A figure with any transparency, and
    ``palette=False``, keep matplotlib's own PNG. ``ours``: listed as srblock's (:func:`atomic_open`).
    """
    path = Path(path)
    savefig_kwargs.setdefault("format", path.suffix.lstrip(".").lower() or "png")
    if savefig_kwargs["format"] != "png" or not palette:
        with atomic_open(path, "wb", ours=ours) as f:
            fig.savefig(f, **savefig_kwargs)
        return path
    from PIL import Image  # matplotlib's own dependency

    buffer = io.BytesIO()
    fig.savefig(buffer, **savefig_kwargs)
    buffer.seek(0)
    with Image.open(buffer) as rendered:
        rendered.load()
        dpi = rendered.info.get("dpi")
        translucent = rendered.mode in ("RGBA", "LA") and rendered.getextrema()[-1][0] < 255
        image = (
            None if translucent else rendered.convert("RGB").quantize(FIGURE_COLORS, method=Image.Quantize.MEDIANCUT)
        )
    with atomic_open(path, "wb", ours=ours) as f:
        if image is None:
            f.write(buffer.getvalue())
        else:
            image.save(f, format="PNG", optimize=True, **({"dpi": dpi} if dpi else {}))
    return path


def remove_stale_temps(folder: str | Path, names: Iterable[str] | None = None) -> list[Path]:
    """Delete temporary files that a killed :func:`atomic_open` left in ``folder``; returns what was removed.

    ``names``: only temporaries of these target file names (default: of any file). A temporary file whose writer
    (named in it) still runs on this machine is left alone.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    wanted = None if names is None else set(names)
    removed = []
    for tmp in folder.glob(f".*{TEMP_SUFFIX}"):
        target, _, token = tmp.name[1 : -len(TEMP_SUFFIX)].rpartition(".")
        token, _, pid = token.partition("-")
        if not target or len(token) != 8 or (wanted is not None and target not in wanted):
            continue
        if pid.isdigit() and _alive(int(pid)):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


# ------------------------------------------------------------------------------------------------ one writer


class FolderBusyError(FileExistsError):
    """Another process writes into this folder (it holds ``<folder>/.srblock.lock``)."""


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else (PermissionError), or cannot tell: assume alive
    return True


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _holder(lock: Path) -> str | None:
    """The live owner (``host:pid``) named in ``lock``, or ``None`` when the lock is stale (its process is gone)."""
    try:
        text = lock.read_text(errors="replace").strip()
    except FileNotFoundError:
        return None
    host, _, pid = text.partition(":")
    if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
        return None
    return text or "a process that has not written its name yet"


def _acquire(folder: Path, name: str) -> str | None:
    """Create ``folder/name`` exclusively with our ``host:pid``; ``None`` on success, else the holder."""
    lock = folder / name
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(lock)
            if holder is not None:
                return holder
            # its process died: move the stale lock aside (an atomic rename) and try again; if what was moved is
            # the fresh lock of a process that took over first, it is put back
            grave = folder / f".{name}.{secrets.token_hex(4)}-{os.getpid()}{TEMP_SUFFIX}"
            try:
                os.rename(lock, grave)
            except FileNotFoundError:
                continue
            holder = _holder(grave)
            if holder is not None:
                with contextlib.suppress(FileExistsError):
                    os.link(grave, lock)
                grave.unlink(missing_ok=True)
                return holder
            grave.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(_owner())
        return None
    return _holder(lock) or "another process"


@contextlib.contextmanager
def claim_folder(folder: str | Path, *, name: str = LOCK_NAME) -> Iterator[bool]:
    """Hold ``folder/name`` while the block runs; yields ``False`` (holding nothing) if another live process holds it.

    The lock names its process (``host:pid``); one left by a process of this machine that no longer exists (killed)
    is taken over. ``folder`` is created; if it was created here and is empty at the end, it is removed again, so a
    start that fails leaves nothing behind.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()) / "run"
    >>> with claim_folder(folder) as mine:
    ...     mine, (folder / LOCK_NAME).is_file()
    (True, True)
    >>> folder.exists()
    False
    """
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        holder = _acquire(folder, name)
        if holder is not None:
            yield False
            return
        try:
            yield True
        finally:
            (folder / name).unlink(missing_ok=True)
    finally:
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty


@contextlib.contextmanager
def lock_folder(folder: str | Path, *, what: str = "folder") -> Iterator[None]:
    """:func:`claim_folder`, raising :class:`FolderBusyError` (naming the other process) when it is held."""
    folder = Path(folder)
    with claim_folder(folder) as mine:
        if not mine:
            holder = _holder(folder / LOCK_NAME) or "another process"
            raise FolderBusyError(
                f"{what} {folder} is being written by another srblock process ({holder}, see {folder / LOCK_NAME}); "
                "wait for it to finish or choose another folder"
            )
        yield


# ------------------------------------------------------------------------------------------- what we wrote


def file_sha256(path: Path) -> str:
    """The SHA-256 hex digest of a file, read in 1 MiB chunks (``hashlib.file_digest`` needs Python 3.11)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _owned(folder: Path) -> dict[str, str]:
    try:
        owned = json.loads((folder / OWNED_NAME).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return owned if isinstance(owned, dict) else {}


def check_ours(*paths: str | Path, legacy: Callable[[Path], bool] | None = None) -> None:
    """``FileExistsError`` naming every one of ``paths`` that exists but was not written by srblock (not listed in
    its folder's ``.srblock-owned.json``, or changed since), before anything replaces them.

    ``legacy(folder) -> bool`` recognises a folder that an srblock older than these lists wrote (e.g. a sweep
    folder by its ``sweep.yaml``); it is asked only about folders without a list, whose existing ``paths`` are
    then taken as ours (and listed).
    """
    paths = [Path(p) for p in paths]
    if legacy is not None:
        for folder in {p.parent for p in paths}:
            if folder.is_dir() and not (folder / OWNED_NAME).exists() and legacy(folder):
                mark_ours(*(p for p in paths if p.parent == folder))
    foreign = []
    for path in paths:
        if not path.exists():
            continue
        recorded = _owned(path.parent).get(path.name)
        if recorded is None or not path.is_file() or file_sha256(path) != recorded:
            foreign.append(path)
    if foreign:
        shown = ", ".join(str(p) for p in foreign)
        raise FileExistsError(
            f"{shown} {'was' if len(foreign) == 1 else 'were'} not written by srblock (or changed since), and srblock "
            "never replaces such a file: move it away or choose another folder"
        )


def remove_ours(path: str | Path) -> bool:
    """Delete ``path`` if srblock wrote it (:func:`check_ours` passes) and drop it from its folder's list; a file of
    someone else's raises ``FileExistsError``. Returns whether a file was removed."""
    path = Path(path)
    check_ours(path)
    if not path.exists():
        return False
    path.unlink()
    owned = _owned(path.parent)
    owned.pop(path.name, None)
    write_text(path.parent / OWNED_NAME, json.dumps(dict(sorted(owned.items())), indent=2) + "\n")
    return True


def mark_ours(*paths: str | Path) -> None:
    """Record ``paths`` (just written) with their SHA-256 in their folders' ``.srblock-owned.json``."""
    by_folder: dict[Path, list[Path]] = {}
    for path in map(Path, paths):
        by_folder.setdefault(path.parent, []).append(path)
    for folder, files in by_folder.items():
        owned = _owned(folder)
        owned.update({p.name: file_sha256(p) for p in files if p.is_file()})
        write_text(folder / OWNED_NAME, json.dumps(dict(sorted(owned.items())), indent=2) + "\n")
