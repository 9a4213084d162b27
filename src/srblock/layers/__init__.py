"""The SR block itself, torch only, and the small helpers every layer above needs (find the blocks, count them)."""

from .modes import eval_mode
from .sr import (
    SRBlock,
    SRBlock1d,
    SRBlock2d,
    SRBlock3d,
    SRBlockNd,
    capture_memory_weights,
    count_sr_params,
    find_sr_blocks,
    sr_param_count,
)

__all__ = [
    "SRBlock",
    "SRBlock1d",
    "SRBlock2d",
    "SRBlock3d",
    "SRBlockNd",
    "capture_memory_weights",
    "count_sr_params",
    "eval_mode",
    "find_sr_blocks",
    "sr_param_count",
]
