"""The fixed-routing control of the ablation: each SR block recalls one fixed mix of its memories for every input."""

from __future__ import annotations

import re

import pytest
import torch

from srblock.analysis.ablation import ablation, evaluate_accuracy, with_fixed_routing
from srblock.layers import SRBlock, find_sr_blocks
from srblock.models import create_model


def _zoo_model(routing: bool) -> torch.nn.Module:
    """A CIFAR ResNet18 (its SR block applied by a hook after layer3) with a memory large enough to matter; without
    ``routing`` the block's second layer is zero, so its softmax is uniform for every input."""
    torch.manual_seed(0)
    model = create_model(
        "cifar_resnet18", num_classes=4, sr_stage=3, num_memories=3, hidden=4, width=0.125,
        sr_kwargs={"memory_init": "normal", "memory_std": 1.0},
    ).eval()  # fmt: skip
    if not routing:
        with torch.no_grad():
            find_sr_blocks(model)["layer3.sr"].fc2.weight.zero_()
    return model


def test_a_uniform_routing_is_exactly_its_fixed_mean():
    model = _zoo_model(routing=False)
    fixed = with_fixed_routing(model, {"layer3.sr": torch.full((3,), 1 / 3)})
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fixed(x), model(x))
        assert not torch.allclose(model(x), create_model("cifar_resnet18", num_classes=4, width=0.125).eval()(x))
    assert isinstance(find_sr_blocks(model)["layer3.sr"], SRBlock), "the caller's model keeps its block"


def test_a_fixed_routing_adds_that_mix_of_the_memories_to_every_input():
    block = SRBlock(4, (3, 3), num_memories=3, hidden=2, memory_init="normal", memory_std=1.0)
    net = torch.nn.Sequential(torch.nn.Identity(), block)
    weights = torch.tensor([0.2, 0.0, 0.8])
    fixed = with_fixed_routing(net, {"1": weights})
    x = torch.randn(6, 4, 3, 3)
    expected = x + 0.2 * block.memory[0] + 0.8 * block.memory[2]
    torch.testing.assert_close(fixed(x), expected.detach())
    torch.testing.assert_close(with_fixed_routing(block, {"": weights})(x), expected.detach())  # the model is a block


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"layer2.sr": torch.ones(3) / 3}, "for the SR blocks ['layer3.sr'], got ['layer2.sr']"),
        ({"layer3.sr": torch.ones(4) / 4}, "block 'layer3.sr' has 3 memories, got 4 weights"),
    ],
)
def test_fixed_routing_names_what_it_expected(weights, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        with_fixed_routing(_zoo_model(routing=True), weights)


def test_the_ablation_splits_the_blocks_effect_into_routing_and_constant():
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 4, (8,), generator=g)) for _ in range(2)]
    uniform = ablation(_zoo_model(routing=False), data, mean_weights={"layer3.sr": torch.full((3,), 1 / 3)})
    assert uniform["routing_pp"] == 0.0 and uniform["acc_fixed_routing"] == uniform["acc_sr"]
    model = _zoo_model(routing=True)
    mean = {"layer3.sr": torch.tensor([0.5, 0.3, 0.2])}
    result = ablation(model, data, mean_weights=mean)
    assert result["acc_fixed_routing"] == evaluate_accuracy(with_fixed_routing(model, mean), data)["acc1"]
    assert result["routing_pp"] == pytest.approx(result["acc_sr"] - result["acc_fixed_routing"])
    assert "routing_pp" not in ablation(model, data)  # only with mean weights
