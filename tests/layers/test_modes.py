"""eval_mode: eval (or train) inside the block, every module's own mode restored after, even on an error."""

from __future__ import annotations

import pytest
from torch import nn

from srblock.layers import eval_mode


def _model() -> nn.Sequential:
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout(0.5))
    model[1].eval()  # a frozen BatchNorm inside a training model
    return model


def test_eval_inside_and_per_module_modes_restored() -> None:
    model = _model()
    with eval_mode(model) as same:
        assert same is model
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == [True, True, False, True]


def test_train_mode_variant_restores_an_eval_model() -> None:
    model = _model().eval()
    with eval_mode(model, training=True):
        assert all(m.training for m in model.modules())
    assert not any(m.training for m in model.modules())


def test_modes_restored_when_the_block_raises() -> None:
    model = _model()
    with pytest.raises(RuntimeError, match="boom"), eval_mode(model):
        raise RuntimeError("boom")
    assert [m.training for m in model.modules()] == [True, True, False, True]
