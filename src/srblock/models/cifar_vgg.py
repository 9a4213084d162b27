"""CIFAR VGG16-BN and VGG19-BN of the paper (PAPER.md §2-3).

Five conv blocks (3×3 conv, BN, ReLU, ..., 2×2 max-pool) give block outputs 64×16², 128×8², 256×4², 512×2², 512×1²
for a 32² input; the SR block of integration point M goes after the max-pool of block M. The classifier is
512→512→512→classes with dropout (0.5) only in the FC layers. Convolutions are initialised normal(0, √(2/n)) with
n = k·k·out_channels and zero bias, as in the CIFAR VGG the paper follows; FC layers keep PyTorch's default.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from .registry import register_model
from .regularizers import add_regularizer

__all__ = ["VGG_BLOCKS", "VGG_STAGES", "CifarVGG", "cifar_vgg16_bn", "cifar_vgg19_bn"]

VGG_BLOCKS = {
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
}
VGG_STAGES = tuple(f"features.block{i}" for i in range(1, 6))


class CifarVGG(nn.Module):
    """VGG with batch norm for 32² inputs: ``features.block1..5`` (each ending in a max-pool) and ``classifier``.

    Args:
        blocks: output channels of the convolutions, one tuple per block (see ``VGG_BLOCKS``).
        num_classes: outputs of the classifier.
        width: multiplies every width (convs and the 512-wide FC layers); 1 is the paper's network.
        classifier_dropout: dropout before each hidden FC layer.
    """

    def __init__(
        self,
        blocks: tuple[tuple[int, ...], ...],
        num_classes: int = 10,
        *,
        width: float = 1.0,
        classifier_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if not width > 0:
            raise ValueError(f"width must be positive, got {width!r}")
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        channels = 3
        for i, widths in enumerate(blocks, 1):
            layers: list[nn.Module] = []
            for base in widths:
                out = max(1, round(base * width))
                layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
                channels = out
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            stages[f"block{i}"] = nn.Sequential(*layers)
        self.features = nn.Sequential(stages)
        hidden = max(1, round(512 * width))
        self.classifier = nn.Sequential(
            nn.Dropout(classifier_dropout),
            nn.Linear(channels, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(classifier_dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def cifar_vgg(
    blocks: tuple[tuple[int, ...], ...],
    *,
    num_classes: int = 10,
    regularizer: str | None = None,
    drop_rate: float | None = None,
    attention: str | None = None,
    dropblock_size: int = 3,
    **kwargs: Any,
) -> CifarVGG:
    """A :class:`CifarVGG`; ``dropout2d``/``dropblock`` go on the outputs of blocks 3 and 4 (as on ResNet stages)."""
    if attention is not None:
        raise ValueError(f"attention is for the residual nets only (VGG has no residual blocks), got {attention!r}")
    if regularizer == "dropout":
        raise ValueError(
            "the VGG classifier has dropout built in; set its rate with classifier_dropout=..., "
            "or choose regularizer 'dropout2d' or 'dropblock'"
        )
    model = CifarVGG(blocks, num_classes=num_classes, **kwargs)
    return add_regularizer(
        model, regularizer, p=drop_rate, stages=VGG_STAGES[2:4], pool=None, dropblock_size=dropblock_size
    )


@register_model(input_size=(3, 32, 32), stages=VGG_STAGES, num_classes=10)
def cifar_vgg16_bn(**kwargs: Any) -> CifarVGG:
    """VGG16 with batch norm, CIFAR (32² input, 512-wide classifier)."""
    return cifar_vgg(VGG_BLOCKS["vgg16"], **kwargs)


@register_model(input_size=(3, 32, 32), stages=VGG_STAGES, num_classes=10)
def cifar_vgg19_bn(**kwargs: Any) -> CifarVGG:
    """VGG19 with batch norm, CIFAR (32² input, 512-wide classifier)."""
    return cifar_vgg(VGG_BLOCKS["vgg19"], **kwargs)
