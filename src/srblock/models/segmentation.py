"""The paper's Cityscapes networks: torchvision's DeepLabV3-ResNet50 and FCN-ResNet50 at output stride 8.

PAPER.md §2-§3: a ResNet50 backbone with dilated ``layer3``/``layer4`` (output stride 8, torchvision's
``replace_stride_with_dilation=[False, True, True]``), the decode head (ASPP with rates 12/24/36 for DeepLabV3, an
FCN head for FCN) and an auxiliary FCN head on ``layer3`` (loss weight 0.4, applied by the task). With
``sr_stage=3`` one SR block goes after backbone ``layer3`` (C=1024, H×W = crop/8: 1024×64×128 for a 512×1024 crop).
The block is appended to ``backbone.layer3`` by :func:`srblock.models.insert_sr`, so the auxiliary head sees the
stage output *after* the SR block, as it would with the block inside the backbone's stage 3 [ours].

Both register in the model zoo; the memory is sized by ``input_size`` (3, crop H, crop W):

>>> from srblock.models import create_model
>>> model = create_model("deeplabv3_resnet50", num_classes=19, sr_stage=3, num_memories=2, hidden=16,
...                      input_size=(3, 32, 64))
>>> model.backbone.layer3.sr.memory.shape
torch.Size([2, 1024, 4, 8])
>>> model.eval()(torch.randn(1, 3, 32, 64))["out"].shape
torch.Size([1, 19, 32, 64])

ImageNet-pretrained backbone weights load from a file or URL with :func:`load_segmentation_backbone`
(``backbone_weights=``), or from torchvision with ``weights_backbone=`` / ``weights=`` (torchvision's names), which
download only when asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import resnet50
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation.deeplabv3 import ASPP, DeepLabHead, DeepLabV3
from torchvision.models.segmentation.fcn import FCN, FCNHead

from .registry import register_model
from .weights import LoadReport, load_backbone_weights, load_torchvision_weights, read_state_dict

__all__ = [
    "ASPP_RATES",
    "CITYSCAPES_CROP",
    "SEGMENTATION_STAGES",
    "deeplabv3_resnet50",
    "fcn_resnet50",
    "load_segmentation_backbone",
]

#: The paper's training crop (H, W) on Cityscapes; the SR memory is sized from the crop (PAPER.md §3).
CITYSCAPES_CROP = (512, 1024)
#: ASPP dilation rates of the paper's DeepLabV3 (PAPER.md §3), set explicitly rather than relying on a default.
ASPP_RATES = (12, 24, 36)
#: Stage M of the paper = backbone ``layerM``; the SR block goes after stage 3 on Cityscapes (PAPER.md §2).
SEGMENTATION_STAGES = ("backbone.layer1", "backbone.layer2", "backbone.layer3", "backbone.layer4")


def _backbone(aux: bool) -> IntermediateLayerGetter:
    """torchvision's ResNet50 at output stride 8 (dilated layer3/layer4), returning ``out`` (and ``aux``)."""
    resnet = resnet50(weights=None, replace_stride_with_dilation=[False, True, True])
    return_layers = {"layer4": "out", "layer3": "aux"} if aux else {"layer4": "out"}
    return IntermediateLayerGetter(resnet, return_layers=return_layers)


def _set_dropout(head: nn.Module, p: float) -> None:
    for m in head.modules():
        if isinstance(m, nn.Dropout):
            m.p = p


def _finish(
    model: nn.Module,
    arch: str,
    aux_weight: float,
    backbone_weights: str | Path | None,
    weights: Any,
    weights_backbone: Any,
    progress: bool,
) -> nn.Module:
    model.aux_weight = float(aux_weight)  # read by the segmentation task's loss
    if weights is not None and (backbone_weights is not None or weights_backbone is not None):
        raise ValueError(
            f"weights={weights!r} hold the whole network, backbone included; pass either weights or backbone weights"
        )
    if backbone_weights is not None and weights_backbone is not None:
        raise ValueError("pass backbone_weights (a file or URL) or weights_backbone (torchvision's enum), not both")
    if weights is not None:  # torchvision's checkpoint has an auxiliary head; a model built without one skips it
        ignore = ("aux_classifier.",) if model.aux_classifier is None else ()
        load_torchvision_weights(model, arch, weights, progress=progress, ignore=ignore)
    if weights_backbone is not None:
        load_torchvision_weights(model.backbone, "resnet50", weights_backbone, progress=progress, ignore=("fc.",))
    if backbone_weights is not None:
        load_segmentation_backbone(model, backbone_weights)
    return model


def _reject(options: Mapping[str, Any]) -> None:
    for key, value in options.items():
        if value is not None and not (key == "width" and value == 1.0):
            raise ValueError(
                f"{key}={value!r} is not offered for the segmentation models (the paper uses none); "
                "build the model and add it with srblock.models surgery if you need it"
            )


@register_model(input_size=(3, *CITYSCAPES_CROP), stages=SEGMENTATION_STAGES, num_classes=19)
def deeplabv3_resnet50(
    num_classes: int = 19,
    *,
    aux_weight: float = 0.4,
    backbone_weights: str | Path | None = None,
    weights: Any = None,
    weights_backbone: Any = None,
    progress: bool = True,
    atrous_rates: Sequence[int] = ASPP_RATES,
    head_dropout: float = 0.1,
    regularizer: str | None = None,
    drop_rate: float | None = None,
    attention: str | None = None,
    width: float = 1.0,
) -> DeepLabV3:
    """DeepLabV3-ResNet50, output stride 8, ASPP 12/24/36, auxiliary FCN head on layer3 (torchvision's classes).

    ``head_dropout`` (0.1, the paper's framework) replaces torchvision's 0.5 dropout after the ASPP projection; the
    auxiliary FCN head keeps its 0.1. ``aux_weight`` (0.4, PAPER.md §3) weights the auxiliary head's loss in training
    (stored as ``model.aux_weight``); 0 builds no auxiliary head. ``backbone_weights``: a file or URL with ImageNet
    ResNet50 weights (a torchvision ``resnet50`` state dict) loaded into the backbone, see
    :func:`load_segmentation_backbone`; ``None`` leaves torchvision's random init. ``weights`` (the whole
    network, e.g. ``"COCO_WITH_VOC_LABELS_V1"``) and ``weights_backbone`` (e.g. ``"IMAGENET1K_V1"``) are
    torchvision's, downloaded by torchvision and loaded with :func:`srblock.models.load_torchvision_weights`; a
    head for another number of classes keeps its fresh init.
    """
    _reject({"regularizer": regularizer, "drop_rate": drop_rate, "attention": attention, "width": width})
    classifier = DeepLabHead(2048, num_classes, atrous_rates=tuple(atrous_rates))
    if not isinstance(classifier[0], ASPP):  # pragma: no cover - guards a torchvision layout change
        raise RuntimeError("torchvision's DeepLabHead no longer starts with ASPP; update deeplabv3_resnet50")
    _set_dropout(classifier, head_dropout)
    aux = FCNHead(1024, num_classes) if aux_weight else None
    model = DeepLabV3(_backbone(bool(aux_weight)), classifier, aux)
    return _finish(model, "deeplabv3_resnet50", aux_weight, backbone_weights, weights, weights_backbone, progress)


@register_model(input_size=(3, *CITYSCAPES_CROP), stages=SEGMENTATION_STAGES, num_classes=19)
def fcn_resnet50(
    num_classes: int = 19,
    *,
    aux_weight: float = 0.4,
    backbone_weights: str | Path | None = None,
    weights: Any = None,
    weights_backbone: Any = None,
    progress: bool = True,
    head_dropout: float = 0.1,
    regularizer: str | None = None,
    drop_rate: float | None = None,
    attention: str | None = None,
    width: float = 1.0,
) -> FCN:
    """FCN-ResNet50, output stride 8, FCN head on layer4, auxiliary FCN head on layer3 (torchvision's classes).

    Options as for :func:`deeplabv3_resnet50`.
    """
    _reject({"regularizer": regularizer, "drop_rate": drop_rate, "attention": attention, "width": width})
    classifier = FCNHead(2048, num_classes)
    _set_dropout(classifier, head_dropout)
    aux = FCNHead(1024, num_classes) if aux_weight else None
    model = FCN(_backbone(bool(aux_weight)), classifier, aux)
    return _finish(model, "fcn_resnet50", aux_weight, backbone_weights, weights, weights_backbone, progress)


def load_segmentation_backbone(model: nn.Module, source: str | Path | Mapping[str, torch.Tensor]) -> LoadReport:
    """Load ImageNet ResNet50 weights (a torchvision ``resnet50`` state dict: a file, a URL or a dict) into
    ``model.backbone``, read by :func:`srblock.models.weights.read_state_dict`.

    The classifier ``fc.*`` of the ImageNet checkpoint has no place in a segmentation backbone and is dropped;
    everything else must match, except the SR block's own parameters (they stay as initialised). Goes through
    :func:`srblock.models.load_backbone_weights` and returns its report.
    """
    if isinstance(source, (str, Path)) and urlparse(str(source)).scheme not in ("http", "https", "file"):
        path = Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"backbone weights not found at {path}; save a torchvision resnet50 state dict there, e.g. "
                "torch.save(torchvision.models.resnet50(weights='IMAGENET1K_V1').state_dict(), path), "
                "or pass weights_backbone='IMAGENET1K_V1'"
            )
        source = path
    state, _ = read_state_dict(source)
    state = {k.removeprefix("backbone."): v for k, v in state.items() if not k.startswith("fc.")}
    return load_backbone_weights(model.backbone, state)
