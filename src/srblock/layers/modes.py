"""Run a model in eval (or train) mode for a while and give every module back the mode it had."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

__all__ = ["eval_mode"]


@contextmanager
def eval_mode(model: nn.Module, training: bool = False) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode (``training=True``: train mode) inside the block; restore each module's own mode.

    Restoring per module, not ``model.train(was_training)``, keeps submodules that were deliberately in another mode
    (a frozen BatchNorm in eval mode inside a training model) as they were.

    >>> model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2).eval())
    >>> with eval_mode(model):
    ...     model.training
    False
    >>> model.training, model[1].training
    (True, False)
    """
    modes = [(m, m.training) for m in model.modules()]
    model.train(training)
    try:
        yield model
    finally:
        for module, mode in modes:
            module.training = mode
