"""What the memory learned and what it costs (PAPER.md §5): usage, maps, feature effect, ablation, overhead, stats.

Names are imported lazily, so ``import srblock.analysis.stats`` does not pull in matplotlib.

>>> from srblock.analysis import analyze_model, overhead_report
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ablation": "ablation",
    "evaluate_accuracy": "ablation",
    "without_sr": "ablation",
    "feature_effect": "features",
    "plot_feature_effect": "features",
    "memory_maps": "maps",
    "plot_memory_maps": "maps",
    "count_macs": "overhead",
    "count_params": "overhead",
    "format_overhead": "overhead",
    "overhead_report": "overhead",
    "analyze_checkpoint": "report",
    "analyze_model": "report",
    "interleaved_timings": "timing",
    "MemoryRecord": "usage",
    "collect_memory_weights": "usage",
    "plot_usage": "usage",
    "summarize_usage": "usage",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
