"""ImageNet ResNets in torchvision's layout (``resnet18/34/50/101``), with the paper's options (PAPER.md §2).

They are built by torchvision's own ``ResNet`` constructor, so torchvision checkpoints load unchanged: pass
torchvision's ``weights=`` (e.g. ``"IMAGENET1K_V2"``; downloaded by torchvision only when given) or load a file or
URL with :func:`srblock.models.load_backbone_weights`. :func:`finish_resnet` adds the regularizer and is shared with
the CIFAR ResNets, and SE/CBAM come in through the residual block class, so every option is written once for both
families.
"""

from __future__ import annotations

from typing import Any

from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from .attention import attention_block
from .registry import register_model
from .regularizers import add_regularizer
from .weights import load_torchvision_weights

__all__ = ["RESNET_STAGES", "finish_resnet", "imagenet_resnet", "resnet18", "resnet34", "resnet50", "resnet101"]

# Stage M of the paper = torchvision's layerM (PAPER.md §2).
RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")
IMAGENET_SIZE = (3, 224, 224)


def finish_resnet(model: ResNet, *, regularizer: str | None, drop_rate: float | None, dropblock_size: int) -> ResNet:
    """Add the regularizer of PAPER.md §2 to a torchvision-layout ResNet (stages 3-4 or before ``fc``)."""
    return add_regularizer(
        model, regularizer, p=drop_rate, stages=RESNET_STAGES[2:], pool="avgpool", dropblock_size=dropblock_size
    )


def imagenet_resnet(
    block: type[BasicBlock | Bottleneck],
    layers: list[int],
    *,
    arch: str,
    num_classes: int = 1000,
    attention: str | None = None,
    regularizer: str | None = None,
    drop_rate: float | None = None,
    dropblock_size: int = 7,
    weights: Any = None,
    progress: bool = True,
    **kwargs: Any,
) -> ResNet:
    """torchvision's ``ResNet(block, layers)`` (its init, 7×7 stem, max-pool) plus SE/CBAM and a regularizer.

    ``weights``: torchvision's weights for ``arch`` (an enum member or its name), loaded with
    :func:`srblock.models.load_torchvision_weights` (a classifier for another ``num_classes`` keeps its fresh init).
    ``kwargs`` go to torchvision's constructor (``zero_init_residual``, ``replace_stride_with_dilation``, ...).
    """
    if "width" in kwargs:
        raise ValueError("width scaling is offered for the CIFAR nets only; the ImageNet ResNets keep torchvision's")
    model = ResNet(attention_block(block, attention), layers, num_classes=num_classes, **kwargs)
    if weights is not None:
        load_torchvision_weights(model, arch, weights, progress=progress)
    return finish_resnet(model, regularizer=regularizer, drop_rate=drop_rate, dropblock_size=dropblock_size)


@register_model(input_size=IMAGENET_SIZE, stages=RESNET_STAGES)
def resnet18(**kwargs: Any) -> ResNet:
    """ResNet18, torchvision ImageNet layout (224² input)."""
    return imagenet_resnet(BasicBlock, [2, 2, 2, 2], arch="resnet18", **kwargs)


@register_model(input_size=IMAGENET_SIZE, stages=RESNET_STAGES)
def resnet34(**kwargs: Any) -> ResNet:
    """ResNet34, torchvision ImageNet layout (224² input)."""
    return imagenet_resnet(BasicBlock, [3, 4, 6, 3], arch="resnet34", **kwargs)


@register_model(input_size=IMAGENET_SIZE, stages=RESNET_STAGES)
def resnet50(**kwargs: Any) -> ResNet:
    """ResNet50, torchvision ImageNet layout (224² input); the paper's ImageNet network (SR at M=3: 1024×14×14)."""
    return imagenet_resnet(Bottleneck, [3, 4, 6, 3], arch="resnet50", **kwargs)


@register_model(input_size=IMAGENET_SIZE, stages=RESNET_STAGES)
def resnet101(**kwargs: Any) -> ResNet:
    """ResNet101, torchvision ImageNet layout (224² input)."""
    return imagenet_resnet(Bottleneck, [3, 4, 23, 3], arch="resnet101", **kwargs)
