"""The regularizers the paper combines with the SR block: dropout (D), dropout2d (D2D), DropBlock (DB).

Rates and places are not in the paper; ours (PAPER.md §2, each configurable): D = ``nn.Dropout(0.2)`` right before
the classifier; D2D = ``nn.Dropout2d(0.1)`` and DB = DropBlock (p = 0.1, block 3 on CIFAR / 7 on ImageNet) on the
outputs of stages 3 and 4, where they come before an SR block on the same output so that the memory learns to
restore what was dropped. DropBlock's drop probability is ramped linearly from 0 over training by the trainer
through :func:`set_dropblock_progress`.

Every regularizer is parameter-free and added as a new child (``<stage>.drop``, ``<pool>.drop``), so the keys of a
plain checkpoint are unchanged.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn
from torchvision.ops import DropBlock2d

__all__ = [
    "DEFAULT_RATES",
    "REGULARIZERS",
    "DropBlock",
    "add_regularizer",
    "make_stage_regularizer",
    "set_dropblock_progress",
]

REGULARIZERS = (None, "dropout", "dropout2d", "dropblock")
DEFAULT_RATES = {"dropout": 0.2, "dropout2d": 0.1, "dropblock": 0.1}


class DropBlock(DropBlock2d):
    """torchvision's ``DropBlock2d`` that remembers its target probability, for the linear ramp of PAPER.md §2.

    It starts at the full ``p``; the trainer lowers it with :func:`set_dropblock_progress` (``p = target * progress``).
    """

    def __init__(self, p: float = 0.1, block_size: int = 7) -> None:
        super().__init__(p=p, block_size=block_size)
        self.target_p = p

    def extra_repr(self) -> str:
        return f"p={self.p}, target_p={self.target_p}, block_size={self.block_size}"


def set_dropblock_progress(model: nn.Module, progress: float) -> int:
    """Set every :class:`DropBlock` of ``model`` to ``target_p * clamp(progress, 0, 1)``; returns how many.

    >>> model = nn.Sequential(DropBlock(p=0.1, block_size=3))
    >>> set_dropblock_progress(model, 0.5), model[0].p
    (1, 0.05)
    """
    fraction = min(max(float(progress), 0.0), 1.0)
    blocks = [m for m in model.modules() if isinstance(m, DropBlock)]
    for m in blocks:
        m.p = m.target_p * fraction
    return len(blocks)


def _check(regularizer: str | None) -> None:
    if regularizer not in REGULARIZERS:
        raise ValueError(f"regularizer must be one of {REGULARIZERS}, got {regularizer!r}")


def make_stage_regularizer(regularizer: str, p: float | None = None, *, dropblock_size: int = 7) -> nn.Module:
    """The module that regularizes a stage output: ``nn.Dropout2d`` or :class:`DropBlock` at rate ``p``."""
    _check(regularizer)
    if regularizer not in ("dropout2d", "dropblock"):
        raise ValueError(f"a stage output takes 'dropout2d' or 'dropblock', got {regularizer!r}")
    rate = DEFAULT_RATES[regularizer] if p is None else p
    if regularizer == "dropout2d":
        return nn.Dropout2d(rate)
    return DropBlock(rate, block_size=dropblock_size)


def add_regularizer(
    model: nn.Module,
    regularizer: str | None,
    *,
    p: float | None = None,
    stages: Sequence[str] = ("layer3", "layer4"),
    pool: str | None = "avgpool",
    dropblock_size: int = 7,
) -> nn.Module:
    """Add ``regularizer`` to ``model`` in place at the places of PAPER.md §2 and return the model.

    ``"dropout2d"``/``"dropblock"`` are appended as ``drop`` to each ``nn.Sequential`` of ``stages``; ``"dropout"``
    turns the global pooling module ``pool`` into ``Sequential(pool, drop)``, i.e. dropout on the pooled features
    right before the classifier. Call it before putting an SR block on the same stages (the regularizer comes first).
    """
    _check(regularizer)
    if regularizer is None:
        return model
    if regularizer == "dropout":
        if pool is None:
            raise ValueError(f"{type(model).__name__} has no pooling layer for 'dropout' to follow")
        rate = DEFAULT_RATES["dropout"] if p is None else p
        parent, _, name = pool.rpartition(".")
        owner = model.get_submodule(parent)
        pooled = nn.Sequential(OrderedDict(pool=getattr(owner, name), drop=nn.Dropout(rate)))
        setattr(owner, name, pooled)
        return model
    for stage_name in stages:
        stage = model.get_submodule(stage_name)
        if not isinstance(stage, nn.Sequential):
            raise ValueError(f"stage {stage_name!r} must be an nn.Sequential to append a regularizer to it")
        stage.add_module("drop", make_stage_regularizer(regularizer, p, dropblock_size=dropblock_size))
    return model
