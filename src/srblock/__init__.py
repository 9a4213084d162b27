"""srblock: the Squeeze-and-Remember block (Cakaj, Mehnert, Yang, ICMLA 2024, arXiv 2410.00823) and its experiments."""

from .layers import (
    SRBlock,
    SRBlock1d,
    SRBlock2d,
    SRBlock3d,
    SRBlockNd,
    capture_memory_weights,
    sr_param_count,
)

__version__ = "0.1.0"

__all__ = [
    "SRBlock",
    "SRBlock1d",
    "SRBlock2d",
    "SRBlock3d",
    "SRBlockNd",
    "__version__",
    "capture_memory_weights",
    "sr_param_count",
]
