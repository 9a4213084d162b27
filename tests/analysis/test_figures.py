"""Saved figures: an opaque PNG with a palette of at most 256 colours, close to matplotlib's own rendering and
smaller, so that committed result figures keep the repository small."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from PIL import Image

from srblock.analysis.plots import Figure, heatmap, save_figure
from srblock.io import FIGURE_COLORS
from srblock.io import save_figure as save_any


def _figure() -> Figure:
    fig = Figure(figsize=(4, 3))
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(np.sin(np.linspace(0, 6, 50)), color="tab:red")
    heatmap(fig.add_subplot(1, 2, 2), np.random.default_rng(0).normal(size=(16, 16)), cmap="viridis")
    return fig


def test_a_png_figure_is_saved_with_a_palette_close_to_matplotlibs(tmp_path: Path) -> None:
    fig = _figure()
    save_figure(fig, tmp_path / "palette.png")
    save_any(fig, tmp_path / "rgba.png", palette=False, dpi=110, bbox_inches="tight")
    with Image.open(tmp_path / "palette.png") as small, Image.open(tmp_path / "rgba.png") as full:
        assert small.mode == "P" and len(small.getcolors(FIGURE_COLORS + 1) or []) <= FIGURE_COLORS
        assert full.mode == "RGBA" and small.size == full.size
        assert small.info["dpi"] == pytest.approx(full.info["dpi"])  # the resolution is kept
        difference = np.abs(np.asarray(small.convert("RGB"), float) - np.asarray(full.convert("RGB"), float))
    assert difference.mean() < 1.0 and np.percentile(difference, 99.9) < 40  # of 255: the same picture
    assert (tmp_path / "palette.png").stat().st_size < 0.7 * (tmp_path / "rgba.png").stat().st_size


def test_other_formats_and_transparent_figures_are_matplotlibs(tmp_path: Path) -> None:
    fig = _figure()
    save_any(fig, tmp_path / "figure.pdf")
    assert (tmp_path / "figure.pdf").read_bytes().startswith(b"%PDF")
    save_any(fig, tmp_path / "clear.png", transparent=True)
    with Image.open(tmp_path / "clear.png") as image:
        assert image.mode == "RGBA" and image.getextrema()[3][0] == 0  # the transparent background stays
    fig.set_facecolor((1.0, 0.8, 0.8, 0.5))  # half-transparent: not flattened into an opaque palette
    save_any(fig, tmp_path / "pink.png")
    with Image.open(tmp_path / "pink.png") as image:
        assert image.mode == "RGBA" and image.getextrema()[3][0] == 128
