"""The paper's ablation: accuracy of the trained model with its SR blocks removed (PAPER.md §5; the paper's ImageNet
D2D P=10 model lost 0.4 %). The model is copied first, so the caller's model keeps its blocks."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..engine.metrics import topk_correct
from .usage import iter_predictions

__all__ = ["ablation", "evaluate_accuracy", "without_sr"]


def without_sr(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every SR block replaced by ``nn.Identity`` (``srblock.models.remove_sr``)."""
    from ..models import remove_sr

    return remove_sr(copy.deepcopy(model))


def evaluate_accuracy(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    device: torch.device | str | None = None,
    max_images: int | None = None,
    desc: str = "accuracy",
) -> dict[str, Any]:
    """Top-1 / top-5 accuracy in % (eval mode) over ``(images, labels)`` batches (a progress bar ``desc``)."""
    correct = correct5 = total = 0
    for _, target, logits in iter_predictions(model, batches, device=device, max_images=max_images, desc=desc):
        hits1, hits5 = topk_correct(logits, target, ks=(1, 5)).tolist()
        correct, correct5 = correct + int(hits1), correct5 + int(hits5)
        total += len(target)
    nan = float("nan")
    return {
        "acc1": 100.0 * correct / total if total else nan,
        "acc5": 100.0 * correct5 / total if total else nan,
        "num_images": total,
    }


def ablation(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    device: torch.device | str | None = None,
    max_images: int | None = None,
    acc_with_sr: float | None = None,
) -> dict[str, Any]:
    """Accuracy with and without SR on the same batches (which must be re-iterable, e.g. a ``DataLoader``).

    ``acc_with_sr`` skips the pass with SR when it is already known (e.g. from :func:`collect_memory_weights`).
    Returns ``{"acc_sr", "acc_no_sr", "delta_pp" (acc_no_sr - acc_sr, percentage points), "num_images"}``.
    """
    no_sr = evaluate_accuracy(without_sr(model), batches, device=device, max_images=max_images, desc="without SR")
    if acc_with_sr is None:
        acc_with_sr = evaluate_accuracy(model, batches, device=device, max_images=max_images)["acc1"]
    return {
        "acc_sr": acc_with_sr,
        "acc_no_sr": no_sr["acc1"],
        "acc5_no_sr": no_sr["acc5"],
        "delta_pp": no_sr["acc1"] - acc_with_sr,
        "num_images": no_sr["num_images"],
    }
