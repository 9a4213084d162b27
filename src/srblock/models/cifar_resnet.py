"""CIFAR ResNets 18/34/50 of the paper: torchvision's ResNet with a CIFAR stem (PAPER.md §2-3).

The stem is one 3×3 stride-1 convolution without max-pool, so a 32² input gives stage outputs 64×32², 128×16²,
256×8², 512×4² (×4 channels with Bottlenecks). The stages are torchvision's (``BasicBlock``/``Bottleneck`` with the
1×1 projection shortcut), which gives the parameter counts of the paper's tables exactly, e.g. 11,220,132 for
ResNet18 with 100 classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from .attention import attention_block
from .registry import register_model
from .resnet import RESNET_STAGES, finish_resnet

__all__ = ["CifarResNet", "cifar_resnet18", "cifar_resnet34", "cifar_resnet50"]

CIFAR_SIZE = (3, 32, 32)


class CifarResNet(ResNet):
    """torchvision's ``ResNet`` (same modules, keys and forward) with a 3×3 stride-1 stem, no max-pool, scalable width.

    Built with torchvision's ``_make_layer``; ``width`` multiplies the stage widths 64, 128, 256, 512 (1 = paper).
    Init [PAPER.md §3]: Kaiming-uniform convolutions (fan-in, ReLU gain), BN weight 1 / bias 0, PyTorch's default
    for the classifier.
    """

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: list[int],
        num_classes: int = 10,
        *,
        width: float = 1.0,
        zero_init_residual: bool = False,
        norm_layer: Callable[[int], nn.Module] | None = None,
    ) -> None:
        if not width > 0:
            raise ValueError(f"width must be positive, got {width!r}")
        nn.Module.__init__(self)  # torchvision's __init__ hard-codes the ImageNet stem and widths; the rest is reused
        widths = [max(1, round(base * width)) for base in (64, 128, 256, 512)]
        self._norm_layer = norm_layer or nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = widths[0], 1, 1, 64
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = self._norm_layer(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(block, widths[0], layers[0])
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3] * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)


def cifar_resnet(
    block: type[BasicBlock | Bottleneck],
    layers: list[int],
    *,
    num_classes: int = 10,
    attention: str | None = None,
    regularizer: str | None = None,
    drop_rate: float | None = None,
    dropblock_size: int = 3,
    **kwargs: Any,
) -> CifarResNet:
    """A :class:`CifarResNet` with SE/CBAM in every residual block and a regularizer, as in PAPER.md §2."""
    model = CifarResNet(attention_block(block, attention), layers, num_classes=num_classes, **kwargs)
    return finish_resnet(model, regularizer=regularizer, drop_rate=drop_rate, dropblock_size=dropblock_size)


@register_model(input_size=CIFAR_SIZE, stages=RESNET_STAGES, num_classes=10)
def cifar_resnet18(**kwargs: Any) -> CifarResNet:
    """ResNet18, CIFAR stem (32² input)."""
    return cifar_resnet(BasicBlock, [2, 2, 2, 2], **kwargs)


@register_model(input_size=CIFAR_SIZE, stages=RESNET_STAGES, num_classes=10)
def cifar_resnet34(**kwargs: Any) -> CifarResNet:
    """ResNet34, CIFAR stem (32² input)."""
    return cifar_resnet(BasicBlock, [3, 4, 6, 3], **kwargs)


@register_model(input_size=CIFAR_SIZE, stages=RESNET_STAGES, num_classes=10)
def cifar_resnet50(**kwargs: Any) -> CifarResNet:
    """ResNet50, CIFAR stem (32² input), standard stage widths up to 2048 (PAPER.md §2)."""
    return cifar_resnet(Bottleneck, [3, 4, 6, 3], **kwargs)
