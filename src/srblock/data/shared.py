"""Decoded in-memory datasets kept for the next run of the same process (a sweep's worker trains many runs).

Reading CIFAR-10's npz files and turning them into ``N x C x H x W`` tensors takes seconds, as long as a whole
testbed run's training on a GPU. Inside :func:`sharing_datasets` (a sweep process, a launcher's worker) the arrays
read for one run are handed to the next run that asks for the same files, unchanged while those files keep their
size and modification time; outside it every call reads anew, as before. Only the last dataset is kept.

The tensors are shared, not copied: a reader must treat them as read-only (the classification task only indexes
them, which copies). A run therefore trains exactly as it would alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import TypeVar

__all__ = ["file_signature", "shared_or_read", "sharing_datasets"]

T = TypeVar("T")

_depth = 0  # nesting level of sharing_datasets(); > 0: share
_last: tuple[Hashable, object] | None = None


@contextlib.contextmanager
def sharing_datasets() -> Iterator[None]:
    """Within this block, :func:`shared_or_read` keeps the last dataset read for the next caller (nests)."""
    global _depth, _last
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            _last = None  # the memory goes back with the block


def file_signature(*folders: str | Path | None) -> tuple:
    """``(path, size, mtime_ns)`` of every file directly in ``folders`` (missing ones skipped): a cache key part
    that changes when a dataset file is replaced."""
    signature = []
    for folder in folders:
        if folder is None or not Path(folder).is_dir():
            continue
        for path in sorted(Path(folder).resolve().iterdir()):
            if path.is_file():
                stat = path.stat()
                signature.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(signature)


def shared_or_read(key: Hashable, read: Callable[[], T]) -> T:
    """``read()``, or inside :func:`sharing_datasets` the value read last under the same ``key``."""
    global _last
    if _depth == 0:
        return read()
    if _last is not None and _last[0] == key:
        return _last[1]  # type: ignore[return-value]
    _last = None  # free the old dataset before reading the new one
    value = read()
    _last = (key, value)
    return value
