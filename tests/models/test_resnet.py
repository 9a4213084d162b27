"""ImageNet ResNets: torchvision's layout and keys exactly, the paper's SR placement at 224²."""

from __future__ import annotations

import pytest
import torch
import torchvision

from srblock import sr_param_count
from srblock.models import count_sr_params, create_model


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet50_param_count_matches_torchvision() -> None:
    assert n_params(create_model("resnet50", num_classes=1000)) == 25_557_032


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101"])
def test_same_state_dict_as_torchvision(name: str) -> None:
    ours = create_model(name, num_classes=1000).state_dict()
    theirs = getattr(torchvision.models, name)(weights=None).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


def test_torchvision_weights_load_strictly_and_give_same_output() -> None:
    reference = torchvision.models.resnet18(weights=None).eval()
    ours = create_model("resnet18", num_classes=1000).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(ours(x), reference(x))


def test_resnet50_sr_at_stage3_is_papers_memory() -> None:
    model = create_model("resnet50", num_classes=1000, sr_stage=3, num_memories=10, hidden=16)
    assert model.layer3.sr.memory.shape == (10, 1024, 14, 14)
    assert count_sr_params(model) == sr_param_count(1024, 14, hidden=16, num_memories=10)


def test_resnet50_sr_at_stage4() -> None:
    model = create_model("resnet50", num_classes=10, sr_stage=4, num_memories=2, hidden=32)
    assert count_sr_params(model) == sr_param_count(2048, 7, hidden=32, num_memories=2)


def test_width_is_rejected_for_imagenet_nets() -> None:
    with pytest.raises(ValueError, match="CIFAR nets only"):
        create_model("resnet50", num_classes=10, width=0.5)


def test_torchvision_kwargs_pass_through() -> None:
    model = create_model("resnet50", num_classes=10, replace_stride_with_dilation=[False, True, True])
    assert model.layer4[1].conv2.dilation == (4, 4)
