"""Run output on rank 0: progress (tqdm on a terminal, log lines otherwise), ``metrics.csv`` (atomic), TensorBoard.

Messages go through :mod:`logging` (logger ``srblock.engine.logger``; the ``srblock`` command line shows ``INFO`` and
above on stderr, ``-q`` only warnings). In a notebook or script, ``logging.basicConfig(level=logging.INFO)`` shows
them. Progress bars (:func:`progress`) are drawn only on a terminal, and not when the ``srblock`` logger is set above
``INFO`` (``srblock -q``, or ``logging.getLogger("srblock").setLevel(logging.WARNING)``).
"""

from __future__ import annotations

import csv
import logging
import math
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..io import atomic_open

__all__ = ["ProgressLoader", "RunLogger", "progress", "write_metrics_csv"]

_log = logging.getLogger(__name__)


def progress(iterable: Iterable | None = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm bar with rate and ETA on stderr; hidden when ``enabled`` is false, off a terminal, or when quiet.

    Quiet means the ``srblock`` logger's own level is above ``INFO`` (``srblock -q``). ``kwargs`` go to ``tqdm``
    (``total``, ``desc``, ``unit``, ``initial``, ``leave`` ...); bars are not left behind unless ``leave=True``.
    """
    quiet = logging.getLogger("srblock").level > logging.INFO
    kwargs.setdefault("leave", False)
    # disable=None: tqdm hides the bar when stderr is not a terminal (log files, CI, worker processes)
    return tqdm(iterable, disable=True if quiet or not enabled else None, dynamic_ncols=True, **kwargs)


class ProgressLoader:
    """A batch loader (``set_epoch``, ``len``, iteration) that shows a :func:`progress` bar while it is iterated.

    Every other attribute is the wrapped loader's, so a task's ``evaluate`` sees the loader it expects.
    """

    def __init__(self, loader: Any, desc: str, *, enabled: bool = True) -> None:
        self.loader, self.desc, self.enabled = loader, desc, enabled

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        bar = progress(self.loader, total=len(self.loader), desc=self.desc, unit="batch", enabled=self.enabled)
        with bar:
            yield from bar

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.loader.set_epoch(epoch, start_batch)


def _scalars(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if v is None or isinstance(v, (int, float, str))}


def write_metrics_csv(history: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """One row per evaluation period, scalar columns only (the union over all rows, in first-seen order)."""
    rows = [_scalars(r) for r in history]
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with atomic_open(path, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) and abs(value) < 1e4 else f"{value:.3e}"
    return str(value)


class RunLogger:
    """Logs (rank 0 only) and, when asked and installed, mirrors scalars to TensorBoard."""

    def __init__(self, enabled: bool, output_dir: Path, *, tensorboard: bool = False, total_steps: int = 0) -> None:
        self.enabled = enabled
        self.total_steps = total_steps
        self.bar = None
        self.writer = None
        self.tty = enabled and sys.stderr.isatty()
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(output_dir / "tensorboard"))
            except ImportError:
                self.info(
                    "tensorboard requested but not installed: pip install 'srblock[tensorboard]'; going on without"
                )
        self._last_time = time.perf_counter()
        self._last_step = 0

    def info(self, message: str) -> None:
        if self.enabled:
            _log.info(message)

    def start(self, step: int) -> None:
        """Begin (or resume) progress reporting at ``step``."""
        self.restart_clock(step)
        bar = progress(total=self.total_steps, initial=step, unit="it", desc="train", enabled=self.tty)
        self.bar = None if bar.disable else bar

    def restart_clock(self, step: int) -> None:
        """Measure throughput from here (called after each evaluation, so it counts training only)."""
        self._last_time, self._last_step = time.perf_counter(), step

    def step(self, step: int, values: Mapping[str, float] | None = None, *, samples: int = 0) -> None:
        """Called every ``log_interval`` steps with running means and the samples trained since the last call."""
        if not self.enabled:
            return
        now = time.perf_counter()
        rate = samples / max(now - self._last_time, 1e-9)
        self._last_time, self._last_step = now, step
        values = dict(values or {})
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix({k: _fmt(v) for k, v in values.items()}, refresh=False)
        else:
            shown = " ".join(f"{k} {_fmt(v)}" for k, v in values.items())
            _log.info(f"step {step}/{self.total_steps} {shown} {rate:.1f} samples/s")
        self.scalars("train", step, values)

    def scalars(self, prefix: str, step: int, values: Mapping[str, Any]) -> None:
        if self.writer is not None:
            for key, value in _scalars(values).items():
                if isinstance(value, (int, float)):
                    self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.writer is not None:
            self.writer.close()
