"""CIFAR VGG16-BN / VGG19-BN: block shapes, SR after block M's max-pool, classifier and init."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from srblock import sr_param_count
from srblock.models import count_sr_params, create_model

BLOCK_OUT = [(64, 16), (128, 8), (256, 4), (512, 2), (512, 1)]


@pytest.mark.parametrize(("name", "convs"), [("cifar_vgg16_bn", 13), ("cifar_vgg19_bn", 16)])
def test_blocks_and_classifier(name: str, convs: int) -> None:
    model = create_model(name, num_classes=100).to("meta")  # shapes only: no compute on the meta device
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == convs
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == convs
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 512), (512, 512), (512, 100)]
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 2  # dropout only in the FC layers
    shapes = []
    for block in model.features:
        block.register_forward_hook(lambda _m, _i, o: shapes.append(tuple(o.shape[1:])))
    assert model(torch.randn(1, 3, 32, 32, device="meta")).shape == (1, 100)
    assert shapes == [(c, s, s) for c, s in BLOCK_OUT]


@pytest.mark.parametrize("sr_stage", [2, 4])
def test_sr_after_maxpool_of_block_m(sr_stage: int) -> None:
    model = create_model("cifar_vgg16_bn", num_classes=10, sr_stage=sr_stage, num_memories=8)
    block = model.features[sr_stage - 1]
    assert isinstance(block[-2], nn.MaxPool2d) and block[-1] is block.sr
    channels, size = BLOCK_OUT[sr_stage - 1]
    assert count_sr_params(model) == sr_param_count(channels, size, hidden=8, num_memories=8)


def test_conv_init_is_normal_sqrt_2_over_n() -> None:
    model = create_model("cifar_vgg19_bn", num_classes=10)
    conv = model.features.block4[0]  # 256 -> 512, n = 9 * 512
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * 512)), rel=0.02)
    assert conv.bias.abs().sum() == 0


def test_regularizers_and_width() -> None:
    model = create_model("cifar_vgg16_bn", num_classes=10, regularizer="dropout2d", sr_stage=3, width=0.25)
    assert list(dict(model.features.block3.named_children()))[-2:] == ["drop", "sr"]
    assert isinstance(model.features.block4.drop, nn.Dropout2d)
    assert model.features.block3.sr.memory.shape == (2, 64, 4, 4)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="classifier_dropout"):
        create_model("cifar_vgg16_bn", num_classes=10, regularizer="dropout")
    with pytest.raises(ValueError, match="residual nets only"):
        create_model("cifar_vgg16_bn", num_classes=10, attention="se")
