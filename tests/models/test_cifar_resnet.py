"""CIFAR ResNets: the paper's exact parameter counts, stage shapes at 32², width scaling, SR placement."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.resnet import ResNet

from srblock import sr_param_count
from srblock.models import count_sr_params, create_model


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "num_classes", "expected"),
    [
        ("cifar_resnet18", 100, 11_220_132),
        ("cifar_resnet18", 10, 11_173_962),
        ("cifar_resnet34", 100, 21_328_292),
        ("cifar_resnet34", 10, 21_282_122),
        ("cifar_resnet50", 100, 23_705_252),
        ("cifar_resnet50", 10, 23_520_842),
    ],
)
def test_baseline_param_counts_match_paper(name: str, num_classes: int, expected: int) -> None:
    assert n_params(create_model(name, num_classes=num_classes)) == expected


@pytest.mark.parametrize(("name", "expansion"), [("cifar_resnet18", 1), ("cifar_resnet34", 1), ("cifar_resnet50", 4)])
def test_stage_shapes_at_32(name: str, expansion: int) -> None:
    model = create_model(name, num_classes=10).to("meta")  # shapes only: no compute on the meta device
    shapes = {}
    for i in range(1, 5):
        getattr(model, f"layer{i}").register_forward_hook(lambda _m, _i, o, i=i: shapes.__setitem__(i, o.shape[1:]))
    out = model(torch.randn(1, 3, 32, 32, device="meta"))
    assert out.shape == (1, 10)
    assert isinstance(model, ResNet)
    assert type(model.maxpool).__name__ == "Identity" and model.conv1.kernel_size == (3, 3)
    assert shapes == {i: (c * expansion, s, s) for i, (c, s) in enumerate([(64, 32), (128, 16), (256, 8), (512, 4)], 1)}


def test_sr_stage_adds_eq1_parameters() -> None:
    base = n_params(create_model("cifar_resnet18", num_classes=10))
    model = create_model("cifar_resnet18", num_classes=10, sr_stage=3, num_memories=6, hidden=8)
    expected = sr_param_count(256, 8, hidden=8, num_memories=6)
    assert count_sr_params(model) == expected
    assert n_params(model) - base == expected


def test_resnet50_sr_overhead_uses_bottleneck_widths() -> None:
    model = create_model("cifar_resnet50", num_classes=100, sr_stage=3, num_memories=8, hidden=8)
    assert count_sr_params(model) == sr_param_count(1024, 8, hidden=8, num_memories=8)
    assert model.layer3.sr.memory.shape == (8, 1024, 8, 8)


def test_width_scales_stage_widths() -> None:
    model = create_model("cifar_resnet18", num_classes=10, width=0.25, sr_stage=4, num_memories=2)
    assert [getattr(model, f"layer{i}")[0].bn2.num_features for i in range(1, 5)] == [16, 32, 64, 128]
    assert model.layer4.sr.memory.shape == (2, 128, 4, 4)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_state_dict_keys_unchanged_by_sr() -> None:
    plain = create_model("cifar_resnet18", num_classes=10).state_dict().keys()
    with_sr = create_model("cifar_resnet18", num_classes=10, sr_stage=3).state_dict().keys()
    assert set(with_sr) - set(plain) == {
        f"layer3.sr.{k}" for k in ("memory", "squeeze.weight", "fc1.weight", "fc2.weight")
    }
    assert set(plain) <= set(with_sr)


def test_input_size_overrides_native_size() -> None:
    model = create_model("cifar_resnet18", num_classes=10, sr_stage=3, input_size=(3, 64, 64))
    assert model.layer3.sr.feat_size == (16, 16)


def test_sr_kwargs_reach_the_block() -> None:
    model = create_model(
        "cifar_resnet18",
        num_classes=10,
        width=0.25,
        sr_stage=4,
        sr_kwargs={"act_layer": torch.nn.ReLU, "size_policy": "interpolate"},
    )
    assert isinstance(model.layer4.sr.act, torch.nn.ReLU)
    assert model(torch.randn(1, 3, 48, 48)).shape == (1, 10)
