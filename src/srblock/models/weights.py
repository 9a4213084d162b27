"""Load a plain (non-SR) checkpoint into a model with SR blocks, and say exactly what was and was not loaded.

The number-one complaint of users of SE/CBAM repositories is a pretrained checkpoint that silently half-loads
(``strict=False``) or does not load at all (``strict=True``) once a block is added. Here the only keys allowed to be
missing are those of the SR blocks (which start as the identity anyway) and, when asked, a classifier head whose
number of outputs differs; anything else is an error that lists the offending keys.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from ..layers.sr import find_sr_blocks

__all__ = ["LoadReport", "load_backbone_weights", "load_torchvision_weights", "read_state_dict"]

_log = logging.getLogger(__name__)

_WRAPPER_KEYS = ("model", "state_dict", "model_state_dict")
_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel and torch.compile wrappers


@dataclass
class LoadReport:
    """What :func:`load_backbone_weights` did: tensors loaded, SR tensors left at init, head tensors skipped."""

    source: str
    loaded: list[str] = field(default_factory=list)
    missing_sr: list[str] = field(default_factory=list)
    skipped_head: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors from {self.source}"]
        if self.missing_sr:
            lines.append(f"  SR block tensors kept at init ({len(self.missing_sr)}): {', '.join(self.missing_sr)}")
        for key, (theirs, ours) in self.skipped_head.items():
            lines.append(f"  head tensor skipped, shape {list(theirs)} in the checkpoint vs {list(ours)}: {key}")
        return "\n".join(lines)


def _load_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError as err:  # the `hub` extra brings safetensors
        raise ImportError(f"reading {path} needs safetensors: pip install 'srblock[hub]'") from err
    return load_file(path, device="cpu")


def _download(url: str) -> dict[str, Any]:
    """A state dict from a URL, cached in torch.hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``)."""
    if not urlparse(url).path.endswith(".safetensors"):
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", weights_only=True)
    # torch.hub's loader reads torch.save files only: fetch a .safetensors into the same cache, then read it.
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(cached))  # writes a temporary file, then moves it into place
    return _load_safetensors(cached)


def read_state_dict(source: str | os.PathLike | Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """``(state_dict, name)`` from a file, a URL or a mapping, unwrapped to the bare network's keys.

    The kind of source is explicit: ``http(s)://`` and ``file://`` are URLs (downloaded once into torch.hub's
    cache); a path ending in ``.safetensors`` is read with safetensors; any other path with
    ``torch.load(..., weights_only=True)``. A training checkpoint's ``model``/``state_dict`` entry is taken, and
    the ``module.``/``_orig_mod.`` prefixes of DDP and ``torch.compile`` are stripped.
    """
    if isinstance(source, Mapping):
        state, name = dict(source), "a state dict"
    elif isinstance(source, str) and urlparse(source).scheme in ("http", "https", "file"):
        state, name = _download(source), source
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint file at {str(path)!r}")
        name = str(path)
        if path.suffix == ".safetensors":
            state = _load_safetensors(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{name} holds a {type(state).__name__}, expected a state dict (or a dict with one)")
    for key in _WRAPPER_KEYS:  # a training checkpoint: {"model": state_dict, "optimizer": ..., "epoch": ...}
        if isinstance(state.get(key), Mapping):
            state = dict(state[key])
            break
    for prefix in _PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return dict(state), name


def _is_head_resize(ours: torch.Size, theirs: torch.Size) -> bool:
    # A classifier re-sized for another number of classes differs in its first (output) dimension only.
    return len(ours) == len(theirs) >= 1 and ours[1:] == theirs[1:] and ours[0] != theirs[0]


def load_backbone_weights(
    model: nn.Module,
    source: str | os.PathLike | Mapping[str, torch.Tensor],
    *,
    allow_head_mismatch: bool = False,
) -> LoadReport:
    """Load a checkpoint without SR blocks into ``model`` (with SR blocks), checking that nothing else is missing.

    ``source`` is a file (``.safetensors``, or anything else read with ``torch.load(..., weights_only=True)``: a raw
    state dict or a dict holding one under ``model``/``state_dict``; ``module.`` prefixes of DDP are stripped), an
    ``http(s)://`` or ``file://`` URL (downloaded once into torch.hub's cache, see :func:`read_state_dict`) or a
    state dict. Every tensor of the
    model must be in the checkpoint except the SR blocks' (kept at their identity init) and, if
    ``allow_head_mismatch``, output layers whose number of outputs differs (e.g. ``fc`` for 10 instead of 1000
    classes; they keep their fresh init). Anything else missing, unexpected or of another shape is a ``ValueError``,
    raised before the model is touched.

    >>> import torchvision
    >>> from srblock.models import insert_sr
    >>> plain = torchvision.models.resnet18().state_dict()
    >>> model = torchvision.models.resnet18(num_classes=10)
    >>> _ = insert_sr(model, "layer3")
    >>> report = load_backbone_weights(model, plain, allow_head_mismatch=True)
    >>> len(report.missing_sr), sorted(report.skipped_head)
    (4, ['fc.bias', 'fc.weight'])
    """
    state, name = read_state_dict(source)
    ours = model.state_dict()
    sr_prefixes = tuple(f"{n}." if n else "" for n in find_sr_blocks(model))
    report = LoadReport(source=name)

    shape_errors = []
    for key, value in state.items():
        if key in ours and ours[key].shape != value.shape:
            if allow_head_mismatch and _is_head_resize(ours[key].shape, value.shape):
                report.skipped_head[key] = (tuple(value.shape), tuple(ours[key].shape))
            else:
                shape_errors.append(f"{key}: {list(value.shape)} in the checkpoint vs {list(ours[key].shape)}")
    missing, other_missing = [], []
    for key in ours:
        if key in state or key in report.skipped_head:
            continue
        if key.endswith("num_batches_tracked") and key.replace("num_batches_tracked", "running_mean") in state:
            continue  # old torchvision checkpoints predate this BN buffer; BN fills it in itself
        (missing if sr_prefixes and key.startswith(sr_prefixes) else other_missing).append(key)
    unexpected = [k for k in state if k not in ours]

    problems = []
    if other_missing:
        problems.append(f"missing (not part of an SR block): {', '.join(other_missing)}")
    if unexpected:
        problems.append(f"unexpected (not in the model): {', '.join(unexpected)}")
    if shape_errors:
        hint = "" if allow_head_mismatch else " (pass allow_head_mismatch=True to skip a re-sized classifier head)"
        problems.append(f"shape mismatch{hint}: {'; '.join(shape_errors)}")
    if problems:
        raise ValueError(f"cannot load {name} into {type(model).__name__}:\n  " + "\n  ".join(problems))

    to_load = {k: v for k, v in state.items() if k not in report.skipped_head}
    model.load_state_dict(to_load, strict=False)
    report.loaded = list(to_load)
    report.missing_sr = missing
    return report


def load_torchvision_weights(
    model: nn.Module,
    arch: str,
    weights: Any,
    *,
    progress: bool = True,
    allow_head_mismatch: bool = True,
    ignore: Sequence[str] = (),
) -> LoadReport:
    """Load torchvision's ``weights=`` for the architecture ``arch`` into ``model``, a network in its layout.

    ``weights`` is a member of torchvision's enum for ``arch`` (e.g. ``ResNet50_Weights.IMAGENET1K_V2``) or its
    name (``"IMAGENET1K_V2"``, ``"DEFAULT"``); the file is downloaded once by torchvision (hash-checked) into
    torch.hub's cache. Loading goes through :func:`load_backbone_weights`, so SR blocks already in the model keep
    their init and, with ``allow_head_mismatch`` (the default, as for fine-tuning on another dataset), a classifier
    sized for another number of classes keeps its fresh init; anything else that does not fit is an error.
    ``ignore``: key prefixes of the checkpoint that the model lacks by design (e.g. ``"fc."`` for a backbone).
    """
    from torchvision.models import get_model_weights

    enum = get_model_weights(arch)
    try:
        resolved = enum.verify(weights)
    except KeyError:
        raise ValueError(
            f"unknown weights {weights!r} for {arch}; expected one of {', '.join(enum.__members__)} "
            f"or a member of {enum.__name__}"
        ) from None
    state = resolved.get_state_dict(progress=progress, check_hash=True)
    state = {k: v for k, v in state.items() if not k.startswith(tuple(ignore))}
    report = load_backbone_weights(model, state, allow_head_mismatch=allow_head_mismatch)
    report.source = f"torchvision {resolved!r}"
    _log.info("%s", report)
    return report
