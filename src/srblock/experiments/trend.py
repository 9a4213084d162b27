"""A trend over ordered arms of one sweep (``srblock trend``): does the metric move with where the SR block sits, or
with how many memories it has?

The per-arm table answers "does this arm beat the baseline?", once per arm; the paper's claims are about an order
("deeper is better", "returns diminish with P"), which the arms' separate tests can miss or, picked from many, fake.
Here each named arm is a level with a value ``x`` (the stage M, or log2 P). Per seed, the least-squares slope of the
metric on x; over the seeds, :func:`srblock.analysis.stats.paired_trend`: the mean slope with its 95 % interval, the
t-test and sign test of the slopes, and Friedman's test of whether the levels differ in any pattern. Each level's mean
and paired Δ to its control stand beside it. A level is its arm's paired Δ to that control (the arm's own ``baseline:``
in the sweep file, else the sweep's), seed by seed: where every level has the sweep's baseline as control the slope is
the slope of the metric itself, and where the controls differ a trend asks whether the block's effect changes with its
setting, e.g. ``{r18-d2d-sr: 0, r18-d2d-ls-sr: 1}``, with ``r18-d2d-ls`` the control of the second: the slope is SR's
effect under label smoothing minus its effect without (an interaction), seed by seed. Written as ``trend-<name>.md``
into the sweep folder, with ``trend-<name>.png`` (:func:`trend_figure`: each level's paired Δ with its interval, each
seed's line, the mean slope, 0 for the control and the sweep's reference effect), so the answer can be seen at a
glance. This module lives in ``experiments`` (not ``analysis``) because it reads sweep folders.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..analysis.plots import Figure, save_figure
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
from ..io import check_ours, write_text
from .sweep import TREND_NAME, LoadFn, Plan, Sweep, check_levels, find_sweep_copy, finished_scores

__all__ = ["parse_levels", "report_trends", "trend_figure", "trend_report"]


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
    return check_levels(levels, f"levels {text!r}")


def trend_report(
    folder: str | Path,
    levels: Mapping[str, float],
    *,
    name: str = "trend",
    metric: str | None = None,
    load_fn: LoadFn | None = None,
) -> tuple[str, Path]:
    """Test the trend of ``metric`` (default: the sweep's) over ``levels`` (``{arm: x}``) on the finished runs of the
    sweep folder ``folder``, write ``trend-<name>.md`` and its figure ``trend-<name>.png`` there (for a metric other
    than the sweep's, ``trend-<name>-<metric>.md`` and ``.png``, as the tables do) and return the report and the
    report's path. Runs the tables leave out (stale, broken) are left out here too; a file of either name srblock did
    not write stops it before anything is written."""
    if not TREND_NAME.fullmatch(name):
        raise ValueError(f"name must be letters, digits, '-' or '_' (it names trend-<name>.md), got {name!r}")
    sweep, _, scores, left_out = finished_scores(folder, metric=metric, load_fn=load_fn)
    return _write_trend(Path(folder), sweep, scores, left_out, levels, name, metric or sweep.metric)


def report_trends(
    folder: str | Path,
    *,
    sweep: Sweep | None = None,
    metric: str | None = None,
    baseline: str | None = None,
    load_fn: LoadFn | None = None,
    plan: Plan | None = None,
) -> list[Path]:
    """Each trend ``sweep`` declares (``trends:``; default: the folder's ``sweep.yaml`` copy), written as
    :func:`trend_report` writes one, from one reading of the runs (``plan``: the sweep's
    :func:`~srblock.experiments.sweep.report_plan`, when the caller has made it); the reports' paths, none when there
    is no trend. ``baseline`` replaces the sweep's for the Δ column, as in the table. ``srblock sweep`` calls it with
    each table it writes, so the committed trends hold the runs the table holds."""
    folder = Path(folder)
    sweep = sweep or find_sweep_copy(folder)
    if sweep is None or not sweep.trends:
        return []
    sweep, _, scores, left_out = finished_scores(folder, metric=metric, load_fn=load_fn, sweep=sweep, plan=plan)
    if baseline is not None:
        sweep = dataclasses.replace(sweep, baseline=baseline)
    return [
        _write_trend(folder, sweep, scores, left_out, levels, name, metric or sweep.metric)[1]
        for name, levels in sweep.trends.items()
    ]


def _write_trend(
    folder: Path,
    sweep: Sweep,
    scores: Mapping[str, Mapping[object, float]],
    left_out: list[str],
    levels: Mapping[str, float],
    name: str,
    metric: str,
) -> tuple[str, Path]:
    """The report and figure of one trend (see :func:`trend_report`) from a sweep's finished scores."""
    stem = f"trend-{name}" if metric == sweep.metric else f"trend-{name}-{metric}"
    path, figure = folder / f"{stem}.md", folder / f"{stem}.png"
    check_ours(path)
    check_ours(figure)
    unknown = [arm for arm in levels if arm not in scores]
    if unknown:
        raise ValueError(f"{folder}: no arm {', '.join(map(repr, unknown))} in the sweep; its arms: {list(scores)}")
    order = sorted(levels, key=levels.__getitem__)
    controls = sweep.controls()
    deltas = {arm: _deltas(scores[controls[arm]], scores[arm]) for arm in order}
    result = paired_trend({levels[arm]: deltas[arm] for arm in order})
    mixed = {controls[arm] for arm in order} != {sweep.baseline}
    control = "its control" if mixed else sweep.baseline
    lines = [
        f"# Trend of {metric} over {name}: {', '.join(f'`{arm}` x={levels[arm]:g}' for arm in order)}",
        "",
        f"| x | arm | n | {metric} mean ± std | Δ vs {control} (paired 95 % CI, n) |",
        "|---|---|---|---|---|",
    ]
    for arm in order:
        s, pair = summarize(list(scores[arm].values())), paired_ttest(scores[controls[arm]], scores[arm])
        vs = "–"
        if arm != controls[arm] and pair.n:
            vs = f"{pair.delta:+.2f} {format_interval(pair.ci_low, pair.ci_high)} ({pair.n})"
            vs += f" vs `{controls[arm]}`" if mixed else ""
        lines.append(f"| {levels[arm]:g} | `{arm}` | {s.n} | {format_number(s.mean)} ± {format_number(s.std)} | {vs} |")
    slope = "–" if math.isnan(result.slope) else f"{result.slope:+.3f}"
    lines += [
        "",
        f"Slope per unit of x over the {result.n} seed(s) that ran every level and its control: {slope} "
        f"{format_interval(result.ci_low, result.ci_high, 3)} (mean, 95 % t-interval){_tests(result, len(order))}",
        "",
        "Per seed, the least-squares slope on x of each level's difference to its control (seed k of every arm shares "
        "the split, data order and the initial weights of the common layers; with one control for every level, the "
        "slope of the metric itself); over the seeds, the mean slope, its t-interval and two-sided "
        "t-test against 0, and the sign test (wins = seeds whose slope is positive): `srblock.analysis.stats."
        "paired_trend`. Friedman's test (`scipy.stats.friedmanchisquare`, the seeds as blocks) asks whether the "
        "levels differ in any pattern, not only along a line. The slope says nothing of the control: the Δ column "
        "does. An interval without 0 is that test's p < 0.05.",
    ]
    planned = set.intersection(*(set(sweep.arm_seeds(arm)) for arm in [*order, *(controls[arm] for arm in order)]))
    if SCREEN_SEEDS < result.n < len(planned):
        lines.append(
            f"Interim: {result.n} of the {len(planned)} seeds the sweep plans for every level and control; the "
            "reading is the one with every seed."
        )
    if left_out:
        lines.append(f"Left out ({len(left_out)}): " + "; ".join(left_out))
    report = "\n".join(lines) + "\n"
    title = f"{metric} over {name}, Δ vs {control} ({folder})"
    save_figure(trend_figure(levels, deltas, control, reference=sweep.reference_effect, title=title), figure, ours=True)
    write_text(path, report, ours=True)
    return report, path


def _deltas(control: Mapping[object, float], arm: Mapping[object, float]) -> dict[object, float]:
    """``arm - control`` for every seed the two ran."""
    return {seed: arm[seed] - control[seed] for seed in arm if seed in control}


def trend_figure(
    levels: Mapping[str, float],
    deltas: Mapping[str, Mapping[object, float]],
    control: str,
    *,
    reference: float | None = None,
    title: str = "",
) -> Figure:
    """The trend as a picture: at each level's x, its arm's paired Δ to ``control`` (``deltas``: ``{arm: {seed: Δ}}``,
    ``control`` the name the axis gives it), the mean with its 95 % t-interval over the seeds, a grey line per seed
    that every level has, and the mean slope (:func:`~srblock.analysis.stats.paired_trend`) drawn through the
    levels' mean Δ; a line at 0 (the control) and a dashed one at ``reference`` (e.g. the paper's effect)."""
    order = sorted(levels, key=levels.__getitem__)
    xs = np.asarray([levels[arm] for arm in order], dtype=float)
    fig = Figure(figsize=(max(4.5, 1.2 * len(order) + 2.0), 3.6), layout="tight")
    ax = fig.subplots()
    seeds = sorted(set.intersection(*(set(deltas[arm]) for arm in order)), key=str)
    for i, seed in enumerate(seeds):
        label = f"each seed that ran every level ({len(seeds)})" if i == 0 else None
        ax.plot(xs, [deltas[arm][seed] for arm in order], color="0.75", linewidth=0.8, zorder=1, label=label)
    summaries = [summarize(list(deltas[arm].values())) for arm in order]
    mean = np.asarray([s.mean for s in summaries])
    low = np.asarray([s.ci_low for s in summaries])
    high = np.asarray([s.ci_high for s in summaries])
    ax.errorbar(
        xs,
        mean,
        yerr=[mean - low, high - mean],
        fmt="o",
        color="C0",
        capsize=3,
        zorder=3,
        label="mean Δ, paired 95 % CI",
    )
    trend = paired_trend({levels[arm]: deltas[arm] for arm in order})
    if not math.isnan(trend.slope):
        ci = format_interval(trend.ci_low, trend.ci_high, 3)
        ax.plot(
            xs,
            mean.mean() + trend.slope * (xs - xs.mean()),
            color="C1",
            zorder=2,
            label=f"mean slope {trend.slope:+.3f} a unit of x, 95 % CI {ci} ({trend.n} seed(s))",
        )
    ax.axhline(0.0, color="black", linewidth=0.8, label=f"{control} (Δ = 0)")
    if reference is not None:
        ax.axhline(reference, color="C3", linestyle="--", linewidth=0.8, label=f"reference effect {reference:+g}")
    ax.set_xticks(xs, [f"{arm}\n({x:g})" for arm, x in zip(order, xs, strict=True)], fontsize=7)
    ax.set_ylabel(f"Δ vs {control}", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)  # below the data
    if title:
        ax.set_title(title, fontsize=8)
    return fig


def _tests(result: TrendResult, levels: int) -> str:
    """The tests' sentence after the slope: none for a screen, Friedman's only from 3 levels."""
    if result.n <= SCREEN_SEEDS:
        return f" — a screen ({SCREEN_SEEDS} seeds or fewer): no p-values."
    text = f"; t-test p = {format_p(result.p)}, sign test {format_sign(result.sign)}; "
    if levels < 3:
        return text + "Friedman's test of any difference needs 3 levels or more."
    return text + f"Friedman test of any difference between the {levels} levels: p = {format_p(result.friedman_p)}."
