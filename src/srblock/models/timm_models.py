"""The zoo's image classifiers in timm: ``timm.create_model("srblock_<name>", ...)``, ``features_only`` included.

The 1-D time-series models (``tsc_*``) are not registered: timm's conventions (``in_chans``, image mean/std,
strides) are for images.

timm finds models only in its own registry (it reads no entry points), so importing this module is what registers
them; ``import srblock`` and ``import srblock.models`` never import timm.

>>> import timm
>>> import srblock.models.timm_models
>>> model = timm.create_model("srblock_cifar_resnet18", sr_stage=3, num_memories=10, width=0.25)
>>> model.layer3.sr.memory.shape
torch.Size([10, 64, 8, 8])
>>> features = timm.create_model("srblock_cifar_resnet18", features_only=True, out_indices=(2, 3), width=0.25)
>>> features.feature_info.channels(), features.feature_info.reduction()
([32, 64], [2, 4])

Every keyword of :func:`srblock.models.create_model` passes through (``sr_stage``, ``num_memories``, ``hidden``,
``regularizer``, ``attention``, ``width``, torchvision's ``weights=`` ...). timm's own conventions hold:
``num_classes=0`` removes the classifier (the output is the pooled features), ``features_only=True`` returns the
stem and stage outputs (``out_indices``, ``feature_cls="fx"`` for timm's FX extractor), and ``pretrained=True``
loads the file given by ``pretrained_cfg_overlay=dict(file=...)`` strictly, e.g. the ``model.safetensors`` that
``srblock export`` writes (no srblock weights are published, so there is nothing to download).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from .._extras import requires_extra
from ..data.transforms import CIFAR_MEAN, CIFAR_STD  # what the CIFAR recipes normalise with, for timm's data config
from ..layers.sr import SRBlockNd
from .registry import ModelEntry, create_model, get_model_entry, list_models
from .surgery import _trace_output

with requires_extra("timm", "srblock's models in timm (srblock.models.timm_models)"):
    from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
    from timm.layers import register_notrace_module
    from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

__all__: list[str] = []  # timm's register_model appends each srblock_* name

PREFIX = "srblock_"


class _Layout(NamedTuple):
    """What timm needs and the registry does not record, per family of builders."""

    stem: tuple[str, ...]  # feature taps before the stages (timm's ResNets start with the stem's activation)
    first_conv: str
    classifier: str


_FAMILIES: dict[str, _Layout] = {
    "srblock.models.resnet": _Layout(("relu",), "conv1", "fc"),
    "srblock.models.cifar_resnet": _Layout(("relu",), "conv1", "fc"),
    "srblock.models.cifar_vgg": _Layout((), "features.block1.0", "classifier.6"),
    "srblock.models.airbench": _Layout(("act",), "whiten", "fc"),
}


def _feature_info(model: nn.Module, taps: Sequence[str], input_size: Sequence[int]) -> list[dict[str, Any]]:
    """timm's ``feature_info``: channels and stride of each tap, read from a dry run at ``input_size``."""
    info = []
    for tap in taps:
        shape = _trace_output(model, model.get_submodule(tap), input_size)[0]
        info.append({"num_chs": shape[1], "reduction": input_size[-1] // shape[-1], "module": tap})
    return info


def _build(entry: ModelEntry, layout: _Layout, *, num_classes: int, **kwargs: Any) -> nn.Module:
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)  # timm's create_model(..., device=...)
    headless = num_classes == 0
    with torch.device(device) if device is not None else contextlib.nullcontext():
        model = create_model(entry.name, num_classes=None if headless else num_classes, **kwargs)
    if dtype is not None:
        model.to(dtype)
    if headless:  # timm's convention: no classifier, the model returns its pooled features
        model.set_submodule(layout.classifier, nn.Identity())
    model.num_classes = num_classes
    input_size = kwargs.get("input_size") or entry.input_size
    model.feature_info = _feature_info(model, (*layout.stem, *entry.stages), input_size)
    return model


def _pretrained_cfg(entry: ModelEntry, layout: _Layout) -> dict[str, Any]:
    cifar = entry.input_size[-1] == 32
    return {
        "url": "",  # no published weights: pretrained=True needs pretrained_cfg_overlay=dict(file=...)
        "num_classes": entry.num_classes,
        "input_size": entry.input_size,
        "pool_size": None,
        "crop_pct": 1.0 if cifar else 0.875,
        "interpolation": "bilinear",
        "mean": CIFAR_MEAN if cifar else IMAGENET_DEFAULT_MEAN,
        "std": CIFAR_STD if cifar else IMAGENET_DEFAULT_STD,
        "first_conv": layout.first_conv,
        "classifier": layout.classifier,
        "paper_ids": "arXiv:2410.00823",
        "license": "mit",
    }


def _entrypoint(entry: ModelEntry, layout: _Layout) -> Callable[..., nn.Module]:
    variant = PREFIX + entry.name

    def build(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        in_chans = kwargs.pop("in_chans", 3)
        if in_chans != 3:
            raise ValueError(f"{variant} takes 3-channel images, got in_chans={in_chans}")
        taps = (*layout.stem, *entry.stages)
        return build_model_with_cfg(
            functools.partial(_build, entry, layout),
            variant,
            pretrained,
            # timm's feature wrapper runs the model's top-level children in order; taps inside a Sequential
            # (VGG's features.blockN) need that Sequential unrolled, while a ResNet's stages are children already.
            # By default every tap is returned (timm's own default assumes five).
            feature_cfg={"flatten_sequential": any("." in tap for tap in taps), "out_indices": tuple(range(len(taps)))},
            kwargs_filter=("in_chans",),
            **kwargs,
        )

    build.__name__ = build.__qualname__ = variant
    build.__module__ = __name__
    build.__doc__ = f"{entry.description} Through timm; keywords as srblock.models.create_model."
    return build


def _register() -> None:
    zoo = [(e, _FAMILIES.get(e.builder.__module__)) for e in map(get_model_entry, list_models())]
    zoo = [(e, layout) for e, layout in zoo if layout is not None]
    # timm reads the default_cfgs of an entrypoint's module when register_model sees the entrypoint
    globals()["default_cfgs"] = generate_default_cfgs({PREFIX + e.name: _pretrained_cfg(e, lay) for e, lay in zoo})
    for entry, layout in zoo:
        fn = register_model(_entrypoint(entry, layout))
        globals()[fn.__name__] = fn


_register()
# timm's FX feature extraction (feature_cls="fx") traces models with the block kept whole, as one call, the way timm
# registers its own layers whose forward checks shapes: the block's input checks keep running on real tensors.
register_notrace_module(SRBlockNd)
