"""Seed-repeated sweeps: a grid of arms (recipe + overrides) × seeds, run one after another, resumable.

A sweep file (``sweeps/<name>.yaml``)::

    name: cifar10-cpu-d2d
    output: results/cifar10-cpu/d2d     # run folders go to <output>/<arm>/seed<seed>/
    metric: test_acc1                   # the summary.json key compared between arms
    baseline: r18-d2d                   # the arm every other arm is compared to (Δ and Welch p)
    seeds: [0, 1, 2]                    # an arm may set its own 'seeds:' list
    keep_checkpoints: false             # delete checkpoint_*.pt once a run's summary.json exists ('best': keep
                                        # checkpoint_best.pt, e.g. for `srblock analyze`; *.pt stay git-ignored)
    reference_effect: 0.16              # optional: the table states the seeds needed to detect this Δ
    overrides:                          # for every arm (a mapping of dotted keys, or a list of "key=value")
      train.epochs: 15
      model.width: 0.25
    arms:
      r18-d2d:    {recipe: cifar10/r18_d2d}
      r18-d2d-sr: {recipe: cifar10/r18_d2d_sr, overrides: {model.num_memories: 10}}

Relative paths (``output``, ``recipe``) are resolved against the current directory (the repository root).
Overrides apply in the order global → arm → ``seed=<seed>``. Runs go seed-major (seed 0 of every arm, then
seed 1, ...) so an interrupted sweep leaves the arms balanced. A run whose ``summary.json`` exists is skipped;
one with ``checkpoint_last.pt`` but no summary is resumed.

Under ``torchrun`` every rank executes the same grid (the list of pending runs is fixed when the sweep starts,
before any run can finish) and each run trains over all ranks; only rank 0 deletes checkpoints and aggregates.
Without torchrun, several sweep processes may work on the same grid at once (e.g. one per CPU core): a run is
claimed through ``<run>/.sweep.lock`` and a run finished meanwhile by another process is skipped.
To run several runs at once from one command (worker processes, one GPU each, or Slurm jobs), pick a launcher
(:mod:`srblock.experiments.launchers`: ``--launcher local:N`` / ``slurm``, or a ``launcher:`` section in the file).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import logging
import math
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..analysis.stats import PairedResult, SignResult, paired_ttest, required_seeds, sign_test, summarize, welch_ttest
from ..engine.logger import progress
from .launchers import Launcher, make_launcher, parse_launcher_options

__all__ = [
    "Run",
    "Sweep",
    "aggregate",
    "expand_grid",
    "format_plan",
    "load_sweep",
    "run_sweep",
    "sweep_command",
]

RunFn = Callable[[dict, Path], dict]
LoadFn = Callable[[str, Sequence[str]], dict]

_log = logging.getLogger(__name__)

SUMMARY = "summary.json"
SWEEP_COPY = "sweep.yaml"
LOCK = ".sweep.lock"
# summary.json keys copied into results.csv when present (classification and segmentation)
CSV_KEYS = (
    "best_val_acc",
    "test_acc1",
    "test_acc5",
    "best_val_miou",
    "test_miou",
    "best_epoch",
    "epochs",
    "steps",
    "params",
    "sr_params",
    "wall_time_s",
)


@dataclass
class Arm:
    name: str
    recipe: str
    overrides: list[str] = field(default_factory=list)
    seeds: list[int] | None = None  # None: the sweep's seeds


@dataclass
class Sweep:
    """A parsed sweep file; see the module docstring for the format."""

    name: str
    output: Path
    arms: list[Arm]
    seeds: list[int]
    baseline: str
    metric: str = "test_acc1"
    overrides: list[str] = field(default_factory=list)
    keep_checkpoints: bool | str = False
    reference_effect: float | None = None
    launcher: str | dict | None = None  # the file's 'launcher:' (a name, or a mapping with 'name' and options)
    source: Path | None = None


@dataclass
class Run:
    arm: str
    seed: int
    recipe: str
    overrides: list[str]
    output_dir: Path

    @property
    def done(self) -> bool:
        return (self.output_dir / SUMMARY).is_file()


def _override_list(value: Any, where: str) -> list[str]:
    """Overrides as ``key=value`` strings from a mapping (values written as YAML flow) or a list of strings."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        out = []
        for key, val in value.items():
            text = val if isinstance(val, str) else yaml.safe_dump(val, default_flow_style=True).strip()
            text = text.removesuffix("\n...").strip()
            out.append(f"{key}={text}")
        return out
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) and "=" in v for v in value):
        return list(value)
    raise ValueError(f"{where}: overrides must be a mapping or a list of 'key=value' strings, got {value!r}")


def _seed_list(seeds: Any, where: str) -> list[int]:
    if isinstance(seeds, int):
        seeds = list(range(seeds))
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"{where}: 'seeds' must be a non-empty list of ints (or a count), got {seeds!r}")
    return seeds


def _keep_checkpoints(value: Any, where: str) -> bool | str:
    if value in (True, False, "best"):
        return value
    raise ValueError(
        f"{where}: keep_checkpoints must be true, false or 'best' (keep checkpoint_best.pt), got {value!r}"
    )


def load_sweep(path: str | Path, extra_overrides: Sequence[str] = ()) -> Sweep:
    """Parse a sweep file; ``extra_overrides`` (``key=value``) are appended to its global overrides."""
    from ..recipes import find_recipe

    path = find_recipe(path, sweeps=True)
    raw = yaml.safe_load(path.read_text()) or {}
    return sweep_from_dict(raw, source=path, extra_overrides=extra_overrides)


def sweep_from_dict(raw: Mapping, source: Path | None = None, extra_overrides: Sequence[str] = ()) -> Sweep:
    where = str(source or "sweep")
    missing = [k for k in ("arms", "seeds", "output") if k not in raw]
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing}; a sweep needs 'arms', 'seeds' and 'output'")
    arms_raw = raw["arms"]
    if not isinstance(arms_raw, Mapping) or not arms_raw:
        raise ValueError(f"{where}: 'arms' must be a non-empty mapping name -> {{recipe, overrides}}, got {arms_raw!r}")
    arms = []
    for name, spec in arms_raw.items():
        if not isinstance(spec, Mapping) or "recipe" not in spec:
            raise ValueError(f"{where}: arm {name!r} needs a 'recipe' path, got {spec!r}")
        overrides = _override_list(spec.get("overrides"), f"{where}: {name}")
        arm_seeds = None if spec.get("seeds") is None else _seed_list(spec["seeds"], f"{where}: arm {name}")
        arms.append(Arm(str(name), str(spec["recipe"]), overrides, arm_seeds))
    names = [a.name for a in arms]
    baseline = str(raw.get("baseline", names[0]))
    if baseline not in names:
        raise ValueError(f"{where}: baseline {baseline!r} is not an arm; arms are {names}")
    seeds = _seed_list(raw["seeds"], where)
    ref = raw.get("reference_effect")
    return Sweep(
        name=str(raw.get("name", source.stem if source else "sweep")),
        output=Path(raw["output"]),
        arms=arms,
        seeds=list(seeds),
        baseline=baseline,
        metric=str(raw.get("metric", "test_acc1")),
        overrides=_override_list(raw.get("overrides"), f"{where}: overrides") + list(extra_overrides),
        keep_checkpoints=_keep_checkpoints(raw.get("keep_checkpoints", False), where),
        reference_effect=None if ref is None else float(ref),
        launcher=_launcher_spec(raw.get("launcher"), where),
        source=source,
    )


def _launcher_spec(value: Any, where: str) -> str | dict | None:
    if value is None or isinstance(value, str) or (isinstance(value, Mapping) and "name" in value):
        return dict(value) if isinstance(value, Mapping) else value
    raise ValueError(f"{where}: 'launcher' must be a name (local:4) or a mapping with 'name', got {value!r}")


def expand_grid(sweep: Sweep) -> list[Run]:
    """All runs of the sweep, seed-major: for each seed, every arm (in file order) that runs that seed."""
    all_seeds = list(dict.fromkeys([*sweep.seeds, *(s for a in sweep.arms for s in a.seeds or ())]))
    return [
        Run(
            arm=arm.name,
            seed=seed,
            recipe=arm.recipe,
            overrides=[*sweep.overrides, *arm.overrides, f"seed={seed}"],
            output_dir=sweep.output / arm.name / f"seed{seed}",
        )
        for seed in all_seeds
        for arm in sweep.arms
        if seed in (arm.seeds or sweep.seeds)
    ]


def format_plan(runs: Sequence[Run]) -> str:
    """One line per run: state (done/todo), arm, seed, folder, overrides."""
    lines = []
    for r in runs:
        state = "done" if r.done else "todo"
        lines.append(f"[{state}] {r.arm:<20} seed={r.seed:<3} {r.output_dir}  {' '.join(r.overrides)}")
    n_done = sum(r.done for r in runs)
    lines.append(f"{len(runs)} runs: {n_done} done, {len(runs) - n_done} to run")
    return "\n".join(lines)


def _engine_load(recipe: str, overrides: Sequence[str]) -> dict:
    from ..engine import load_config

    return load_config(recipe, overrides)


def _engine_train(config: dict, output_dir: Path) -> dict:
    from ..engine import train

    return train(config, output_dir, resume=(output_dir / "checkpoint_last.pt").is_file())


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _write_sweep_copy(sweep: Sweep) -> None:
    doc = {
        "name": sweep.name,
        "output": str(sweep.output),
        "metric": sweep.metric,
        "baseline": sweep.baseline,
        "seeds": sweep.seeds,
        "keep_checkpoints": sweep.keep_checkpoints,
        "reference_effect": sweep.reference_effect,
        "overrides": sweep.overrides,
        "arms": {
            a.name: {"recipe": a.recipe, "overrides": a.overrides, **({"seeds": a.seeds} if a.seeds else {})}
            for a in sweep.arms
        },
    }
    sweep.output.mkdir(parents=True, exist_ok=True)
    (sweep.output / SWEEP_COPY).write_text(yaml.safe_dump(doc, sort_keys=False))


@contextmanager
def _claim(run_dir: Path, *, enabled: bool = True) -> Iterator[bool]:
    """Hold ``run_dir/.sweep.lock`` (created exclusively) while training; yields False if another process holds it.

    A lock left by a process of this machine that no longer exists (killed) is taken over.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    if not enabled:
        yield True
        return
    lock = run_dir / LOCK
    owner = f"{socket.gethostname()}:{os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            host, _, pid = lock.read_text().partition(":")
            if host != socket.gethostname() or not pid.isdigit() or _alive(int(pid)):
                yield False
                return
            lock.unlink(missing_ok=True)  # its process died: take over
            continue
        with os.fdopen(fd, "w") as f:
            f.write(owner)
        break
    else:
        yield False
        return
    try:
        yield True
    finally:
        lock.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _finish_run(run: Run, summary: dict, sweep: Sweep, seconds: float) -> None:
    """Write the summary if the run function did not, and drop the checkpoints the sweep does not keep."""
    summary_path = run.output_dir / SUMMARY
    if not summary_path.is_file():
        summary_path.write_text(
            json.dumps({"seed": run.seed, "wall_time_s": seconds, **summary}, indent=2, default=str)
        )
    for ckpt in run.output_dir.glob("checkpoint_*.pt"):
        if sweep.keep_checkpoints is True or (sweep.keep_checkpoints == "best" and ckpt.stem.endswith("best")):
            continue
        ckpt.unlink()


def execute_run(run: Run, *, sweep: Sweep, run_fn: RunFn, load_fn: LoadFn) -> dict | None:
    """One run of a sweep, wherever a launcher runs it: claim it, train, write ``summary.json`` if ``run_fn`` did
    not and drop the checkpoints the sweep does not keep (rank 0). Returns the summary, or ``None`` when another
    process has finished or is training this run (then nothing is done here)."""
    # Several sweep processes may share a grid (e.g. one per CPU core): each run is claimed by one of them.
    # Under torchrun every rank must run the same list, so there the list stays as fixed at the start.
    single = int(os.environ.get("WORLD_SIZE", "1")) == 1
    if single and run.done:
        return None
    with _claim(run.output_dir, enabled=single) as claimed:
        if not claimed:
            return None
        _log.info("%s seed=%s -> %s", run.arm, run.seed, run.output_dir)
        config = load_fn(run.recipe, run.overrides)
        start = time.perf_counter()
        summary = run_fn(config, run.output_dir) or {}
        if _rank() == 0:
            _finish_run(run, summary, sweep, time.perf_counter() - start)
            summary = {"wall_time_s": time.perf_counter() - start, **summary}
    return summary


def run_sweep(
    sweep: Sweep,
    *,
    run_fn: RunFn | None = None,
    load_fn: LoadFn | None = None,
    log: Callable[[str], None] = _log.info,
    after_run: Callable[[Run, dict], None] | None = None,
    launcher: Launcher | None = None,
) -> list[Run]:
    """Run every pending run of the grid, then aggregate (rank 0). Returns the runs executed now, as they finished.

    ``run_fn(config, output_dir) -> summary`` defaults to the engine's ``train`` (resuming from
    ``checkpoint_last.pt`` when present); ``load_fn(recipe, overrides) -> config`` to ``engine.load_config``.
    If ``run_fn`` does not write ``summary.json`` itself, the returned summary is written there.
    ``after_run(run, summary)`` is called on rank 0 after each finished run (e.g. to commit it).
    ``launcher`` (:func:`srblock.experiments.launchers.make_launcher`) runs the runs; default: one after another
    here. A launcher with worker processes needs picklable (module-level) ``run_fn``/``load_fn``.
    """
    launcher = launcher or make_launcher()
    if launcher.name != "sequential" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError(f"the {launcher.name} launcher starts its own processes; run it without torchrun")
    job = functools.partial(execute_run, sweep=sweep, run_fn=run_fn or _engine_train, load_fn=load_fn or _engine_load)
    runs = expand_grid(sweep)
    pending = [r for r in runs if not r.done]  # fixed now, so every torchrun rank runs the same list
    if _rank() == 0:
        _write_sweep_copy(sweep)
    log(
        f"sweep {sweep.name}: {len(runs)} runs, {len(runs) - len(pending)} done, {len(pending)} to run"
        + (f" ({launcher.name} launcher, {launcher.workers or 'any number of'} at a time)" if pending else "")
    )
    executed = []
    bar = progress(total=len(pending), desc=f"sweep {sweep.name}", unit="run", leave=True, enabled=_rank() == 0)
    with bar, contextlib.closing(launcher.launch(job, pending)) as outcomes:  # closing: stop workers on an error
        for i, (run, result) in enumerate(outcomes, 1):
            summary = result.result()
            bar.update()
            if summary is None:
                log(
                    f"[{i}/{len(pending)}] {run.arm} seed={run.seed}: done or being trained by another process, skipped"
                )
                continue
            if _rank() == 0:
                value, wall = summary.get(sweep.metric), summary["wall_time_s"]
                log(f"[{i}/{len(pending)}] {run.arm} seed={run.seed} done: {sweep.metric}={value} in {wall:.0f}s")
                aggregate(sweep.output, sweep=sweep, log=lambda _: None)  # partial tables after every run
                if after_run is not None:
                    after_run(run, summary)
            executed.append(run)
    if _rank() == 0:
        aggregate(sweep.output, sweep=sweep, log=log)
    return executed


# --------------------------------------------------------------------------------------------------- aggregation


def _load_summaries(root: Path, sweep: Sweep | None) -> list[dict]:
    """Rows ``{arm, seed, run_dir, summary}`` for every finished run under ``root`` (arms in sweep order)."""
    if sweep is not None:
        arm_names = [a.name for a in sweep.arms]
    else:
        arm_names = sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob(f"*/{SUMMARY}")))
    rows = []
    for arm in arm_names:
        for path in sorted((root / arm).glob(f"*/{SUMMARY}")):
            summary = json.loads(path.read_text())
            seed = summary.get("seed")
            if seed is None:
                name = path.parent.name
                seed = int(name.removeprefix("seed")) if name.removeprefix("seed").isdigit() else name
            rows.append({"arm": arm, "seed": seed, "run_dir": path.parent, "summary": summary})
    rows.sort(key=lambda r: (arm_names.index(r["arm"]), str(r["seed"]).zfill(6)))
    return rows


def _fmt(x: float, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _fmt_p(p: float) -> str:
    return "–" if math.isnan(p) else f"{p:.3g}"


def _length(summary: Mapping) -> str:
    """The run's length as trained: ``N epochs`` or ``N iterations`` (from the summary or its config)."""
    if summary.get("steps") is not None and summary.get("epochs") is not None:
        return f"{summary['steps']} iterations ({summary['epochs']:g} epochs)"
    train = (summary.get("config") or {}).get("train") or {}
    if train.get("epochs"):
        return f"{train['epochs']} epochs"
    return f"{train['iterations']} iterations" if train.get("iterations") else ""


def aggregate(
    root: str | Path,
    *,
    sweep: Sweep | None = None,
    baseline: str | None = None,
    metric: str | None = None,
    reference_effect: float | None = None,
    log: Callable[[str], None] = _log.info,
) -> str:
    """Write ``results.csv`` (one row per finished run) and ``table.md`` (per arm) into ``root``; return the table.

    Without ``sweep``, ``root/sweep.yaml`` (written by :func:`run_sweep`) supplies arms, baseline and metric when
    present; otherwise every sub-folder with finished runs is an arm. ``baseline``/``metric``/``reference_effect``
    override the sweep's values.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no sweep output folder at {root} (expected <output>/<arm>/seed<N>/summary.json)")
    if sweep is None and (root / SWEEP_COPY).is_file():
        sweep = sweep_from_dict(yaml.safe_load((root / SWEEP_COPY).read_text()), source=root / SWEEP_COPY)
    metric = metric or (sweep.metric if sweep else "test_acc1")
    rows = _load_summaries(root, sweep)
    arms = [a.name for a in sweep.arms] if sweep else sorted({r["arm"] for r in rows})
    baseline = baseline or (sweep.baseline if sweep else (arms[0] if arms else None))
    if reference_effect is None and sweep is not None:
        reference_effect = sweep.reference_effect

    keys = [k for k in CSV_KEYS if any(k in r["summary"] for r in rows)]
    if metric not in keys:
        keys.insert(0, metric)
    with open(root / "results.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arm", "seed", "metric", "value", *keys, "run_dir"])
        for r in rows:
            s = r["summary"]
            rel = os.path.relpath(r["run_dir"], root)
            writer.writerow([r["arm"], r["seed"], metric, s.get(metric, ""), *(s.get(k, "") for k in keys), rel])

    by_seed = {
        a: {r["seed"]: float(r["summary"][metric]) for r in rows if r["arm"] == a and metric in r["summary"]}
        for a in arms
    }
    values = {a: list(by_seed[a].values()) for a in arms}
    extras = {a: [r["summary"] for r in rows if r["arm"] == a] for a in arms}
    base_vals = values.get(baseline, [])
    all_vals = [v for vs in values.values() for v in vs]
    digits = 4 if all_vals and max(abs(v) for v in all_vals) <= 1.0 else 2  # fractions vs percent
    ref_col = reference_effect is not None
    header = ["arm", "n", f"{metric} mean ± std", "95 % CI", f"Δ vs {baseline}", "p (Welch)", "p (paired, n)"]
    header.append("p (sign, wins/n)")
    header.append("seeds for Δ (80 %)")
    if ref_col:
        header.append(f"seeds for Δ={reference_effect:g} (80 %)")
    header += ["params", "SR params", "time/run (s)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arm in arms:
        s = summarize(values[arm])
        is_base = arm == baseline
        w = welch_ttest(base_vals, values[arm]) if not is_base else None
        pooled = math.sqrt((s.std**2 + summarize(base_vals).std ** 2) / 2) if not is_base else s.std
        need = "–"
        if w is not None and not math.isnan(pooled) and pooled > 0 and not math.isnan(w.delta):
            need = _seeds_text(required_seeds(w.delta, pooled))
        cells = [
            f"`{arm}`" + (" (baseline)" if is_base else ""),
            str(s.n),
            f"{_fmt(s.mean, digits)} ± {_fmt(s.std, digits)}",
            f"[{_fmt(s.ci_low, digits)}, {_fmt(s.ci_high, digits)}]",
            "–" if is_base else f"{w.delta:+.{digits}f}",
            "–" if is_base else _fmt_p(w.p),
            "–" if is_base else _paired_text(paired_ttest(by_seed[baseline], by_seed[arm])),
            "–" if is_base else _sign_text(sign_test(by_seed[baseline], by_seed[arm])),
            need,
        ]
        if ref_col:
            ok = not math.isnan(pooled) and pooled > 0
            cells.append(_seeds_text(required_seeds(reference_effect, pooled)) if ok else "–")
        ex = extras[arm]
        params = {e.get("params") for e in ex} - {None}
        sr = {e.get("sr_params") for e in ex} - {None}
        times = [float(e["wall_time_s"]) for e in ex if "wall_time_s" in e]
        cells += [
            ", ".join(f"{p:,}" for p in sorted(params)) or "–",
            ", ".join(f"{p:,}" for p in sorted(sr)) or "–",
            f"{sum(times) / len(times):.0f}" if times else "–",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lengths = sorted({_length(r["summary"]) for r in rows} - {""})
    notes = [
        "",
        f"{len(rows)} finished runs under `{root}`" + (f", trained for {'; '.join(lengths)}" if lengths else "") + ".",
        f"Δ = mean(arm) − mean({baseline}); p: two-sided Welch t-test, "
        "`scipy.stats.ttest_ind(arm, baseline, equal_var=False)`; 95 % CI: t-interval of the mean.",
        "p (paired, n): two-sided paired t-test over the n seeds both arms ran (`scipy.stats.ttest_rel`); seed k of "
        "two arms shares the split, data order, augmentation and the initial weights of every common layer.",
        "p (sign, wins/n): exact two-sided sign test over the same pairs (`scipy.stats.binomtest`), wins = seeds where "
        "the arm beat the baseline; it does not rest on the spread of the differences.",
        "Seeds for Δ: seeds per arm for 80 % power at α = 0.05 (two-sided Welch test) if the true difference were "
        "the observed Δ (or the reference Δ), with the two arms' pooled per-seed std.",
    ]
    table = "\n".join(lines + notes) + "\n"
    (root / "table.md").write_text(table)
    log(table)
    return table


def _paired_text(result: PairedResult) -> str:
    return "–" if result.n < 2 else f"{_fmt_p(result.p)} ({result.n})"


def _sign_text(result: SignResult) -> str:
    return "–" if result.n == 0 else f"{_fmt_p(result.p)} ({result.wins}/{result.n})"


def _seeds_text(n: int) -> str:
    return f"> {n - 1:,}" if n > 999_999 else f"{n:,}"


def sweep_command(
    config: str | None = None,
    *,
    report: str | None = None,
    dry_run: bool = False,
    overrides: Sequence[str] = (),
    baseline: str | None = None,
    metric: str | None = None,
    after_run: str | None = None,
    run_fn: RunFn | None = None,
    load_fn: LoadFn | None = None,
    launcher: str | None = None,
    launcher_options: Sequence[str] = (),
) -> int:
    """What ``srblock sweep`` does: run (``config``), list (``dry_run``) or re-aggregate (``report``).

    ``after_run`` is a shell command run after each finished run (rank 0), with the environment variables
    ``SRBLOCK_RUN_DIR``, ``SRBLOCK_RUN_ARM``, ``SRBLOCK_RUN_SEED``, ``SRBLOCK_SWEEP_NAME`` and
    ``SRBLOCK_SWEEP_OUTPUT`` set, e.g. to commit each finished run; its failure is reported, not fatal.
    ``launcher`` (``sequential``, ``local:N``, ``slurm``) and ``launcher_options`` (``key=value``) override the
    sweep file's ``launcher:`` (see :mod:`srblock.experiments.launchers`).
    The plan (``dry_run``) and the table (``report``) are this command's output and go to stdout.
    """
    if report is not None:
        sweep = load_sweep(config, overrides) if config else None
        aggregate(report, sweep=sweep, baseline=baseline, metric=metric, log=print)
        return 0
    if config is None:
        raise ValueError("srblock sweep needs -c SWEEP.yaml (to run or --dry-run) or --report DIR (to aggregate)")
    sweep = load_sweep(config, overrides)
    if baseline:
        sweep.baseline = baseline
    if metric:
        sweep.metric = metric
    if dry_run:
        print(format_plan(expand_grid(sweep)))
        return 0
    spec = sweep.launcher
    if launcher is not None:  # replaces the file's launcher; the file's options stay when it names the same kind
        same_kind = isinstance(spec, dict) and str(spec["name"]).partition(":")[0] == launcher.partition(":")[0]
        spec = {**spec, "name": launcher} if same_kind else launcher
    runner = make_launcher(spec, parse_launcher_options(launcher_options), output=sweep.output, job_name=sweep.name)
    hook = None
    if after_run:

        def hook(run: Run, summary: dict) -> None:
            env = {
                **os.environ,
                "SRBLOCK_RUN_DIR": str(run.output_dir),
                "SRBLOCK_RUN_ARM": run.arm,
                "SRBLOCK_RUN_SEED": str(run.seed),
                "SRBLOCK_SWEEP_NAME": sweep.name,
                "SRBLOCK_SWEEP_OUTPUT": str(sweep.output),
            }
            rc = subprocess.run(after_run, shell=True, env=env).returncode
            if rc:
                _log.warning("after-run command exited with %d: %s", rc, after_run)

    run_sweep(sweep, run_fn=run_fn, load_fn=load_fn, after_run=hook, launcher=runner)
    return 0
