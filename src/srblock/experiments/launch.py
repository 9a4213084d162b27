"""Launching a sweep's runs: some arms only, within a time budget, in several local worker processes.

``srblock sweep -c SWEEP --workers 3 --time-budget 480`` starts three processes of the same sweep on this machine
(one GPU is shared by time-slicing, which fills the gaps a single process leaves: start-up, evaluation, Python
overhead). They share the grid through the sweep's per-run locks (:func:`srblock.experiments.sweep.run_sweep`), so
no run is trained twice and a faster worker simply takes more runs; going seed-major, finished runs come in pairs.

With a time budget a seed is started only when all its pending runs are expected to finish in time: the expected
length of a run is the longest run of its arm in this process so far, else the longest ``wall_time_s`` among its
arm's finished runs, else ``run_seconds`` (else it is started). After the first seed that does not fit, none is
started. A run cut off by an outer time limit would be lost; this is what keeps it from starting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

from .sweep import SUMMARY, Run, Sweep, expand_grid

__all__ = ["SeedGate", "run_workers"]


class SeedGate:
    """``run_sweep(gate=...)``: says before each pending run whether this process runs it (module docstring).

    Args:
        sweep: the sweep being run.
        arms: run only these arms (the others stay pending); ``None``: all.
        deadline: time (``time.time()``) by which every started run must be expected to have ended.
        run_seconds: expected length of a run of an arm with no finished run to go by.
        log: where the reason to stop is reported.
    """

    def __init__(
        self,
        sweep: Sweep,
        *,
        arms: Sequence[str] | None = None,
        deadline: float | None = None,
        run_seconds: float | None = None,
        log: Callable[[str], None] = print,
        clock: Callable[[], float] = time.time,
    ) -> None:
        known = [a.name for a in sweep.arms]
        unknown = sorted(set(arms or ()) - set(known))
        if unknown:
            raise ValueError(f"unknown arm(s) {unknown} for sweep {sweep.name}; its arms are {known}")
        self.sweep, self.arms, self.deadline, self.run_seconds = sweep, arms, deadline, run_seconds
        self.log, self.clock = log, clock
        self.runs = expand_grid(sweep)
        self.longest: dict[str, float] = {}  # arm -> longest run in this process
        self.recorded = _recorded_lengths(self.runs)
        self.accepted: set[int] = set()  # seeds this process has started
        self.current: tuple[Run, float, float] | None = None  # the run approved last, clock and wall time then
        self.stopped = False

    def __call__(self, run: Run) -> bool:
        now = self.clock()
        if self.current is not None:  # runs go one after another: the one approved last has ended
            last, started, wall = self.current
            summary = last.output_dir / SUMMARY
            if summary.is_file() and summary.stat().st_mtime >= wall:  # trained here, not left to another worker
                self.longest[last.arm] = max(self.longest.get(last.arm, 0.0), now - started)
            self.current = None
        if self.arms is not None and run.arm not in self.arms:
            return False
        if run.seed not in self.accepted:
            if self.stopped or not self._fits(run.seed, now):
                return False
            self.accepted.add(run.seed)
        self.current = (run, now, time.time() - 0.05)  # file times are coarser than the clock
        return True

    def expected(self, arm: str) -> float:
        """Expected seconds of one run of ``arm`` (see the module docstring; 0 when nothing is known)."""
        return self.longest.get(arm) or self.recorded.get(arm) or self.run_seconds or 0.0

    def _fits(self, seed: int, now: float) -> bool:
        if self.deadline is None:
            return True
        todo = [
            r
            for r in self.runs
            if r.seed == seed and (self.arms is None or r.arm in self.arms) and not (r.output_dir / SUMMARY).is_file()
        ]
        need = sum(self.expected(r.arm) for r in todo)
        if now + need <= self.deadline:
            return True
        self.stopped = True
        self.log(
            f"time budget: seed {seed} needs ~{need:.0f} s, {max(self.deadline - now, 0):.0f} s are left; stopping"
        )
        return False


def _recorded_lengths(runs: Sequence[Run]) -> dict[str, float]:
    """Longest ``wall_time_s`` of each arm's finished runs (their summaries), for arms this process has not run."""
    lengths: dict[str, float] = {}
    for run in runs:
        try:
            seconds = float(json.loads((run.output_dir / SUMMARY).read_text())["wall_time_s"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        lengths[run.arm] = max(lengths.get(run.arm, 0.0), seconds)
    return lengths


def run_workers(
    config: str,
    workers: int,
    *,
    overrides: Sequence[str] = (),
    arms: Sequence[str] | None = None,
    deadline: float | None = None,
    run_seconds: float | None = None,
    extra_args: Sequence[str] = (),
    log: Callable[[str], None] = print,
) -> int:
    """Run the sweep ``config`` in ``workers`` local ``srblock sweep`` processes that share its runs.

    Their output is relayed line by line, prefixed with ``[w<i>]``. Returns the first non-zero exit code of a
    worker (0 when all succeeded); the caller aggregates the results once they are all done.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    started = time.monotonic()
    command = [sys.executable, "-m", "srblock", "sweep", "-c", str(config)]
    for item in overrides:
        command += ["--set", item]
    if arms:
        command += ["--arms", ",".join(arms)]
    if deadline is not None:  # one clock for all: a worker's start-up counts against the budget too
        command += ["--deadline", repr(deadline)]
    if run_seconds is not None:
        command += ["--run-seconds", str(run_seconds)]
    command += list(extra_args)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs, relays = [], []
    try:
        for i in range(workers):
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
            relay = threading.Thread(target=_relay, args=(proc, f"[w{i}] ", log), daemon=True)
            relay.start()
            procs.append(proc)
            relays.append(relay)
        codes = [proc.wait() for proc in procs]
        for relay in relays:
            relay.join()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
    log(f"{workers} workers done in {time.monotonic() - started:.0f} s, exit codes {codes}")
    return next((code for code in codes if code), 0)


def _relay(proc: subprocess.Popen, prefix: str, log: Callable[[str], None]) -> None:
    for line in proc.stdout:
        log(prefix + line.rstrip("\n"))
