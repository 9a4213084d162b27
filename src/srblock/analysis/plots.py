"""Shared matplotlib helpers: figures saved as PNG, heat maps on a shared colour scale, bar charts.

Figures are ``matplotlib.figure.Figure`` objects made without pyplot: they need no display (servers, CI), never
switch the user's backend, are not kept alive by pyplot's figure registry, and a notebook shows the one a plotting
function returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._extras import requires_extra
from ..io import save_figure as atomic_save_figure

with requires_extra("analysis", "plotting (srblock.analysis)"):
    from matplotlib.figure import Figure

__all__ = ["PNG_SIGNATURE", "Figure", "bar_panel", "grid", "heatmap", "is_png", "save_figure", "symmetric_limit"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def grid(n: int, *, max_cols: int = 5, panel: float = 2.4, layout: str | None = "tight") -> tuple[Figure, np.ndarray]:
    """A figure with ``n`` panels on a grid of at most ``max_cols`` columns; surplus axes are hidden.

    ``layout`` is matplotlib's layout engine, applied whenever the figure is drawn (shown or saved); pass ``None``
    for figures with a colour bar spanning several axes (the tight layout cannot place it).
    """
    cols = max(1, min(n, max_cols))
    rows = max(1, -(-n // cols))
    fig = Figure(figsize=(panel * cols, panel * rows), layout=layout)
    flat = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def symmetric_limit(*arrays: np.ndarray) -> float:
    """Largest absolute value over ``arrays`` (never 0), for a diverging colour scale centred on zero."""
    peak = max((float(np.abs(a).max()) for a in arrays if a.size), default=0.0)
    return peak if peak > 0 else 1e-12


def heatmap(ax, data: np.ndarray, *, title: str = "", vmin=None, vmax=None, cmap: str = "viridis"):
    """Show a 2-d array (a 1-d array becomes one row) without ticks; returns the image for a colour bar."""
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 1:
        data = data[None, :]
    aspect = "auto" if data.shape[0] == 1 else "equal"  # a 1-d block's single row would be a thin line
    image = ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest", aspect=aspect)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return image


def bar_panel(ax, mean: Sequence[float], std: Sequence[float], *, title: str = "", ylim: float | None = None) -> None:
    """Bars of mean ± std per memory block (x axis: the P memory blocks)."""
    x = np.arange(len(mean))
    ax.bar(x, mean, yerr=std, capsize=2, color="tab:blue", ecolor="black", error_kw={"elinewidth": 0.8})
    ax.set_xticks(x)
    ax.set_xticklabels([str(i + 1) for i in x], fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    if ylim is not None:
        ax.set_ylim(0, ylim)
    if title:
        ax.set_title(title, fontsize=9)


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 110, ours: bool = False) -> Path:
    """Save ``fig`` as PNG (atomically, parents created; ``ours``: listed as srblock's, :func:`srblock.io.atomic_open`);
    returns ``path``."""
    return atomic_save_figure(fig, path, dpi=dpi, format="png", bbox_inches="tight", ours=ours)


def is_png(path: str | Path) -> bool:
    """True if ``path`` starts with the PNG signature."""
    with open(path, "rb") as fh:
        return fh.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
