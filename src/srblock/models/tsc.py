"""FCN and ResNet for time-series classification (Wang, Yan & Oates, IJCNN 2017), as 1-D networks with named stages.

The layers follow the Keras models of the deep-learning review's code (Ismail Fawaz et al., DMKD 2019;
``hfawaz/dl-4-tsc``, ``classifiers/fcn.py`` and ``classifiers/resnet.py``), which reported the accuracies we compare
against: "same"-padded convolutions with bias (for an even kernel the extra step of padding goes to the right, as in
Keras), BatchNorm with Keras' defaults (momentum 0.99, i.e. PyTorch's 0.01, eps 1e-3),
Glorot-uniform kernels and zero biases (Keras' default init), global average pooling over time and a linear
classifier (the softmax is in the loss).

* FCN: three conv blocks (128 filters kernel 8, 256 kernel 5, 128 kernel 3; conv, BN, ReLU): stages
  ``block1..block3``, outputs ``128 x L``, ``256 x L``, ``128 x L``.
* ResNet: three residual blocks (64, 128, 128 filters; kernels 8, 5, 3 in each; the shortcut is a 1x1 conv + BN
  where the width changes, a BN alone in the third block): stages ``block1..block3``, outputs ``64/128/128 x L``.

No layer changes the length L, so an SR block after any stage holds memories ``P x C x L`` of the input's length and,
with the default ``size_policy="strict"``, accepts series of exactly that length (the recipes give it as
``model.input_size``); ``size_policy="interpolate"`` takes other lengths by pooling the squeezed map to L for the
routing and resizing the recalled memory linearly to the input's length.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_model

__all__ = ["FCN1d", "ResNet1d", "tsc_fcn", "tsc_resnet"]

TSC_STAGES = ("block1", "block2", "block3")
TSC_SIZE = (1, 128)  # (C, L) an SR block is sized for when a recipe gives no model.input_size


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int) -> list[nn.Module]:
    """Keras' "same" conv + BN. An even kernel gets an explicit pad (the extra step on the right): PyTorch's
    ``padding="same"`` does the same but warns about the copy it makes."""
    left, right = (kernel_size - 1) // 2, kernel_size // 2
    pad = [nn.ZeroPad1d((left, right))] if left != right else []
    return [
        *pad,
        nn.Conv1d(in_channels, out_channels, kernel_size, padding=left if left == right else 0),
        nn.BatchNorm1d(out_channels, eps=1e-3, momentum=0.01),
    ]


def _keras_init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


class _Classifier1d(nn.Module):
    """Stages ``block1..block3``, then global average pooling over time and a linear classifier (both networks)."""

    def _add_head(self, features: int, num_classes: int) -> None:
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(features, num_classes)
        _keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(x)))
        return self.fc(self.pool(x).flatten(1))


class FCN1d(_Classifier1d):
    """Fully convolutional network of Wang et al. (2017): 3 conv-BN-ReLU blocks, global average pooling, linear."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, widths: tuple[int, int, int] = (128, 256, 128)):
        super().__init__()
        kernels = (8, 5, 3)
        channels = (in_channels, *widths)
        for i, k in enumerate(kernels):
            self.add_module(f"block{i + 1}", nn.Sequential(*_conv_bn(channels[i], channels[i + 1], k), nn.ReLU()))
        self._add_head(widths[-1], num_classes)


class ResidualBlock1d(nn.Module):
    """conv8-BN-ReLU, conv5-BN-ReLU, conv3-BN, plus the shortcut (1x1 conv + BN, or BN alone), then ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn(in_channels, out_channels, 8),
            nn.ReLU(),
            *_conv_bn(out_channels, out_channels, 5),
            nn.ReLU(),
            *_conv_bn(out_channels, out_channels, 3),
        )
        # dl-4-tsc: "no need to expand channels because they are equal" -> a BN on the identity
        self.shortcut = (
            nn.BatchNorm1d(out_channels, eps=1e-3, momentum=0.01)
            if in_channels == out_channels
            else nn.Sequential(*_conv_bn(in_channels, out_channels, 1))
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet1d(_Classifier1d):
    """Residual network of Wang et al. (2017): 3 residual blocks, global average pooling, linear."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, widths: tuple[int, int, int] = (64, 128, 128)):
        super().__init__()
        channels = (in_channels, *widths)
        for i in range(3):
            self.add_module(f"block{i + 1}", ResidualBlock1d(channels[i], channels[i + 1]))
        self._add_head(widths[-1], num_classes)


def _widths(base: tuple[int, int, int], width: float) -> tuple[int, int, int]:
    if not width > 0:
        raise ValueError(f"width must be positive, got {width!r}")
    return tuple(max(1, round(w * width)) for w in base)  # type: ignore[return-value]


@register_model(input_size=TSC_SIZE, stages=TSC_STAGES, num_classes=2)
def tsc_fcn(*, num_classes: int = 2, in_channels: int = 1, width: float = 1.0) -> FCN1d:
    """FCN for time series (Wang et al. 2017), 1-D; ``in_channels`` = the series' channels."""
    return FCN1d(in_channels, num_classes, _widths((128, 256, 128), width))


@register_model(input_size=TSC_SIZE, stages=TSC_STAGES, num_classes=2)
def tsc_resnet(*, num_classes: int = 2, in_channels: int = 1, width: float = 1.0) -> ResNet1d:
    """ResNet for time series (Wang et al. 2017), 1-D; ``in_channels`` = the series' channels."""
    return ResNet1d(in_channels, num_classes, _widths((64, 128, 128), width))
