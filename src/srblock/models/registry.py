"""The model registry: every network of the paper by name, with the SR block placed by stage index (PAPER.md §2).

A builder registers itself with :func:`register_model`, saying which input size the network is made for and which
submodules are its stages; :func:`create_model` builds it and, when asked, puts an SR block after stage ``M`` (or
one after each of several stages) with C, H, W measured by a dry run at that input size (nothing is hard-coded per
network).
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from .surgery import DEFAULT_HIDDEN, DEFAULT_NUM_MEMORIES, insert_sr

__all__ = [
    "INIT_ONLY_KEYS",
    "ModelEntry",
    "create_model",
    "get_model_entry",
    "list_models",
    "model_from_config",
    "register_model",
]

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ModelEntry:
    """A registered network: its builder, the input (C, H, W) and classes it is made for, its stage module names."""

    name: str
    builder: Callable[..., nn.Module]
    input_size: tuple[int, ...]
    stages: tuple[str, ...]
    description: str = ""
    num_classes: int = 1000


_MODELS: dict[str, ModelEntry] = {}

#: Keywords of :func:`create_model` that only choose a network's initial weights (torchvision's ``weights=``, an
#: ImageNet backbone file). A trained network's own weights supersede them: rebuilding it to load those must not
#: download or read anything.
INIT_ONLY_KEYS = ("weights", "weights_backbone", "backbone_weights")


def register_model(
    fn: Builder | None = None,
    *,
    name: str | None = None,
    input_size: Sequence[int] = (3, 224, 224),
    stages: Sequence[str] = (),
    num_classes: int = 1000,
) -> Builder | Callable[[Builder], Builder]:
    """Register a model builder under ``name`` (default: the function's name); usable bare or with arguments.

    The builder is called as ``builder(num_classes=..., **options)``, where the options are the non-default ones
    of :func:`create_model` (``regularizer``, ``drop_rate``, ``attention``, ``width``) plus any extra keywords; a
    builder raises ``ValueError`` for options it does not support. ``stages`` are the qualified names of the
    submodules whose outputs are stages 1..N (the SR block's integration points M); ``input_size`` is the native
    input (C, H, W) at which the SR block's memory is sized; ``num_classes`` the classes of the dataset the network
    is made for (:func:`create_model`'s default, e.g. 10 for the CIFAR nets).

    >>> @register_model(name="tiny_doc_net", input_size=(3, 8, 8), stages=("body",))
    ... def tiny(num_classes: int) -> nn.Module:
    ...     return nn.Sequential()
    >>> "tiny_doc_net" in list_models()
    True
    >>> _ = _MODELS.pop("tiny_doc_net")
    """

    def decorator(builder: Builder) -> Builder:
        key = name or builder.__name__
        if key in _MODELS:
            raise ValueError(f"a model named {key!r} is already registered (by {_MODELS[key].builder.__module__})")
        doc = (builder.__doc__ or "").strip().splitlines()
        _MODELS[key] = ModelEntry(key, builder, tuple(input_size), tuple(stages), doc[0] if doc else "", num_classes)
        return builder

    return decorator(fn) if fn is not None else decorator


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models matching the shell-style ``pattern``, e.g. ``list_models("cifar_*")``."""
    return sorted(n for n in _MODELS if fnmatch.fnmatchcase(n, pattern))


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; an unknown name is a ``ValueError`` listing the registered ones."""
    if name not in _MODELS:
        close = difflib.get_close_matches(str(name), _MODELS, n=3)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown model {name!r}{hint} Registered models: {', '.join(list_models())}")
    return _MODELS[name]


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    sr_stage: int | Sequence[int] | None = None,
    num_memories: int = DEFAULT_NUM_MEMORIES,
    hidden: int = DEFAULT_HIDDEN,
    sr_kwargs: dict[str, Any] | None = None,
    regularizer: str | None = None,
    drop_rate: float | None = None,
    attention: str | None = None,
    input_size: Sequence[int] | None = None,
    width: float = 1.0,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered network, optionally with an SR block after stage ``sr_stage`` (M, 1-based) or after each
    of several stages.

    Args:
        name: a name of :func:`list_models`, e.g. ``"cifar_resnet18"`` or ``"resnet50"``.
        num_classes: outputs of the classifier (default: the classes the network is made for, see
            :func:`register_model`: 10 for the CIFAR nets, 1000 for the ImageNet ResNets).
        sr_stage: M, the stage whose output gets the SR block (``None``: no SR block), or a sequence of stages, each
            getting its own block (e.g. ``(2, 3, 4)``; every block with the same P, U and options). A block is sized
            for its stage's output at the native input size (CIFAR 32², ImageNet 224²) or at ``input_size``, unless
            ``sr_kwargs`` gives a coarser ``feat_size`` (one size for every block, see :func:`insert_sr`).
        num_memories: P, number of memory tensors. hidden: U, hidden width of the block's FCN.
        sr_kwargs: further SR block options (``act_layer``, ``memory_init``, ``memory_std``, ``size_policy``,
            ``logit_scale``, ``feat_size``).
        regularizer: ``None``, ``"dropout"``, ``"dropout2d"`` or ``"dropblock"`` at the places of PAPER.md §2,
            always before the SR block on the same stage output. drop_rate: its rate (default per PAPER.md §2).
        attention: ``None``, ``"se"``, ``"cbam"`` or ``"eca"`` inside every residual block (ResNets; airbench: on the
            output of each of its blocks; VGG: none).
        input_size: (C, H, W) to size the SR block for, instead of the model's native input size.
        width: multiplies the channel widths of the CIFAR nets (e.g. 0.25 for quick CPU runs; 1 is the paper's).
        **kwargs: passed to the builder, e.g. ``zero_init_residual`` for the ResNets, or torchvision's ``weights=``
            (an enum member such as ``ResNet50_Weights.IMAGENET1K_V2`` or its name, ``"DEFAULT"``) for the
            torchvision-layout ImageNet ResNets and segmentation models: loaded before the SR block goes in, so
            the block starts as the identity on top of the pretrained network.

    >>> from srblock.models import create_model
    >>> model = create_model("cifar_resnet18", num_classes=10, sr_stage=3, num_memories=10)
    >>> model.layer3.sr.memory.shape
    torch.Size([10, 256, 8, 8])
    >>> model = create_model("cifar_resnet18", sr_stage=[3, 4])
    >>> model.layer3.sr.memory.shape, model.layer4.sr.memory.shape
    (torch.Size([2, 256, 8, 8]), torch.Size([2, 512, 4, 4]))
    """
    entry = get_model_entry(name)
    if drop_rate is not None and regularizer is None:  # e.g. timm's drop_rate=...: it would be silently unused
        raise ValueError(
            f"drop_rate={drop_rate!r} is the rate of a regularizer; choose one too: regularizer='dropout' (before "
            "the classifier), 'dropout2d' or 'dropblock'"
        )
    options = {"regularizer": regularizer, "drop_rate": drop_rate, "attention": attention}
    options = {k: v for k, v in options.items() if v is not None}
    if width != 1.0:
        options["width"] = width
    stages = _sr_stages(sr_stage, name, len(entry.stages))  # checked before building: a typo should not cost a
    num_classes = entry.num_classes if num_classes is None else num_classes  # ResNet101's init
    model = entry.builder(num_classes=num_classes, **options, **kwargs)
    for stage in stages:
        insert_sr(
            model,
            entry.stages[stage - 1],
            input_size=tuple(input_size) if input_size is not None else entry.input_size,
            num_memories=num_memories,
            hidden=hidden,
            **(sr_kwargs or {}),
        )
    return model


def _sr_stages(sr_stage: Any, name: str, count: int) -> list[int]:
    """``sr_stage`` (None, one stage or a sequence of them) as a sorted list of distinct valid stages."""
    valid = list(range(1, count + 1))
    if sr_stage is None:
        return []
    stages = list(sr_stage) if isinstance(sr_stage, (list, tuple)) else [sr_stage]
    bad = [s for s in stages if isinstance(s, bool) or s not in valid]
    if bad or not stages or len(set(stages)) != len(stages):
        raise ValueError(
            f"sr_stage must be one of {valid} (the stages of {name}), a list of distinct ones or None, got {sr_stage!r}"
        )
    return sorted(stages)


def model_from_config(section: Mapping[str, Any]) -> nn.Module:
    """Build the network a recipe's ``model`` section describes: ``name`` is the registry name, ``sr`` the block's
    further options (``sr_kwargs``), every other key a keyword of :func:`create_model`.

    >>> model = model_from_config({"name": "cifar_resnet18", "num_classes": 10, "sr_stage": 3, "width": 0.25})
    >>> model.layer3.sr.memory.shape
    torch.Size([2, 64, 8, 8])
    """
    options = dict(section)
    if "name" not in options:
        raise ValueError(f"a model section needs a 'name' (a registered model), got keys {sorted(options)}")
    name = options.pop("name")
    sr_kwargs = options.pop("sr", None) or None
    if options.get("input_size") is not None:
        options["input_size"] = tuple(options["input_size"])
    return create_model(name, sr_kwargs=sr_kwargs, **options)
