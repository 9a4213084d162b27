"""Which memory blocks a trained SR block recalls: the softmax weights per class (PAPER.md §5, "Softmax usage").

The paper reports mean ± std of the P weights over 50 validation images per class for a few chosen classes, and
over all classes. The weights are read with forward hooks on the block's ``softmax`` submodule
(:func:`srblock.layers.sr.capture_memory_weights`), so any model with SR blocks works unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..engine.logger import progress
from ..engine.metrics import topk_correct
from ..layers.modes import eval_mode
from ..layers.sr import capture_memory_weights
from .plots import Figure, bar_panel, grid, save_figure

__all__ = [
    "MemoryRecord",
    "collect_memory_weights",
    "iter_predictions",
    "plot_usage",
    "summarize_usage",
    "weight_stats",
]


@dataclass
class MemoryRecord:
    """One pass of a model over a split: per-image softmax weights of every SR block, labels, predictions.

    ``samples`` keeps the first image (as given to the model, on CPU) of each class in ``keep_classes``, for the
    feature-map pictures.
    """

    weights: dict[str, torch.Tensor]  # block name -> N x P
    labels: torch.Tensor  # N
    predictions: torch.Tensor  # N (top-1)
    top5_correct: int = 0
    samples: dict[int, torch.Tensor] = field(default_factory=dict)

    @property
    def num_images(self) -> int:
        return int(self.labels.numel())

    @property
    def accuracy(self) -> float:
        """Top-1 accuracy in % of the model with its SR blocks."""
        if self.num_images == 0:
            return float("nan")
        return 100.0 * (self.predictions == self.labels).float().mean().item()


def logits_of(output: Any) -> torch.Tensor:
    if isinstance(output, Mapping):  # torchvision-style dict outputs
        output = output["out"]
    if isinstance(output, (tuple, list)):
        output = output[0]
    return output


@torch.no_grad()
def iter_predictions(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    device: torch.device | str | None = None,
    max_images: int | None = None,
    desc: str = "predict",
    tta: str | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(images, labels, logits)`` per batch of ``model`` in eval mode, the last batch cut at ``max_images``.

    Labels and float logits are on the CPU; the model's train/eval mode is restored when the iteration ends. On a
    terminal a progress bar (``desc``) counts the batches. ``tta``: the logits under a recipe's test-time
    augmentation (``data.tta``, :func:`srblock.engine.classification.tta_logits`), as the engine evaluates.
    """
    from ..engine.classification import tta_logits

    device = torch.device(device) if device is not None else next(model.parameters()).device
    seen = 0
    total = len(batches) if isinstance(batches, Sized) else None
    with eval_mode(model), progress(total=total, desc=desc, unit="batch") as bar:
        for images, target in batches:
            if max_images is not None and seen >= max_images:
                break
            if max_images is not None and seen + len(target) > max_images:
                images, target = images[: max_images - seen], target[: max_images - seen]
            logits = logits_of(tta_logits(model, images.to(device, non_blocking=True), tta)).float().cpu()
            seen += len(target)
            bar.update()
            yield images, torch.as_tensor(target).cpu().long(), logits


@torch.no_grad()
def collect_memory_weights(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    device: torch.device | str | None = None,
    max_images: int | None = None,
    keep_classes: Sequence[int] = (),
) -> MemoryRecord:
    """Run ``model`` (eval mode) over ``(images, labels)`` batches and record every SR block's softmax weights.

    Args:
        model: a classifier with one or more SR blocks.
        batches: any iterable of (images, labels), e.g. a ``DataLoader``.
        device: where to run; defaults to the model's device.
        max_images: stop after this many images (``None``: the whole iterable).
        keep_classes: classes whose first image is kept in ``record.samples``.

    >>> from srblock.layers import SRBlock
    >>> net = nn.Sequential(SRBlock(4, 2, num_memories=3, hidden=2), nn.Flatten(), nn.Linear(16, 2))
    >>> rec = collect_memory_weights(net, [(torch.randn(6, 4, 2, 2), torch.tensor([0, 1, 0, 1, 0, 1]))])
    >>> rec.weights["0"].shape, rec.num_images
    (torch.Size([6, 3]), 6)
    """
    keep = set(int(c) for c in keep_classes)
    samples: dict[int, torch.Tensor] = {}
    labels, predictions, top5 = [], [], 0
    with capture_memory_weights(model) as captured:
        if not captured:
            raise ValueError(f"{type(model).__name__} has no SR block; nothing to analyse")
        outputs = iter_predictions(model, batches, device=device, max_images=max_images, desc="memory weights")
        for images, target, logits in outputs:
            labels.append(target)
            predictions.append(logits.argmax(1))
            top5 += int(topk_correct(logits, target, ks=(5,)))
            for i, label in enumerate(target.tolist()):
                if label in keep and label not in samples:
                    samples[label] = images[i].detach().cpu().clone()
    weights = {name: torch.cat(chunks).float().cpu() if chunks else torch.empty(0) for name, chunks in captured.items()}
    return MemoryRecord(
        weights=weights,
        labels=torch.cat(labels) if labels else torch.empty(0, dtype=torch.long),
        predictions=torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long),
        top5_correct=int(top5),
        samples=samples,
    )


def weight_stats(weights: torch.Tensor) -> dict[str, Any]:
    """Mean and (unbiased, 0 for one image) std over images of N x P softmax weights, as lists."""
    if weights.numel() == 0:
        return {"count": 0, "mean": [], "std": []}
    std = weights.std(0) if weights.shape[0] > 1 else torch.zeros(weights.shape[1])
    return {"count": int(weights.shape[0]), "mean": weights.mean(0).tolist(), "std": std.tolist()}


def summarize_usage(
    weights: torch.Tensor,
    labels: torch.Tensor,
    *,
    classes: Sequence[int] | None = None,
    per_class: int = 50,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Mean ± std of the P weights over the first ``per_class`` images of each chosen class, and over all images.

    Args:
        weights: N x P softmax weights of one block (rows sum to 1).
        labels: N class indices.
        classes: the chosen classes (default: every class present when there are at most 10, else the first 5).
        per_class: images per class (the paper uses 50).
        class_names: names indexed by class, for the output.

    Returns ``{"num_memories", "per_class", "overall": {count, mean, std}, "classes": {name: {class, count, mean,
    std}}}``; ``overall`` uses every image of the split.
    """
    if weights.shape[0] != labels.shape[0]:
        raise ValueError(f"got {weights.shape[0]} weight rows for {labels.shape[0]} labels")
    present = sorted(set(labels.tolist()))
    if classes is None:
        classes = present if len(present) <= 10 else present[:5]
    out: dict[str, Any] = {
        "num_memories": int(weights.shape[1]) if weights.dim() == 2 else 0,
        "per_class": per_class,
        "overall": weight_stats(weights),
        "classes": {},
    }
    for c in classes:
        rows = weights[labels == int(c)][:per_class]
        name = class_names[int(c)] if class_names is not None and int(c) < len(class_names) else str(int(c))
        out["classes"][name] = {"class": int(c), **weight_stats(rows)}
    return out


def plot_usage(summary: Mapping[str, Any], path: str | Path | None = None, *, title: str = "") -> Figure:
    """Bar plots of mean ± std weight per memory block: one panel for all images, then one per chosen class.

    ``summary`` is :func:`summarize_usage`'s result; the figure is also saved as PNG to ``path`` when given.
    """
    panels = [(f"all ({summary['overall']['count']} images)", summary["overall"])]
    panels += [(f"{name} ({s['count']})", s) for name, s in summary["classes"].items()]
    peak = max((m + s for _, p in panels for m, s in zip(p["mean"], p["std"], strict=True)), default=1.0)
    fig, axes = grid(len(panels), max_cols=4, panel=2.6)
    for ax, (label, stats) in zip(axes, panels, strict=True):
        bar_panel(ax, stats["mean"], stats["std"], title=label, ylim=min(1.0, 1.1 * peak) if peak > 0 else 1.0)
    for ax in axes[-min(4, len(axes)) :]:
        ax.set_xlabel("memory block", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    if path is not None:
        save_figure(fig, path)
    return fig
