"""A time budget for a sweep: no run starts that is not expected to end by a deadline.

``srblock sweep -c SWEEP --time-budget 480`` (``run_sweep(budget=TimeBudget(time.time() + 480))``) skips every run
that would start too late to finish in time, wherever a launcher runs it: a run cut off by an outer time limit (a
lent GPU's window, a job's wall time) is lost. The expected length of a run is the longest ``wall_time_s`` among its
arm's finished runs, read from their summaries when the run would start (so parallel workers learn from each other),
plus a margin for what ``wall_time_s`` leaves out (start-up, data, model); before an arm has a finished run it is
``run_seconds``; without that either, the run is started. Runs go seed-major, so the arms of a seed start together
and the arms stay balanced when the budget runs out.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

__all__ = ["Skipped", "TimeBudget"]

_SUMMARY = "summary.json"  # srblock.experiments.sweep.SUMMARY (a run folder is <output>/<arm>/seed<N>/)


class Skipped(NamedTuple):
    """What a sweep job returns for a run it did not start, and why."""

    reason: str


@dataclass(frozen=True)
class TimeBudget:
    """Start a run only if it is expected to end by ``deadline`` (a ``time.time()``); see the module docstring."""

    deadline: float
    run_seconds: float | None = None
    margin: float = 1.1  # x the longest recorded wall_time_s ...
    overhead_s: float = 5.0  # ... + this, for what wall_time_s leaves out

    def expected(self, run_dir: Path) -> float | None:
        """Expected seconds of the run in ``run_dir`` (None: nothing to go by)."""
        recorded = []
        for path in Path(run_dir).parent.glob(f"*/{_SUMMARY}"):  # the arm's finished runs
            try:
                recorded.append(float(json.loads(path.read_text())["wall_time_s"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        if recorded:
            return max(recorded) * self.margin + self.overhead_s
        return self.run_seconds

    def refuses(self, run_dir: Path, now: float | None = None) -> Skipped | None:
        """A :class:`Skipped` when the run in ``run_dir`` would not end in time, else ``None``."""
        now = time.time() if now is None else now
        need = self.expected(run_dir) or 0.0
        if now + need <= self.deadline:
            return None
        return Skipped(f"time budget: expected ~{need:.0f} s, {max(self.deadline - now, 0.0):.0f} s left")
