"""Distribution shift: the CIFAR-10-C-style corruption benchmark of trained runs and sweeps.

Each run is scored on its recipe's test split, clean and under the 15 corruptions x 5 severities of
:mod:`srblock.data.corruptions` (Hendrycks & Dietterich, ICLR 2019); the summary number is the mean corruption
accuracy (mCA, the mean top-1 over the 75 sets; the paper's mCE needs AlexNet's errors and is not reported). A run
folder gets ``robustness.json`` (another corruption seed or a subset of the test split its own file,
:func:`robustness_file`); a sweep folder gets ``robustness.md``, each arm against the sweep's baseline,
paired by seed (the seeds of two arms share split, data order, augmentation and initial weights), for clean top-1,
mCA and the drop (clean - mCA), and per corruption.

A run trained with ``train.robustness: true`` carries the same numbers in its ``summary.json``
(``test_corruption_acc1``, ``test_corruption``); a sweep of such runs needs no checkpoints.

>>> result = robustness_run("runs/cifar10/r18_d2d-seed0")  # doctest: +SKIP
>>> print(format_run(result))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from ..data.corruptions import CORRUPTIONS, SEVERITIES
from ..io import check_ours, write_json, write_text
from .stats import SCREEN_SEEDS, arm_marks, format_interval, format_paired, paired_ttest, sign_test, summarize

__all__ = [
    "ROBUSTNESS_FILE",
    "ROBUSTNESS_TABLE",
    "benchmark_checkpoint",
    "checkpoint_evaluator",
    "format_run",
    "robustness",
    "robustness_file",
    "robustness_run",
    "robustness_sweep",
]

_log = logging.getLogger(__name__)


def robustness_file(seed: int = 0, max_images: int | None = None) -> str:
    """The name of a run folder's benchmark result for corruption ``seed`` on ``max_images`` test images (``None``:
    the whole split): ``robustness.json`` for the standard one, its own name for any other, so that no result ever
    replaces another.

    >>> robustness_file(), robustness_file(1), robustness_file(0, 500)
    ('robustness.json', 'robustness-seed1.json', 'robustness-n500.json')
    """
    parts = ([f"seed{seed}"] if seed else []) + ([f"n{max_images}"] if max_images is not None else [])
    return "-".join(["robustness", *parts]) + ".json"


#: The standard benchmark's file (corruption seed 0, the whole test split): the one a sweep's table reads.
ROBUSTNESS_FILE = robustness_file()
#: A sweep folder's table of every arm against the baseline (:func:`robustness_sweep`).
ROBUSTNESS_TABLE = "robustness.md"


def checkpoint_evaluator(
    checkpoint: str | Path,
    *,
    data_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    max_images: int | None = None,
) -> tuple[Any, Callable[[Any, str], dict[str, Any]]]:
    """``(task, evaluate)`` of a checkpoint written by ``srblock train``: its recipe's task (``task.build_loaders()
    .test`` is the test split) and ``evaluate(loader, name)`` -> the engine's metrics of the trained weights on
    ``loader``, in float32.

    The recipe's normalisation and test-time augmentation apply. ``data_dir`` replaces the recipe's ``data.root``;
    ``max_images`` scores a seeded random subset of that many test images (the recipe's ``data.test_subset``).
    """
    from ..engine import get_task, load_trained_model, resolve_config
    from ..engine.distributed import DistInfo
    from ..engine.trainer import evaluate as evaluate_loader
    from ..engine.trainer import seed_everything

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, config = load_trained_model(checkpoint, map_location=device)
    if data_dir is not None:
        config = {**config, "data": {**config["data"], "root": str(data_dir)}}
    if max_images is not None:
        config = {**config, "data": {**config["data"], "test_subset": max_images}}
    config = resolve_config(config)
    seed_everything(config["seed"])
    task = get_task(config["task"])(config, DistInfo(), device)

    def evaluate(loader: Any, name: str) -> dict[str, Any]:
        fp32 = torch.autocast(device.type, enabled=False)
        return evaluate_loader(task, model, loader, fp32, desc=name, show_progress=False)

    return task, evaluate


def benchmark_checkpoint(
    checkpoint: str | Path,
    *,
    data_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    max_images: int | None = None,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Clean and corrupted top-1 of a checkpoint written by ``srblock train`` on its recipe's test split.

    Returns ``{"checkpoint", "clean_acc1", "test_corruption_acc1" (mCA), "drop", "test_corruption" (per corruption
    and severity, see :meth:`srblock.engine.classification.ClassificationTask.corruption_metrics`), "seed",
    "max_images", "wall_time_s"}``. See :func:`checkpoint_evaluator` for ``data_dir``, ``device`` and
    ``max_images`` (a quick look, not comparable with the full split).
    """
    start = time.perf_counter()
    task, evaluate = checkpoint_evaluator(checkpoint, data_dir=data_dir, device=device, max_images=max_images)
    if not callable(getattr(task, "corruption_metrics", None)):
        kind = task.config["task"]
        raise ValueError(f"the corruption benchmark is for classification runs; {checkpoint} is a {kind} run")
    test = task.build_loaders().test
    clean = evaluate(test, "clean")["acc1"]
    metrics = task.corruption_metrics(test, evaluate, seed=seed, cache_dir=cache_dir)
    return {
        "checkpoint": str(checkpoint),
        "clean_acc1": clean,
        "test_corruption_acc1": metrics["test_corruption_acc1"],
        "drop": clean - metrics["test_corruption_acc1"],
        "test_corruption": metrics["test_corruption"],
        "seed": seed,
        "max_images": max_images,
        "wall_time_s": round(time.perf_counter() - start, 2),
    }


def robustness_run(
    run_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    max_images: int | None = None,
    redo: bool = False,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The benchmark of a run folder's kept checkpoint (best, else last), written to ``<run>/robustness.json``
    (another ``seed`` or ``max_images``: :func:`robustness_file`).

    A result already there for the same ``seed`` and ``max_images`` is read, not recomputed (the benchmark is
    deterministic), unless ``redo``.
    """
    from ..engine.checkpoint import kept_checkpoint

    run_dir = Path(run_dir)
    path = run_dir / robustness_file(seed, max_images)
    if path.is_file():
        result = json.loads(path.read_text())
        if result.get("seed") == seed and result.get("max_images") == max_images:
            if not redo:
                return result
        else:  # an srblock before robustness_file kept every result in robustness.json: give it its own name
            # (where that name is taken, the same deterministic benchmark is kept there already)
            own = run_dir / robustness_file(result.get("seed", 0), result.get("max_images"))
            if not own.exists():
                path.replace(own)
    checkpoint = kept_checkpoint(run_dir)
    if checkpoint is None:
        raise FileNotFoundError(
            f"{run_dir} holds no checkpoint_best.pt or checkpoint_last.pt; train with --train.robustness true to get "
            "the benchmark in summary.json, or keep the checkpoints (a sweep's keep_checkpoints: best)"
        )
    _log.info(f"corruption benchmark of {checkpoint} (15 corruptions x 5 severities)")
    options = {"data_dir": data_dir, "device": device, "seed": seed, "max_images": max_images, "cache_dir": cache_dir}
    result = benchmark_checkpoint(checkpoint, **options)
    write_json(path, result)
    return result


def format_run(result: Mapping[str, Any]) -> str:
    """A Markdown table of one run: top-1 per corruption and severity, the mean per corruption, mCA and the drop."""
    corruption = result["test_corruption"]
    header = "| corruption | " + " | ".join(f"s{s}" for s in SEVERITIES) + " | mean |"
    lines = [header, "|" + "---|" * (len(SEVERITIES) + 2)]
    for name in CORRUPTIONS:
        values = corruption["acc1"][name]
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + f" | {corruption['mean'][name]:.2f} |")
    by_severity = " | ".join(f"{v:.2f}" for v in corruption["by_severity"])
    lines.append(f"| **all (mCA)** | {by_severity} | **{result['test_corruption_acc1']:.2f}** |")
    clean, mca = result.get("clean_acc1"), result["test_corruption_acc1"]
    if clean is not None:
        lines += ["", f"clean top-1 {clean:.2f} %, mCA {mca:.2f} %, drop {clean - mca:.2f} pp"]
    return "\n".join(lines)


def _run_values(
    run_dir: Path, summary: Mapping[str, Any], seed: int, compute: Callable[[Path], dict] | None, redo: bool
) -> dict | None:
    """``{"clean", "mca", "mean": {corruption: top-1}, "severity": [top-1 at severity 1..5]}`` of a finished run for
    corruption ``seed``: from its result file for that seed (:func:`robustness_file`), else from its ``summary.json``
    (a run trained with ``train.robustness``), else ``compute(run_dir)`` when it kept a checkpoint; ``redo`` computes
    first whenever a checkpoint is kept."""
    from ..engine.checkpoint import kept_checkpoint

    def values(result: Mapping[str, Any], clean: float | None) -> dict:
        corruption, mca = result["test_corruption"], result["test_corruption_acc1"]
        return {"clean": clean, "mca": mca, "mean": corruption["mean"], "severity": corruption["by_severity"]}

    can_compute = compute is not None and kept_checkpoint(run_dir) is not None
    if can_compute and redo:
        return values(result := compute(run_dir), result["clean_acc1"])
    path = run_dir / robustness_file(seed)
    if path.is_file() and (result := json.loads(path.read_text())).get("seed") == seed and not result.get("max_images"):
        return values(result, result["clean_acc1"])
    if (summary.get("test_corruption") or {}).get("seed") == seed and summary.get("test_corruption_acc1") is not None:
        return values(summary, summary.get("test_acc1"))
    if can_compute:
        return values(result := compute(run_dir), result["clean_acc1"])
    return None


def _pair_cells(base: Mapping[Any, float], arm: Mapping[Any, float]) -> list[str]:
    pair = paired_ttest(base, arm)
    if pair.n == 0:
        return ["–", "–"]
    ci = "" if math.isnan(pair.ci_low) else f" {format_interval(pair.ci_low, pair.ci_high)}"
    sign = sign_test(base, arm)
    p = f"– (screen, {pair.n})" if pair.n <= SCREEN_SEEDS else format_paired(pair)  # a screen: no p-values
    return [f"{pair.delta:+.2f}{ci}", f"{p}; sign {sign.wins}/{sign.n}"]


def robustness_sweep(
    root: str | Path,
    *,
    baseline: str | None = None,
    planned: Mapping[str, int] | None = None,
    seed: int = 0,
    compute: Callable[[Path], dict] | None = None,
    redo: bool = False,
    run_dirs: Iterable[Path] | None = None,
    log: Callable[[str], None] = _log.info,
) -> str:
    """``<root>/robustness.md``: per arm of a sweep folder (``<root>/<arm>/seed<N>/``), clean top-1, mCA and the drop
    against the ``baseline`` arm (default: the first arm), paired by seed, and the per-corruption Δ. ``planned``: how
    many seeds the sweep plans for each arm (:meth:`srblock.experiments.Sweep.planned_seeds`); an arm short of them is
    marked as its ``table.md`` marks it (:func:`~srblock.analysis.stats.arm_marks`). Each finished run's numbers come
    from :func:`_run_values` (``compute`` makes them for a run that kept a checkpoint only). ``run_dirs``: the run
    folders to read, in order (a sweep passes its finished runs, so a stale one is left out as in its ``table.md``);
    default every ``<arm>/seed<N>/`` with a ``summary.json``. Returns the Markdown. A ``robustness.md`` there that
    srblock did not write stops it before any run is scored (:func:`srblock.io.check_ours`)."""
    root = Path(root)
    check_ours(root / ROBUSTNESS_TABLE)
    runs: dict[str, dict[Any, dict]] = {}
    left_out = []
    if run_dirs is None:  # not a sweep's .stale/ or .interrupted/ folder
        run_dirs = (p.parent for p in sorted(root.glob("*/*/summary.json")) if not p.parent.parent.name.startswith("."))
    for run_dir in run_dirs:
        arm, summary_path = run_dir.parent.name, run_dir / "summary.json"
        summary = json.loads(summary_path.read_text())
        values = _run_values(run_dir, summary, seed, compute, redo)
        if values is None:
            left_out.append(f"`{arm}/{run_dir.name}`")
            continue
        runs.setdefault(arm, {})[summary.get("seed", run_dir.name)] = values
    if not runs:
        raise FileNotFoundError(
            f"no run under {root} has corruption results or a kept checkpoint (expected <arm>/seed<N>/summary.json "
            "with test_corruption_acc1, robustness.json or checkpoint_best.pt)"
        )
    arms = list(runs)
    if baseline is not None and baseline not in runs:
        raise ValueError(f"baseline {baseline!r} has no scored runs under {root}; arms with runs: {arms}")
    baseline = baseline or arms[0]
    arms = [baseline] + [a for a in arms if a != baseline]

    def series(arm: str, key: str) -> dict[Any, float]:
        return {seed: v[key] for seed, v in runs[arm].items() if v[key] is not None}

    def drop(arm: str) -> dict[Any, float]:
        return {s: v["clean"] - v["mca"] for s, v in runs[arm].items() if v["clean"] is not None}

    header = ["arm", "n", "clean top-1", "Δ clean (paired 95 % CI)", "mCA", "Δ mCA (paired 95 % CI)"]
    header += ["p mCA (paired, n); sign wins/n", "drop", "Δ drop (paired 95 % CI)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    screens, partial = [], []
    for arm in arms:
        clean, mca, drops = series(arm, "clean"), series(arm, "mca"), drop(arm)
        n, seeds = len(runs[arm]), (planned or {}).get(arm, 0)
        screen, short, marks = arm_marks(n, seeds, baseline=arm == baseline)
        screens += [f"`{arm}`"] if screen else []
        partial += [f"`{arm}` {n} of {seeds}"] if short else []
        cells = [f"`{arm}`" + marks, str(n)]
        for key, values in (("clean", clean), ("mca", mca)):
            s = summarize(list(values.values()))
            std = "" if math.isnan(s.std) else f" ± {s.std:.2f}"
            cells.append(f"{s.mean:.2f}{std}")
            if arm == baseline:
                cells += ["–"] * (2 if key == "mca" else 1)
            else:
                base = series(baseline, key)
                pair = _pair_cells(base, values)
                cells += pair if key == "mca" else pair[:1]
        s = summarize(list(drops.values()))
        cells.append(f"{s.mean:.2f}" + ("" if math.isnan(s.std) else f" ± {s.std:.2f}"))
        cells.append("–" if arm == baseline else _pair_cells(drop(baseline), drops)[0])
        lines.append("| " + " | ".join(cells) + " |")

    others = arms[1:]

    def breakdown(what: str, rows: Mapping[str, Callable[[dict], float]], of: str = "") -> list[str]:
        """One row per ``rows`` label: the baseline's mean over its seeds and each arm's paired Δ (95 % CI)."""
        out = ["", f"Per {what}{of}: `{baseline}`'s mean over its seeds, and each arm's paired Δ (95 % CI).", ""]
        out.append(f"| {what} | " + " | ".join([f"`{baseline}`", *(f"Δ `{a}`" for a in others)]) + " |")
        out.append("|" + "---|" * (len(others) + 2))
        for label, value in rows.items():
            base = {seed: value(v) for seed, v in runs[baseline].items()}
            cells = [f"{summarize(list(base.values())).mean:.2f}"]
            cells += [_pair_cells(base, {seed: value(v) for seed, v in runs[a].items()})[0] for a in others]
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        return out

    per = breakdown(
        "corruption",
        {name: lambda v, name=name: v["mean"][name] for name in CORRUPTIONS},
        f" (top-1 over {len(SEVERITIES)} severities)",
    )
    # whether a difference grows with the strength of the shift
    severities = {str(k): lambda v, i=i: v["severity"][i] for i, k in enumerate(SEVERITIES)}
    per += breakdown("severity", severities, f" (top-1 over the {len(CORRUPTIONS)} corruptions)")
    notes = [
        "",
        f"{sum(len(r) for r in runs.values())} runs under `{root}`. mCA: mean top-1 over the 15 corruptions x 5 "
        "severities of the test split (CIFAR-10-C's parameters, `srblock.data.corruptions`); drop = clean - mCA. "
        f"Δ = arm - `{baseline}` per seed, averaged over the seeds both ran; 95 % CI: t-interval of that mean; "
        "p: two-sided paired t-test (`scipy.stats.ttest_rel`); sign: seeds where the arm is higher, of the untied.",
    ]
    if screens:
        notes.append(
            f"(screen): arm(s) with {SCREEN_SEEDS} runs or fewer ({', '.join(screens)}): Δ and its intervals are "
            "shown, p-values are not (too few runs to read one)."
        )
    if partial:
        notes.append(
            f"(partial): arm(s) holding fewer of the sweep's seeds than it plans ({', '.join(partial)}): their "
            "numbers are interim; the reading is the one with every seed."
        )
    if left_out:
        notes.append(f"Left out (no corruption results and no kept checkpoint): {', '.join(left_out)}.")
    text = "\n".join(lines + per + notes) + "\n"
    write_text(root / ROBUSTNESS_TABLE, text, ours=True)
    log(text)
    return text


def robustness(
    path: str | Path,
    *,
    data_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    max_images: int | None = None,
    redo: bool = False,
    baseline: str | None = None,
    planned: Mapping[str, int] | None = None,
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] = _log.info,
) -> str:
    """``srblock robustness PATH``: a run folder (with a kept checkpoint) gets :func:`robustness_run` and its table;
    a sweep folder (``<arm>/seed<N>/`` runs) gets :func:`robustness_sweep` with ``baseline`` and ``planned``, scoring
    each run that needs it. Returns the Markdown table."""
    from ..engine.checkpoint import kept_checkpoint

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no run or sweep folder at {path}")
    options = {"data_dir": data_dir, "device": device, "seed": seed, "redo": redo, "cache_dir": cache_dir}
    options["max_images"] = max_images
    summary = json.loads((path / "summary.json").read_text()) if (path / "summary.json").is_file() else {}
    if kept_checkpoint(path) is not None or (path / robustness_file(seed, max_images)).is_file():
        text = format_run(robustness_run(path, **options))
    elif (summary.get("test_corruption") or {}).get("seed") == seed and not (redo or max_images):  # train.robustness
        text = format_run({**summary, "clean_acc1": summary.get("test_acc1")})
    else:
        text = ""
    if text:
        log(text)
        return text
    if any(path.glob("*/*/summary.json")):
        if max_images is not None:
            raise ValueError("--max-images is for a quick look at one run; a sweep's table compares full test splits")

        def compute(run: Path) -> dict[str, Any]:
            return robustness_run(run, **options)

        return robustness_sweep(
            path, baseline=baseline, planned=planned, seed=seed, compute=compute, redo=redo, log=log
        )
    raise FileNotFoundError(
        f"{path} is neither a run folder (checkpoint_best.pt or checkpoint_last.pt, or a summary.json of a run "
        "trained with train.robustness) nor a sweep folder (<arm>/seed<N>/summary.json)"
    )
