"""Experiments: seed-repeated sweeps over recipes with significance tests (``srblock sweep``), their launchers
(time budget, local workers) and the merge of runs trained elsewhere."""

from .archive import merge_runs
from .launch import SeedGate, run_workers
from .sweep import Run, Sweep, aggregate, expand_grid, format_plan, load_sweep, run_sweep, sweep_command

__all__ = [
    "Run",
    "SeedGate",
    "Sweep",
    "aggregate",
    "expand_grid",
    "format_plan",
    "load_sweep",
    "merge_runs",
    "run_sweep",
    "run_workers",
    "sweep_command",
]
