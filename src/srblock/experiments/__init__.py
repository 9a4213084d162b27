"""Experiments: seed-repeated sweeps over recipes with significance tests (``srblock sweep``)."""

from .sweep import (
    Run,
    RunFailedError,
    RunState,
    Sweep,
    aggregate,
    expand_grid,
    format_plan,
    load_sweep,
    plan_sweep,
    run_state,
    run_sweep,
    sweep_command,
)

__all__ = [
    "Run",
    "RunFailedError",
    "RunState",
    "Sweep",
    "aggregate",
    "expand_grid",
    "format_plan",
    "load_sweep",
    "plan_sweep",
    "run_state",
    "run_sweep",
    "sweep_command",
]
