"""The SR block itself: torch only, one concept per file."""

from .modes import eval_mode
from .sr import (
    SRBlock,
    SRBlock1d,
    SRBlock2d,
    SRBlock3d,
    SRBlockNd,
    capture_memory_weights,
    sr_param_count,
)

__all__ = [
    "SRBlock",
    "SRBlock1d",
    "SRBlock2d",
    "SRBlock3d",
    "SRBlockNd",
    "capture_memory_weights",
    "eval_mode",
    "sr_param_count",
]
