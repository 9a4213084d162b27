"""Experiments: seed-repeated sweeps over recipes with significance tests (``srblock sweep``)."""

from .sweep import Run, Sweep, aggregate, expand_grid, format_plan, load_sweep, run_sweep, sweep_command

__all__ = ["Run", "Sweep", "aggregate", "expand_grid", "format_plan", "load_sweep", "run_sweep", "sweep_command"]
