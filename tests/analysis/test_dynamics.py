"""The routing-at-init control and the class-separation statistic (issue 10)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from srblock.analysis.dynamics import class_separation, routing_control, routing_swapped
from srblock.layers import SRBlock


def test_class_separation_is_the_between_class_share_of_variance():
    torch.manual_seed(0)
    labels = torch.randint(0, 4, (200,))
    weights = torch.softmax(torch.randn(200, 5, dtype=torch.float64) + 3 * nn.functional.one_hot(labels, 5), dim=1)
    total = ((weights - weights.mean(0)) ** 2).sum()
    within = sum(((weights[labels == c] - weights[labels == c].mean(0)) ** 2).sum() for c in range(4))
    assert class_separation(weights, labels) == pytest.approx(float(1 - within / total), rel=1e-9)
    assert class_separation(weights, torch.zeros(200, dtype=torch.long)) == pytest.approx(0.0, abs=1e-12)
    assert class_separation(torch.full((5, 3), 1 / 3), torch.arange(5)) == 0.0  # no variance at all


def _class_model() -> tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    """An SR block on 2-channel 'images' whose first channel is +1 for class 0 and -1 for class 1, plus noise."""
    torch.manual_seed(0)
    labels = torch.arange(64) % 2
    images = torch.randn(64, 2, 2, 2) * 0.1
    images[:, 0] += (1 - 2 * labels.float()).view(-1, 1, 1)
    model = nn.Sequential(SRBlock(2, 2, num_memories=2, hidden=2), nn.Flatten(), nn.Linear(8, 2))
    return model, [(images[:32], labels[:32]), (images[32:], labels[32:])]


def test_routing_control_tells_learned_selection_from_the_init():
    model, batches = _class_model()
    block = model[0]
    init = {"0": {n: p.detach().clone() for n, p in block.named_parameters() if n != "memory"}}
    same = routing_control(model, batches, init, bootstrap=200)["0"]
    assert same["delta"] == 0.0 and same["ci_low"] == same["ci_high"] == 0.0  # routing untouched: no difference
    with torch.no_grad():  # "train" the routing: memory 1 for a positive first channel, memory 2 otherwise
        block.squeeze.weight.copy_(torch.tensor([[[[1.0]], [[0.0]]]]))
        block.fc1.weight.copy_(torch.full((2, 4), 1.0))
        block.fc2.weight.copy_(torch.tensor([[5.0, 0.0], [-5.0, 0.0]]))
    learned = routing_control(model, batches, init, bootstrap=200)["0"]
    assert learned["eta2_trained"] > 0.9 and learned["delta"] > 0 and learned["ci_low"] > 0
    assert learned["p_not_greater"] == 0.0 and learned["weights_init"].shape == (64, 2)
    assert torch.equal(block.fc2.weight, torch.tensor([[5.0, 0.0], [-5.0, 0.0]]))  # trained weights restored


def test_routing_swapped_restores_even_on_error_and_names_unknown_blocks():
    model, _ = _class_model()
    before = model[0].fc1.weight.clone()
    zeros = {"0": {"fc1.weight": torch.zeros(2, 4)}}
    with pytest.raises(RuntimeError), routing_swapped(model, zeros):
        assert torch.count_nonzero(model[0].fc1.weight) == 0
        raise RuntimeError("boom")
    assert torch.equal(model[0].fc1.weight, before)
    with pytest.raises(ValueError, match="lacks"), routing_swapped(model, {"layer9.sr": {}}):
        pass
