"""The paper's ablation: accuracy of the trained model with its SR blocks removed (PAPER.md §5; the paper's ImageNet
D2D P=10 model lost 0.4 %). The model is copied first, so the caller's model keeps its blocks.

Beyond the paper, the same model with each block's routing fixed to its mean weights over the split (every input then
gets the same mix of the memories, a learned constant): what the per-input routing adds, the block's claim to
"remember", is the accuracy with SR minus this one; what a constant map adds is this one minus the accuracy without
SR. A routing near uniform (the paper's under SGD) adds nothing this way, whatever the block as a whole adds."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from ..engine.metrics import topk_correct
from .usage import iter_predictions

__all__ = ["ablation", "evaluate_accuracy", "with_fixed_routing", "without_sr"]


def without_sr(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every SR block replaced by ``nn.Identity`` (``srblock.models.remove_sr``)."""
    from ..models import remove_sr

    return remove_sr(copy.deepcopy(model))


class _FixedRouting(nn.Module):
    """An SR block whose routing is fixed: it adds ``sum_i w_i M_i`` for the given weights ``w`` (P) to every input,
    resized to the input's size as the block resizes what it recalls."""

    def __init__(self, block: nn.Module, weights: torch.Tensor) -> None:
        super().__init__()
        self.block = block
        self.register_buffer("weights", weights.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        memory = self.block.resized_memory(x.shape[2:])  # P x C x *size
        return x + torch.tensordot(self.weights.to(memory.dtype), memory, dims=1).to(x.dtype)


def with_fixed_routing(model: nn.Module, weights: Mapping[str, torch.Tensor]) -> nn.Module:
    """A deep copy of ``model`` whose SR blocks (``{block name: P weights}``, names as
    :func:`srblock.layers.find_sr_blocks` gives them) each add one fixed mix of their memories to every input."""
    from ..layers import find_sr_blocks

    model = copy.deepcopy(model)
    blocks = find_sr_blocks(model)
    if set(blocks) != set(weights):
        raise ValueError(f"expected routing weights for the SR blocks {sorted(blocks)}, got {sorted(weights)}")
    for name, block in blocks.items():
        if block.num_memories != len(weights[name]):
            raise ValueError(f"block {name!r} has {block.num_memories} memories, got {len(weights[name])} weights")
        fixed = _FixedRouting(block, torch.as_tensor(weights[name], dtype=torch.float32))
        if not name:
            return fixed
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, fixed)
    return model


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
    mean_weights: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Accuracy with and without SR on the same batches (which must be re-iterable, e.g. a ``DataLoader``).

    ``acc_with_sr`` skips the pass with SR when it is already known (e.g. from :func:`collect_memory_weights`).
    Returns ``{"acc_sr", "acc_no_sr", "delta_pp" (acc_no_sr - acc_sr, percentage points), "num_images"}``; with
    ``mean_weights`` (``{block: P weights}``, e.g. each block's mean softmax weights over the same batches) also
    ``"acc_fixed_routing"`` (:func:`with_fixed_routing`) and ``"routing_pp"`` (acc_sr - acc_fixed_routing: what the
    per-input routing adds over that fixed mix).
    """
    no_sr = evaluate_accuracy(without_sr(model), batches, device=device, max_images=max_images, desc="without SR")
    if acc_with_sr is None:
        acc_with_sr = evaluate_accuracy(model, batches, device=device, max_images=max_images)["acc1"]
    result = {
        "acc_sr": acc_with_sr,
        "acc_no_sr": no_sr["acc1"],
        "acc5_no_sr": no_sr["acc5"],
        "delta_pp": no_sr["acc1"] - acc_with_sr,
        "num_images": no_sr["num_images"],
    }
    if mean_weights is not None:
        fixed = with_fixed_routing(model, mean_weights)
        acc_fixed = evaluate_accuracy(fixed, batches, device=device, max_images=max_images, desc="fixed routing")
        acc_fixed = acc_fixed["acc1"]
        result |= {"acc_fixed_routing": acc_fixed, "routing_pp": acc_with_sr - acc_fixed}
    return result
