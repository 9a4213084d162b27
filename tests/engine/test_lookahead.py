"""airbench's Lookahead: slow weights start late, average with a growing decay, are written back, resume exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from srblock.engine.lookahead import Lookahead, check_lookahead


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))


def _move(model: nn.Module, value: float) -> None:
    """Stand-in for an optimizer step (and a BatchNorm statistics update): set every float entry to ``value``."""
    for tensor in model.state_dict().values():
        if tensor.is_floating_point():
            tensor.fill_(value)


def test_slow_weights_follow_airbench_schedule() -> None:
    model = _model()
    total, every, decay, power = 40, 5, 0.9, 2.0
    lookahead = Lookahead(
        model, total_steps=total, steps_per_epoch=8, start=0.25, every=every, decay=decay, power=power
    )
    weight = model[0].weight
    for done in range(1, 10):  # start: after step 10 of 40; nothing happens before
        _move(model, float(done))
        lookahead.step(done)
    assert lookahead.slow is None and torch.all(weight == 9.0)
    for done in (10, 11, 12, 13, 14):
        _move(model, float(done))
        lookahead.step(done)
    assert lookahead.slow is None  # step 10 is not after the start
    _move(model, 15.0)
    lookahead.step(15)  # first multiple of `every` after the start: the slow weights begin here, the model is kept
    assert torch.all(lookahead.slow["0.weight"] == 15.0) and torch.all(weight == 15.0)
    _move(model, 16.0)
    lookahead.step(16)  # end of epoch 2 (8 steps each): the model is reset to the slow weights
    assert torch.all(weight == 15.0)
    for done in range(17, 20):
        _move(model, float(done))
        lookahead.step(done)
    _move(model, 20.0)
    lookahead.step(20)
    rho = decay**every * (20 / total) ** power
    expected = 15.0 * rho + 20.0 * (1 - rho)
    assert torch.allclose(weight, torch.full_like(weight, expected))
    assert torch.allclose(model[1].running_mean, torch.full((2,), expected))  # BatchNorm statistics too
    assert model[1].num_batches_tracked.dtype == torch.long  # integer entries are left alone


def test_state_dict_round_trip_resumes_the_same_average() -> None:
    a, b = _model(), _model()
    b.load_state_dict(a.state_dict())
    la = Lookahead(a, total_steps=20, steps_per_epoch=20, start=0.0, every=2)
    for done in range(1, 5):
        _move(a, float(done))
        la.step(done)
    lb = Lookahead(b, total_steps=20, steps_per_epoch=20, start=0.0, every=2)
    lb.load_state_dict(la.state_dict())
    b.load_state_dict(a.state_dict())
    for model, lookahead in ((a, la), (b, lb)):
        _move(model, 6.0)
        lookahead.step(6)
    assert torch.equal(a[0].weight, b[0].weight)


def test_options_get_airbench_defaults() -> None:
    assert check_lookahead(None) is None and check_lookahead(False) is None
    assert check_lookahead(True) == {"start": 0.3, "every": 5, "decay": 0.95, "power": 3.0}
    assert check_lookahead({"every": 10})["every"] == 10
    with pytest.raises(ValueError, match="0 <= start < 1"):
        check_lookahead({"start": 1.0})
    with pytest.raises(ValueError, match="must be null, true or a mapping"):
        check_lookahead(5)
