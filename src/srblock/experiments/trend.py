"""A trend over ordered arms of one sweep (``srblock trend``): does the metric move with where the SR block sits, or
with how many memories it has?

The per-arm table answers "does this arm beat the baseline?", once per arm; the paper's claims are about an order
("deeper is better", "returns diminish with P"), which the arms' separate tests can miss or, picked from many, fake.
Here each named arm is a level with a value ``x`` (the stage M, or log2 P). Per seed, the least-squares slope of the
metric on x; over the seeds, :func:`srblock.analysis.stats.paired_trend`: the mean slope with its 95 % interval, the
t-test and sign test of the slopes, and Friedman's test of whether the levels differ in any pattern. Each level's
mean and paired Δ to the sweep's baseline stand beside it. Written as ``trend-<name>.md`` into the sweep folder.
This module lives in ``experiments`` (not ``analysis``) because it reads sweep folders.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

from ..analysis.stats import (
    SCREEN_SEEDS,
    TrendResult,
    format_interval,
    format_number,
    format_p,
    format_sign,
    paired_trend,
    paired_ttest,
    summarize,
)
from ..io import check_ours, mark_ours, write_text
from .sweep import LoadFn, finished_scores

__all__ = ["parse_levels", "trend_report"]

_NAME = re.compile(r"[A-Za-z0-9_-]+")


def parse_levels(text: str) -> dict[str, float]:
    """``"arm=x,arm=x,..."`` as ``{arm: x}`` (at least two, each x a number and used once); ``ValueError`` naming
    the part that is not.

    >>> parse_levels("r18-d2d-sr-m1=1, r18-d2d-sr=3")
    {'r18-d2d-sr-m1': 1.0, 'r18-d2d-sr': 3.0}
    """
    levels: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        arm, sep, x = part.partition("=")
        try:
            value = float(x) if sep and arm.strip() else None
        except ValueError:
            value = None
        if value is None:
            raise ValueError(f"expected levels as ARM=X,ARM=X (X a number), got {part!r} in {text!r}")
        if arm.strip() in levels:
            raise ValueError(f"arm {arm.strip()!r} is given twice in {text!r}")
        levels[arm.strip()] = value
    if len(levels) < 2:
        raise ValueError(f"a trend needs at least 2 levels (ARM=X,ARM=X), got {text!r}")
    if len(set(levels.values())) < len(levels):
        raise ValueError(f"two arms share one x in {text!r}: each level needs its own value")
    return levels


def trend_report(
    folder: str | Path,
    levels: Mapping[str, float],
    *,
    name: str = "trend",
    load_fn: LoadFn | None = None,
) -> tuple[str, Path]:
    """Test the trend of the sweep's metric over ``levels`` (``{arm: x}``) on the finished runs of the sweep folder
    ``folder``, write ``trend-<name>.md`` there and return the report and its path. Runs the tables leave out (stale,
    broken) are left out here too; a file of that name srblock did not write stops it before anything is written."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"name must be letters, digits, '-' or '_' (it names trend-<name>.md), got {name!r}")
    folder = Path(folder)
    path = folder / f"trend-{name}.md"
    check_ours(path)
    sweep, _, scores, left_out = finished_scores(folder, load_fn=load_fn)
    unknown = [arm for arm in levels if arm not in scores]
    if unknown:
        raise ValueError(f"{folder}: no arm {', '.join(map(repr, unknown))} in the sweep; its arms: {list(scores)}")
    order = sorted(levels, key=levels.__getitem__)
    result = paired_trend({levels[arm]: scores[arm] for arm in order})
    base = scores[sweep.baseline]
    lines = [
        f"# Trend of {sweep.metric} over {name}: {', '.join(f'`{arm}` x={levels[arm]:g}' for arm in order)}",
        "",
        f"| x | arm | n | {sweep.metric} mean ± std | Δ vs {sweep.baseline} (paired 95 % CI, n) |",
        "|---|---|---|---|---|",
    ]
    for arm in order:
        s, pair = summarize(list(scores[arm].values())), paired_ttest(base, scores[arm])
        vs = "–"
        if arm != sweep.baseline and pair.n:
            vs = f"{pair.delta:+.2f} {format_interval(pair.ci_low, pair.ci_high)} ({pair.n})"
        lines.append(f"| {levels[arm]:g} | `{arm}` | {s.n} | {format_number(s.mean)} ± {format_number(s.std)} | {vs} |")
    slope = "–" if math.isnan(result.slope) else f"{result.slope:+.3f}"
    lines += [
        "",
        f"Slope per unit of x over the {result.n} seed(s) that ran every level: {slope} "
        f"{format_interval(result.ci_low, result.ci_high, 3)} (mean, 95 % t-interval){_tests(result, len(order))}",
        "",
        "Per seed, the least-squares slope of the metric on x (seed k of every arm shares the split, data order and "
        "the initial weights of the common layers); over the seeds, the mean slope, its t-interval and two-sided "
        "t-test against 0, and the sign test (wins = seeds whose slope is positive): `srblock.analysis.stats."
        "paired_trend`. Friedman's test (`scipy.stats.friedmanchisquare`, the seeds as blocks) asks whether the "
        "levels differ in any pattern, not only along a line. The slope says nothing of the baseline: the Δ column "
        "does. An interval without 0 is that test's p < 0.05.",
    ]
    if left_out:
        lines.append(f"Left out ({len(left_out)}): " + "; ".join(left_out))
    report = "\n".join(lines) + "\n"
    write_text(path, report)
    mark_ours(path)
    return report, path


def _tests(result: TrendResult, levels: int) -> str:
    """The tests' sentence after the slope: none for a screen, Friedman's only from 3 levels."""
    if result.n <= SCREEN_SEEDS:
        return f" — a screen ({SCREEN_SEEDS} seeds or fewer): no p-values."
    text = f"; t-test p = {format_p(result.p)}, sign test {format_sign(result.sign)}; "
    if levels < 3:
        return text + "Friedman's test of any difference needs 3 levels or more."
    return text + f"Friedman test of any difference between the {levels} levels: p = {format_p(result.friedman_p)}."
