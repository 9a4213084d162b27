"""srblock: the Squeeze-and-Remember block (Cakaj, Mehnert, Yang, ICMLA 2024, arXiv 2410.00823) and its experiments.

>>> import srblock
>>> model = srblock.create_model("cifar_resnet18", num_classes=10, sr_stage=3, num_memories=10)
>>> srblock.count_sr_params(model) == srblock.sr_param_count(256, 8, hidden=8, num_memories=10)
True
"""

from .layers import (
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

__version__ = "0.1.0"

# The model zoo pulls in torchvision and timm: load it on first use, so `import srblock` for the block stays light.
_MODELS_API = (
    "create_model",
    "insert_sr",
    "list_models",
    "load_backbone_weights",
    "register_model",
    "remove_sr",
)


def __getattr__(name: str) -> object:
    if name in _MODELS_API:
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "SRBlock",
    "SRBlock1d",
    "SRBlock2d",
    "SRBlock3d",
    "SRBlockNd",
    "__version__",
    "capture_memory_weights",
    "count_sr_params",
    "find_sr_blocks",
    "sr_param_count",
    *_MODELS_API,
]
