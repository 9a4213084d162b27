"""What each memory block stores: the channel-mean of M_i as an H x W heat map (PAPER.md §5, "Memory maps")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..layers.sr import find_sr_blocks
from .plots import Figure, grid, heatmap, save_figure, symmetric_limit

__all__ = ["memory_map_stats", "memory_maps", "plot_memory_maps"]


@torch.no_grad()
def memory_maps(model: nn.Module) -> dict[str, torch.Tensor]:
    """Channel-mean of every memory block of every SR block: ``{block name: P x *S}`` (float32, CPU).

    >>> from srblock.layers import SRBlock
    >>> memory_maps(SRBlock(8, (4, 6), num_memories=3, hidden=2))[""].shape
    torch.Size([3, 4, 6])
    """
    return {name: block.memory.detach().float().mean(1).cpu() for name, block in find_sr_blocks(model).items()}


def memory_map_stats(maps: torch.Tensor) -> list[dict[str, Any]]:
    """Per memory block: min, max, mean of the channel-mean map and mean |value|, for the report."""
    return [
        {
            "memory": i + 1,
            "min": float(m.min()),
            "max": float(m.max()),
            "mean": float(m.mean()),
            "mean_abs": float(m.abs().mean()),
        }
        for i, m in enumerate(maps)
    ]


def _as_2d(m: torch.Tensor) -> torch.Tensor:
    if m.dim() == 1:  # 1-d block: one row
        return m[None]
    while m.dim() > 2:  # 3-d block: average the leading (depth/time) axes
        m = m.mean(0)
    return m


def plot_memory_maps(maps: torch.Tensor, path: str | Path | None = None, *, title: str = "") -> Figure:
    """A grid of P heat maps on one diverging colour scale centred on 0 (so blocks are comparable); for a 1-D block
    (``maps`` P x L) one panel of P curves over the steps, which a heat map of one row would hide.

    ``maps`` is one block's entry of :func:`memory_maps`; the figure is also saved as PNG to ``path`` when given.
    """
    if maps.dim() == 2:
        return _plot_memory_curves(maps, path, title=title)
    arrays = [_as_2d(m).numpy() for m in maps]
    limit = symmetric_limit(*arrays)
    fig, axes = grid(len(arrays), max_cols=5, panel=2.2, layout=None)
    image = None
    for i, (ax, data) in enumerate(zip(axes, arrays, strict=True)):
        image = heatmap(ax, data, title=f"M{i + 1}", vmin=-limit, vmax=limit, cmap="RdBu_r")
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="channel mean")
    if title:
        fig.suptitle(title, fontsize=10)
    if path is not None:
        save_figure(fig, path)
    return fig


def _plot_memory_curves(maps: torch.Tensor, path: str | Path | None, *, title: str) -> Figure:
    """The P channel-mean memories of a 1-D block as curves over the memory's positions (the series' steps, unless
    the block is built coarser and resizes its memory to the series), on one axis."""
    fig, (ax,) = grid(1, panel=4.0)
    fig.set_size_inches(7.0, 3.2)
    steps = range(1, maps.shape[1] + 1)
    for i, curve in enumerate(maps.numpy()):
        ax.plot(steps, curve, label=f"M{i + 1}", linewidth=1.2)
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.set_xlabel("memory position")
    ax.set_ylabel("channel mean")
    ax.legend(fontsize=7, ncol=2 if len(maps) > 5 else 1, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title(title or "channel-mean memory over its positions", fontsize=10)
    if path is not None:
        save_figure(fig, path)
    return fig
