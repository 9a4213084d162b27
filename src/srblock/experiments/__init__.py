"""Experiments: seed-repeated sweeps over recipes with significance tests (``srblock sweep``), where their runs
execute (launchers), a time budget, and the merge of runs trained elsewhere."""

from .archive import merge_runs
from .budget import Skipped, TimeBudget
from .sweep import (
    Run,
    RunFailedError,
    RunState,
    Sweep,
    aggregate,
    expand_grid,
    format_plan,
    format_seeds,
    load_sweep,
    parse_seeds,
    plan_sweep,
    run_state,
    run_sweep,
    sweep_command,
)

__all__ = [
    "Run",
    "RunFailedError",
    "RunState",
    "Skipped",
    "Sweep",
    "TimeBudget",
    "aggregate",
    "expand_grid",
    "format_plan",
    "format_seeds",
    "load_sweep",
    "merge_runs",
    "parse_seeds",
    "plan_sweep",
    "run_state",
    "run_sweep",
    "sweep_command",
]
