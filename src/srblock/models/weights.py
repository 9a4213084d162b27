"""Load a plain (non-SR) checkpoint into a model with SR blocks, and say exactly what was and was not loaded.

The number-one complaint of users of SE/CBAM repositories is a pretrained checkpoint that silently half-loads
(``strict=False``) or does not load at all (``strict=True``) once a block is added. Here the only keys allowed to be
missing are those of the SR blocks (which start as the identity anyway) and, when asked, a classifier head whose
number of outputs differs; anything else is an error that lists the offending keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..layers.sr import find_sr_blocks

__all__ = ["LoadReport", "load_backbone_weights"]

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


def _read(source: str | os.PathLike | Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    if isinstance(source, Mapping):
        state, name = dict(source), "a state dict"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint file at {str(path)!r}")
        state, name = torch.load(path, map_location="cpu", weights_only=True), str(path)
        if not isinstance(state, Mapping):
            raise ValueError(f"{name} holds a {type(state).__name__}, expected a state dict (or a dict with one)")
    for key in _WRAPPER_KEYS:  # a training checkpoint: {"model": state_dict, "optimizer": ..., "epoch": ...}
        if isinstance(state.get(key), Mapping):
            state = dict(state[key])
            break
    for prefix in _PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state, name


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

    ``source`` is a file (read with ``torch.load(..., weights_only=True)``; a raw state dict or a dict holding one
    under ``model``/``state_dict``; ``module.`` prefixes of DDP are stripped) or a state dict. Every tensor of the
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
    state, name = _read(source)
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
