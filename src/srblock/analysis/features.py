"""How much SR changes the features it sees (PAPER.md §5, "Feature maps").

For each sample image: the channel-mean of the SR block's input X ("before") and output X̂ = X + M̄ ("after"), the
channel-mean absolute difference mean_c |X̂ − X| (absolute values first, so memory channels of opposite sign do
not cancel), and the relative change 100 · Σ|X̂ − X| / Σ|X| in %. Read with forward hooks on the block, so the
model is not modified.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ..layers.modes import eval_mode
from ..layers.sr import find_sr_blocks
from .plots import heatmap, save_figure

__all__ = ["feature_effect", "plot_feature_effect"]


def _as_2d(m: torch.Tensor) -> torch.Tensor:
    if m.dim() == 1:
        return m[None]
    while m.dim() > 2:
        m = m.mean(0)
    return m


@torch.no_grad()
def feature_effect(
    model: nn.Module,
    images: torch.Tensor,
    *,
    block: str | None = None,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """Channel-mean maps before/after the SR block named ``block`` (default: the first one) for a batch of images.

    Returns ``{"block", "before", "after", "abs_diff"}`` (each B x *S float32 CPU tensors) and ``"relative_change_pct"``
    (a list of B floats).

    >>> from srblock.layers import SRBlock
    >>> net = nn.Sequential(SRBlock(4, 2, num_memories=3, hidden=2, memory_init="normal"))
    >>> out = feature_effect(net, torch.randn(2, 4, 2, 2))
    >>> out["before"].shape, len(out["relative_change_pct"])
    (torch.Size([2, 2, 2]), 2)
    """
    blocks = find_sr_blocks(model)
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no SR block")
    if block is None:
        block = next(iter(blocks))
    if block not in blocks:
        raise ValueError(f"no SR block named {block!r}; the model has {sorted(blocks)}")
    if device is None:
        device = next(model.parameters()).device
    seen: dict[str, torch.Tensor] = {}

    def hook(_module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        seen["x"], seen["y"] = inputs[0].detach().float(), output.detach().float()

    handle = blocks[block].register_forward_hook(hook)
    try:
        with eval_mode(model):
            model(images.to(device))
    finally:
        handle.remove()
    x, y = seen["x"], seen["y"]
    diff = (y - x).abs()
    dims = tuple(range(1, x.dim()))
    rel = 100.0 * diff.sum(dims) / x.abs().sum(dims).clamp_min(1e-12)
    return {
        "block": block,
        "before": x.mean(1).cpu(),
        "after": y.mean(1).cpu(),
        "abs_diff": diff.mean(1).cpu(),
        "relative_change_pct": rel.cpu().tolist(),
    }


def _display_image(image: torch.Tensor) -> np.ndarray:
    """A model input (C x H x W, normalised) as something imshow can show: min-max scaled, HWC or H x W."""
    img = image.detach().float().cpu()
    img = (img - img.min()) / (img.max() - img.min()).clamp_min(1e-12)
    if img.dim() == 3 and img.shape[0] in (1, 3):
        img = img.permute(1, 2, 0)
        return (img[..., 0] if img.shape[-1] == 1 else img).numpy()
    return _as_2d(img).numpy()


def plot_feature_effect(
    effect: dict[str, Any],
    path: str | Path | None = None,
    *,
    images: torch.Tensor | None = None,
    labels: Sequence[str] | None = None,
    title: str = "",
) -> Figure:
    """One row per sample: [input image,] before, after (shared colour scale per row), and |after − before|.

    ``effect`` is :func:`feature_effect`'s result; the figure is also saved as PNG to ``path`` when given.
    """
    n = effect["before"].shape[0]
    cols = 4 if images is not None else 3
    fig = Figure(figsize=(2.4 * cols, 2.3 * n), layout="tight")
    axes = fig.subplots(n, cols, squeeze=False)
    for i in range(n):
        row = axes[i]
        before, after = _as_2d(effect["before"][i]).numpy(), _as_2d(effect["after"][i]).numpy()
        lo, hi = float(min(before.min(), after.min())), float(max(before.max(), after.max()))
        label = labels[i] if labels is not None else f"image {i + 1}"
        c = 0
        if images is not None:
            shown = _display_image(images[i])
            row[0].imshow(shown, cmap="gray" if shown.ndim == 2 else None)
            row[0].set_xticks([])
            row[0].set_yticks([])
            row[0].set_title(label, fontsize=9)
            c = 1
        heatmap(row[c], before, title="before SR" if images is not None else f"{label}: before", vmin=lo, vmax=hi)
        image = heatmap(row[c + 1], after, title="after SR", vmin=lo, vmax=hi)
        fig.colorbar(image, ax=row[c + 1], fraction=0.046)
        diff = heatmap(
            row[c + 2],
            _as_2d(effect["abs_diff"][i]).numpy(),
            title=f"|diff| ({effect['relative_change_pct'][i]:.2f} %)",
            cmap="magma",
        )
        fig.colorbar(diff, ax=row[c + 2], fraction=0.046)
    if title:
        fig.suptitle(title, fontsize=10)
    if path is not None:
        save_figure(fig, path)
    return fig
