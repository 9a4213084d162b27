"""Across datasets: one report over several sweeps of a baseline against its SR arms (the time-series sweeps
``timeseries_<dataset>_<model>``: the model, the model + SR after its last stage, and + SR after block 1), as the
time-series community reads a new method.

:func:`compare_sweeps` reads each sweep folder the way :func:`srblock.experiments.sweep.aggregate` does (its
``sweep.yaml`` copy, the finished runs of its plan; stale runs are left out), pairs each SR arm (named
``<baseline>-sr[-variant]``) with the baseline by seed and writes into ``output``:

- ``crossdataset.md``: per dataset × model × SR arm the paired Δ with its 95 % CI and the sign test
  (:mod:`srblock.analysis.stats`), our baseline against the published mean accuracy
  (:data:`srblock.data.timeseries.PUBLISHED_ACCURACY`), the SR dynamics at the end of training and the cost; across
  datasets, per model and SR arm and pooled, the Wilcoxon signed-rank test over the per-dataset means;
- ``cd.png``: aeon's critical difference diagram over the estimators (each model, with its main SR arm, and each
  other SR arm tested everywhere) on the datasets where all of them have runs.

An SR arm with 3 pairs or fewer (:data:`srblock.analysis.stats.SCREEN_SEEDS`) is a *screen*: listed with its
Δ and interval, without p-values, and kept out of the tests and the diagram.
This module lives in ``experiments`` (not ``analysis``) because it reads sweep folders.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as _st

from ..analysis.stats import (
    SCREEN_SEEDS,
    PairedResult,
    SignResult,
    format_interval,
    format_number,
    format_p,
    paired_ttest,
    sign_test,
    summarize,
)
from ..data.timeseries import PUBLISHED_ACCURACY
from ..io import check_ours, remove_ours, save_figure, write_text
from .sweep import (
    SWEEP_COPY,
    LoadFn,
    _dynamics_text,
    finished_scores,
)

__all__ = ["CD_ALPHA", "PUBLISHED_TOLERANCE", "Pair", "compare_sweeps", "read_pairs"]

#: Our baseline should reproduce the published mean within this many points where the source has >= 10 runs.
PUBLISHED_TOLERANCE = 2.0
PUBLISHED_MIN_RUNS = 10
#: Significance level of the critical difference diagram's cliques (the Wilcoxon-Holm test of Ismail Fawaz et al.).
CD_ALPHA = 0.05
REPORT_NAME = "crossdataset.md"
CD_NAME = "cd.png"


@dataclass(frozen=True)
class Pair:
    """One SR arm of a sweep against the sweep's baseline: a dataset × model × SR variant, both arms' metric per
    seed, and what the report shows of it."""

    folder: Path
    dataset: str
    model: str  # "fcn", "resnet": the zoo name without its "tsc_" prefix
    variant: str  # the SR arm's name after "<baseline>-sr" ("" for the sweep's main SR arm, "m1" for "...-sr-m1")
    where: str  # where the SR arm puts its block(s) and how large: "block 3, P 10"
    baseline: dict[int, float]
    sr: dict[int, float]
    paired: PairedResult
    sign: SignResult
    entropy: str  # the SR arm's routing entropy at the end (per block when several), "–" without dynamics
    memory_ratio: str
    sr_params: int | None
    time_ratio: float  # mean wall time of an SR run / of a baseline run
    base_seconds: float  # wall time of the baseline's finished runs, paired or not (its sweep's, shared by its SR arms)
    sr_seconds: float  # wall time of the SR arm's finished runs
    epochs: float | None
    left_out: tuple[str, ...] = ()  # its sweep's runs not counted (stale, broken), one line each
    metric: str = "test_acc1"  # its sweep's metric, the summary.json key compared

    @property
    def screen(self) -> bool:
        return self.paired.n <= SCREEN_SEEDS

    def means(self) -> tuple[float, float]:
        """Baseline and SR mean over the paired seeds (the per-dataset scores the cross-dataset tests compare),
        rounded to 9 decimals: equal means summed in another order are a tie in every test, not 1e-15 apart."""
        keys = sorted(set(self.baseline) & set(self.sr))
        base, sr = (round(float(np.mean([arm[k] for k in keys])), 9) for arm in (self.baseline, self.sr))
        return base, sr


def _not_a_sweep(folder: Path, why: str) -> ValueError:
    return ValueError(
        f"{folder} is not a sweep output folder ({why}; expected {SWEEP_COPY} beside <arm>/seed<N>/summary.json, "
        "as srblock sweep writes, or a folder of such folders)"
    )


def _sweep_folders(folders: Sequence[str | Path]) -> list[Path]:
    """Each argument is a sweep folder, or a folder whose sub-folders are (``results/timeseries``)."""
    found: list[Path] = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise _not_a_sweep(folder, "not a folder")
        if (folder / SWEEP_COPY).is_file():
            found.append(folder)
            continue
        inner = sorted(p for p in folder.iterdir() if p.is_dir() and (p / SWEEP_COPY).is_file())
        if not inner:
            raise _not_a_sweep(folder, f"no {SWEEP_COPY} in it nor in its sub-folders")
        found += inner
    unique: dict[Path, Path] = {}  # one folder under two spellings ("a/b", "/abs/a/b", "a/x/../b") is read once
    for folder in found:
        unique.setdefault(folder.resolve(), folder)
    return list(unique.values())


def read_pairs(folder: str | Path, *, load_fn: LoadFn | None = None) -> list[Pair]:
    """Each SR arm of one sweep folder paired by seed with the sweep's baseline; ``ValueError`` naming the folder
    when it is no sweep of a baseline and SR arms.

    ``load_fn`` loads a recipe for the staleness check (default: the engine's ``load_config``, as ``aggregate``)."""
    folder = Path(folder)
    if not (folder / SWEEP_COPY).is_file():
        raise _not_a_sweep(folder, f"no {SWEEP_COPY}")
    sweep, rows, scores, left_out = finished_scores(folder, load_fn=load_fn)
    arms = [a.name for a in sweep.arms]
    others = [a for a in arms if a != sweep.baseline]
    if not others or not all(a.startswith(f"{sweep.baseline}-sr") for a in others):
        raise ValueError(
            f"{folder}: a cross-dataset comparison needs a baseline and SR arms named <baseline>-sr[-variant], the "
            f"sweep has {arms} (baseline {sweep.baseline!r})"
        )
    by_arm = {a: [r for r in rows if r["arm"] == a] for a in arms}
    times = {a: [float(r["summary"]["wall_time_s"]) for r in by_arm[a] if "wall_time_s" in r["summary"]] for a in arms}
    summaries = [r["summary"] for r in rows]
    config = next((s["config"] for s in summaries if isinstance(s.get("config"), dict)), {})
    dataset = (config.get("data") or {}).get("name") or folder.name
    model = str((config.get("model") or {}).get("name") or "?").removeprefix("tsc_")
    epochs = {s.get("epochs") for s in summaries} - {None}
    base_time = float(np.mean(times[sweep.baseline])) if times[sweep.baseline] else math.nan
    pairs = []
    for other in others:
        sr_runs = [r["summary"] for r in by_arm[other]]
        sr_params = {s.get("sr_params") for s in sr_runs} - {None}
        sr_time = float(np.mean(times[other])) if times[other] else math.nan
        section = next((s["config"]["model"] for s in sr_runs if isinstance(s.get("config"), dict)), {})
        pairs.append(
            Pair(
                folder=folder,
                dataset=dataset,
                model=model,
                variant=other.removeprefix(f"{sweep.baseline}-sr").lstrip("-"),
                where=_where(section),
                baseline=scores[sweep.baseline],
                sr=scores[other],
                paired=paired_ttest(scores[sweep.baseline], scores[other]),
                sign=sign_test(scores[sweep.baseline], scores[other]),
                entropy=_dynamics_text(sr_runs, "routing_entropy"),
                memory_ratio=_dynamics_text(sr_runs, "memory_ratio"),
                sr_params=max(sr_params) if sr_params else None,
                time_ratio=sr_time / base_time if base_time > 0 else math.nan,
                base_seconds=float(sum(times[sweep.baseline])),
                sr_seconds=float(sum(times[other])),
                epochs=max(epochs) if epochs else None,
                left_out=tuple(left_out),
                metric=sweep.metric,
            )
        )
    return pairs


def _where(model: Mapping[str, Any]) -> str:
    """``"block 3, P 10"``: where an SR arm's model puts its block(s) (``sr_stage``) and its memories (P)."""
    stage = model.get("sr_stage")
    if stage is None:
        return "–"
    stages = "+".join(str(m) for m in stage) if isinstance(stage, list) else str(stage)
    return f"block {stages}, P {model.get('num_memories', '?')}"


def _published(pair: Pair, base_mean: float) -> tuple[str, str]:
    """The published mean (± std, runs) and our baseline's difference to it, flagged beyond the tolerance."""
    entry = PUBLISHED_ACCURACY.get(pair.dataset, {}).get(pair.model)
    if entry is None:
        return "–", "–"
    mean, std, runs = entry
    diff = base_mean - mean
    if math.isnan(diff):  # the baseline has no finished run yet
        return f"{mean:.1f} ± {std:.1f} ({runs})", "–"
    held = runs >= PUBLISHED_MIN_RUNS
    flag = " **> 2 pp**" if held and abs(diff) > PUBLISHED_TOLERANCE else "" if held else f" ({runs} runs)"
    return f"{mean:.1f} ± {std:.1f} ({runs})", f"{diff:+.2f}{flag}"


@dataclass(frozen=True)
class WilcoxonRow:
    name: str
    n: int
    above: int
    below: int
    ties: int
    statistic: float
    p: float


def wilcoxon_over(pairs: Sequence[Pair], name: str) -> WilcoxonRow:
    """Two-sided Wilcoxon signed-rank test of SR's against the baseline's per-dataset mean
    (``scipy.stats.wilcoxon``, zero differences dropped); NaN with no non-zero difference."""
    means = np.array([p.means() for p in pairs]).reshape(-1, 2)
    diffs = means[:, 1] - means[:, 0]  # exactly 0 for equal (rounded) means
    above, below = int((diffs > 0).sum()), int((diffs < 0).sum())
    stat = p = math.nan
    if above + below:
        res = _st.wilcoxon(diffs)
        stat, p = float(res.statistic), float(res.pvalue)
    return WilcoxonRow(name, len(pairs), above, below, len(pairs) - above - below, stat, p)


def _estimator(model: str, variant: str | None) -> str:
    """``"FCN"`` (``variant`` None: the baseline), ``"FCN+SR"`` (the main SR arm), ``"FCN+SR m1"``."""
    label = {"fcn": "FCN", "resnet": "ResNet"}.get(model, model)
    return label if variant is None else f"{label}+SR" + (f" {variant}" if variant else "")


def cd_scores(pairs: Sequence[Pair]) -> tuple[list[str], list[str], np.ndarray]:
    """Datasets, estimators and the datasets × estimators matrix of mean scores, over the datasets where every
    estimator (each model, with and without its main SR arm) has a tested (non-screen) sweep. Another SR variant
    joins as an estimator when it is tested on every one of those datasets."""
    tested = [p for p in pairs if not p.screen]
    models = sorted({p.model for p in tested})
    by_key = {(p.dataset, p.model, p.variant): p for p in tested}
    datasets = sorted(d for d in {p.dataset for p in tested} if all((d, m, "") in by_key for m in models))
    extra = sorted({(p.model, p.variant) for p in tested if p.variant})
    extra = [(m, v) for m, v in extra if all((d, m, v) in by_key for d in datasets)]
    columns = [(m, None) for m in models] + [(m, "") for m in models] + extra
    columns.sort(key=lambda c: (c[0], c[1] is not None, c[1] or ""))
    labels = [_estimator(m, v) for m, v in columns]
    scores = np.array([[by_key[d, m, v or ""].means()[0 if v is None else 1] for m, v in columns] for d in datasets])
    return datasets, labels, scores.reshape(len(datasets), len(labels))


def average_ranks(scores: np.ndarray) -> np.ndarray:
    """Each estimator's mean rank over the datasets (rows) of a datasets × estimators ``scores`` matrix, 1 = the
    highest score, ties sharing their mean rank: the ranks the critical difference diagram places."""
    return _st.rankdata(-scores, axis=1, method="average").mean(axis=0)


def draw_cd(labels: Sequence[str], scores: np.ndarray, path: Path, *, ours: bool = False) -> None:
    """aeon's critical difference diagram (higher score better) of the datasets × estimators ``scores``, saved
    atomically to ``path`` (``ours``: listed as srblock's, :func:`srblock.io.atomic_open`)."""
    from .._extras import requires_extra

    with requires_extra("timeseries", "the critical difference diagram (aeon)"):
        import matplotlib.pyplot as plt
        from aeon.visualisation import plot_critical_difference

    fig, _ = plot_critical_difference(scores, list(labels), test="wilcoxon", correction="holm", alpha=CD_ALPHA)
    try:
        save_figure(fig, path, dpi=150, bbox_inches="tight", ours=ours)
    finally:
        plt.close(fig)


def _pair_row(pair: Pair, metric_digits: int = 2) -> str:
    base, sr = summarize(list(pair.baseline.values())), summarize(list(pair.sr.values()))
    published, diff = _published(pair, base.mean)
    cells = [
        pair.dataset + (" (screen)" if pair.screen else ""),
        _estimator(pair.model, None),
        _estimator(pair.model, pair.variant).partition("+")[2] + f" ({pair.where})",
        f"{pair.epochs:g}" if pair.epochs is not None else "–",
        str(pair.paired.n),
        f"{format_number(base.mean)} ± {format_number(base.std)}",
        f"{format_number(sr.mean)} ± {format_number(sr.std)}",
        "–" if math.isnan(pair.paired.delta) else f"{pair.paired.delta:+.2f}",
        format_interval(pair.paired.ci_low, pair.paired.ci_high, metric_digits),
        "–" if pair.screen or pair.sign.n == 0 else f"{pair.sign.wins}/{pair.sign.n} (p {format_p(pair.sign.p)})",
        published,
        diff,
        pair.entropy,
        pair.memory_ratio,
        f"{pair.sr_params:,}" if pair.sr_params is not None else "–",
        format_number(pair.time_ratio),
    ]
    return "| " + " | ".join(cells) + " |"


def format_report(pairs: Sequence[Pair], *, cd: tuple[list[str], list[str], np.ndarray] | None) -> str:
    """The markdown report; ``cd``: the diagram's datasets, estimators and scores (``None`` when none was drawn)."""
    header = [
        "dataset", "model", "SR arm", "epochs", "pairs", "baseline mean ± std", "+SR mean ± std", "Δ (paired)",
        "Δ 95 % CI",
        "sign (wins/n)", "published (runs)", "ours − published", "routing entropy", "memory ratio", "SR params",
        "time SR/baseline",
    ]  # fmt: skip
    lines = ["## Per dataset", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    # an SR arm without a finished run yet (a sweep not started, or an arm added to a running one)
    waiting = sorted(p.folder.name + (f" (SR {p.variant})" if p.variant else "") for p in pairs if not p.sr)
    ordered = sorted((p for p in pairs if p.sr), key=lambda p: (p.dataset.lower(), p.model, p.variant))
    lines += [_pair_row(p) for p in ordered]
    screens = [p for p in ordered if p.screen]
    sweeps = {p.folder: p for p in pairs}  # a sweep's baseline and left-out runs are shared by its SR arms: once each
    runs = sum(len(p.baseline) for p in sweeps.values()) + sum(len(p.sr) for p in pairs)
    hours = (sum(p.base_seconds for p in sweeps.values()) + sum(p.sr_seconds for p in pairs)) / 3600
    lines += [
        "",
        "Δ = mean over the seeds both arms ran of (SR − baseline) test accuracy (%); 95 % CI: the paired t-interval "
        "(`scipy.stats.ttest_rel`); sign: seeds where SR beat the baseline of the non-tied pairs, exact two-sided "
        "sign test (`scipy.stats.binomtest`). Published: the mean ± std (runs) of "
        "`srblock.data.timeseries.PUBLISHED_ACCURACY` (the review's tables, or dl-4-tsc's result files); "
        f"**> 2 pp** flags a difference beyond {PUBLISHED_TOLERANCE:g} points where the source has "
        f"≥ {PUBLISHED_MIN_RUNS} runs (with fewer runs the difference is shown, not held to it). The sweeps may train "
        "fewer epochs than the review (column epochs): a shortfall there is explained by it only if the baseline "
        "has not converged. Routing entropy (1 = uniform over the P memories, 0 = one memory per series) and "
        "memory ratio (RMS of the recalled memory / RMS of the block's input): the SR runs' mean at their last "
        "evaluation (`sr_dynamics`). Time SR/baseline: mean wall time per run (equal epochs, so also per epoch); "
        "runs shared the CPU with other work, so read it as a rough ratio.",
        "",
        f"Compute: {runs} finished runs, {hours:.1f} hours of run time in all (the sum of their `wall_time_s`, "
        "each run on its own thread or threads, as the sweep files ran them).",
    ]
    if screens:
        lines.append(
            f"(screen): {len(screens)} SR arm{'s' * (len(screens) > 1)} (of "
            f"{len({(p.dataset, p.model) for p in screens})} dataset × model) with {SCREEN_SEEDS} pairs or fewer, "
            "listed with Δ and its interval but without p-values, and kept out of the tests and the diagram."
        )
    if waiting:
        lines.append(f"No finished run yet ({len(waiting)}, not in the table): {', '.join(waiting)}.")
    left_out = [f"{folder}: {line}" for folder, p in sweeps.items() for line in p.left_out]
    if left_out:
        lines.append(
            f"Left out ({len(left_out)}; rerun stale or broken ones with srblock sweep --rerun-stale): "
            + "; ".join(left_out)
        )
    tested = [p for p in ordered if not p.screen]
    kinds = sorted({(p.model, p.variant) for p in tested})
    groups = [(_estimator(m, v), [p for p in tested if (p.model, p.variant) == (m, v)]) for m, v in kinds]
    for variant in sorted({v for _, v in kinds}):
        name = "SR" + (f" {variant}" if variant else "")
        groups.append((f"{name} pooled (every dataset × model)", [p for p in tested if p.variant == variant]))
    lines += [
        "",
        "## Across datasets",
        "",
        "| against its baseline | datasets | SR above | SR below | ties | Wilcoxon W | p |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, members in groups:
        w = wilcoxon_over(members, name)
        statistic = format_number(w.statistic, 1)
        lines.append(f"| {name} | {w.n} | {w.above} | {w.below} | {w.ties} | {statistic} | {format_p(w.p)} |")
    lines += [
        "",
        "Two-sided Wilcoxon signed-rank test of SR's per-dataset mean test accuracy against the baseline's "
        "(`scipy.stats.wilcoxon`, exact for small samples, zero differences dropped); the unit is a dataset (a "
        "dataset × model when pooled), not a seed. With n datasets the smallest possible p is 2 / 2ⁿ "
        "(n = 5: 0.0625).",
        "",
        "## Critical difference diagram",
        "",
    ]
    if cd is None:
        lines.append(
            "Not drawn: it needs at least three estimators and two datasets on which every one has a tested sweep."
        )
    else:
        datasets, labels, scores = cd
        friedman = _st.friedmanchisquare(*scores.T)
        ranks = average_ranks(scores)
        lines += [
            f"![critical difference diagram]({CD_NAME})",
            "",
            "Average rank (1 = best): "
            + ", ".join(f"{name} {rank:.2f}" for rank, name in sorted(zip(ranks, labels, strict=True)))
            + ".",
            "",
            f"Drawn with aeon (`aeon.visualisation.plot_critical_difference`) over {len(datasets)} datasets "
            f"({', '.join(datasets)}) and the estimators {', '.join(labels)}: each estimator's average rank (1 = best "
            "accuracy; ties share the mean rank). A bar (clique) joins estimators not told apart. aeon first runs "
            f"the Friedman test over the ranks (here p = {format_p(float(friedman.pvalue))}, "
            "`scipy.stats.friedmanchisquare`); when it is not significant at "
            f"α = {CD_ALPHA:g}, every estimator is one clique. Otherwise the cliques come from pairwise one-sided "
            "Wilcoxon signed-rank tests with Holm's correction (aeon's `test='wilcoxon', correction='holm'`, the "
            "Wilcoxon-Holm procedure of Ismail Fawaz et al.; not the Nemenyi test of Demšar's original diagrams).",
        ]
    return "\n".join(lines) + "\n"


def compare_sweeps(
    folders: Sequence[str | Path], output: str | Path, *, load_fn: LoadFn | None = None
) -> tuple[str, list[Path]]:
    """Read the sweep folders (or folders of them), write ``crossdataset.md`` and, when it can be drawn, ``cd.png``
    into ``output``; return the report and the files written. A ``cd.png`` of an earlier report is removed when
    this one draws none. A file there of the same name that srblock did not write stops it before anything is
    written (:func:`srblock.io.check_ours`)."""
    output = Path(output)
    report_path, cd_path = output / REPORT_NAME, output / CD_NAME
    check_ours(report_path, cd_path)
    pairs = [pair for folder in _sweep_folders(folders) for pair in read_pairs(folder, load_fn=load_fn)]
    seen: dict[tuple[str, str], Path] = {}
    for folder, key in dict.fromkeys((p.folder, (p.dataset, p.model)) for p in pairs):
        if key in seen:
            raise ValueError(
                f"a report takes one sweep per dataset × model; {key[0]} × {key[1]} comes from two: {seen[key]} and "
                f"{folder} (compare them in separate reports)"
            )
        seen[key] = folder
    metrics: dict[str, Path] = {}
    for pair in pairs:
        metrics.setdefault(pair.metric, pair.folder)
    if len(metrics) > 1:  # one Wilcoxon test over test_acc1 here and test_acc1_last there would mean nothing
        shown = ", ".join(f"{metric} ({folder})" for metric, folder in metrics.items())
        raise ValueError(f"a report compares one metric across its sweeps; they use {shown}")
    output.mkdir(parents=True, exist_ok=True)
    datasets, labels, scores = cd_scores(pairs)
    drawn = len(datasets) >= 2 and len(labels) >= 3  # aeon's Friedman test needs three estimators
    if drawn:
        draw_cd(labels, scores, cd_path, ours=True)
    else:  # a diagram of an earlier report would be read as this one's
        remove_ours(cd_path)
    title = f"# Cross-dataset report: {len({p.folder for p in pairs})} sweeps\n\n"
    report = title + format_report(pairs, cd=(datasets, labels, scores) if drawn else None)
    write_text(report_path, report, ours=True)
    return report, [report_path, cd_path] if drawn else [report_path]
