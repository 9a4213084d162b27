"""Seed-repeated sweeps: a grid of arms (recipe + overrides) × seeds, run one after another, resumable.

A sweep file (``sweeps/<name>.yaml``)::

    name: cifar10-cpu-d2d
    output: results/cifar10-cpu/d2d     # run folders go to <output>/<arm>/seed<seed>/
    metric: test_acc1                   # the summary.json key compared between arms
    report_metrics: [test_acc1_last]    # optional: more keys tabled with every table (table-<metric>.md, trends;
                                        # test_corruption_acc1 also refreshes robustness.md: clean, mCA, drop)
    baseline: r18-d2d                   # the arm every other arm is compared to (Δ, paired and Welch tests)
    seeds: [0, 1, 2]                    # an arm may set its own 'seeds:' list
    keep_checkpoints: false             # delete checkpoint_*.pt once a run's summary.json exists ('best': keep
                                        # checkpoint_best.pt, e.g. for `srblock analyze`; *.pt stay git-ignored)
    reference_effect: 0.16              # optional: the table states the seeds needed to detect this Δ
    reuse: [results/cifar10-cpu/w25]    # optional: other sweeps' output folders whose finished runs stand in
                                        # for runs of this one (same arm name and seed, same config): copied
    trends:                             # optional: arms as levels x of a factor, tested with every table
      sr-with-ls: {r18-d2d-sr: 0, r18-d2d-ls-sr: 1}   # (srblock trend: per seed the slope of each level's Δ to
                                                      # its control, here SR's effect with minus without smoothing)
    overrides:                          # for every arm (a mapping of dotted keys, or a list of "key=value")
      train.epochs: 15
      model.width: 0.25
    arms:
      r18-d2d:    {recipe: cifar10/r18_d2d}
      r18-d2d-sr: {recipe: cifar10/r18_d2d_sr, overrides: {model.num_memories: 10}}
      r18-d2d-ls: {recipe: cifar10/r18_d2d, overrides: {train.label_smoothing: 0.1}}
      r18-d2d-ls-sr:                    # an arm may name its own control ('baseline:'): its Δ, paired, Welch
        recipe: cifar10/r18_d2d_sr      # and sign columns then compare it with that arm (the table's 'vs')
        overrides: {model.num_memories: 10, train.label_smoothing: 0.1}
        baseline: r18-d2d-ls

Relative paths (``output``, ``recipe``, ``reuse``) are resolved against the current directory (the repository root).
Overrides apply in the order global → arm → ``seed=<seed>``. Runs go seed-major (seed 0 of every arm, then
seed 1, ...) so an interrupted sweep leaves the arms balanced.

Every run's config is loaded and checked (its model built on the meta device, its data folder looked up) before
the first run starts, also for ``--dry-run``; one bad arm stops the sweep there, named. Each run folder is then in
one state (:func:`run_state`):

- ``done``: ``summary.json`` parses and its recorded config equals the run's config (both resolved, so keys added
  to the engine later with defaults do not count; result-neutral keys such as ``data.root`` are ignored).
- ``stale``: finished (or half-finished) with another config. Never counted in a table; a sweep refuses to start
  while there are stale runs unless ``rerun_stale`` (``--rerun-stale``), which moves their folders to
  ``<output>/.stale/<arm>/seed<N>-<time>/`` (nothing is deleted) and runs them again.
- ``broken``: ``summary.json`` does not parse (from an older srblock; results are written atomically now):
  treated like ``stale``.
- ``failed``: the last attempt raised (recorded in ``failed.json`` with ``--keep-going``); retried.
- ``partial``: ``checkpoint_last.pt`` without a summary: resumed.
- ``interrupted``: run files (``metrics.csv``, ...) but neither a summary nor ``checkpoint_last.pt`` to resume from
  (killed before its first checkpoint, or a checkout that kept the logs but not the ignored checkpoint): its files
  are moved to ``<output>/.interrupted/<arm>/seed<N>-<time>-<suffix>/`` (nothing is deleted) and it starts again;
  not under torchrun, which refuses to start while there are such runs.
- ``reusable``: nothing there yet, and a folder of the sweep's ``reuse:`` list holds a finished run of the same arm
  and seed whose recorded config equals this run's (checked as for ``done``): the sweep copies its kept files
  (``config.yaml``, ``metrics.csv``, then ``summary.json`` with ``reused_from`` naming the source) instead of training
  it again. Two sweeps that share a baseline on the same protocol thus train it once; checkpoints are not copied.
- ``todo``: nothing there yet.

Under ``torchrun`` every rank executes the same grid (the list of pending runs is fixed when the sweep starts,
before any run can finish) and each run trains over all ranks; only rank 0 deletes checkpoints and aggregates.
Without torchrun, several sweep processes may work on the same grid at once (e.g. one per CPU core): a run is
claimed through ``<run>/.sweep.lock`` and a run finished meanwhile by another process is skipped.
Each run's ``train`` then holds the run folder's own lock (:func:`srblock.io.lock_folder`), so no other writer
enters it. The files a sweep writes beside its runs (:data:`SWEEP_OUTPUTS`, ``table-<metric>.md``) are listed in
``<output>/.srblock-owned.json``; a file of the user's under one of those names stops the sweep before it writes.
To run several runs at once from one command (worker processes, one GPU each, or Slurm jobs), pick a launcher
(:mod:`srblock.experiments.launchers`: ``--launcher local:N`` / ``slurm``, or a ``launcher:`` section in the file).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import difflib
import functools
import json
import logging
import math
import os
import re
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .._modules import import_every_module
from ..analysis.robustness import ROBUSTNESS_TABLE, robustness_sweep
from ..analysis.stats import (
    SCREEN_SEEDS,
    arm_marks,
    format_interval,
    format_number,
    format_p,
    format_paired,
    format_sign,
    holm_adjust,
    paired_ttest,
    required_seeds,
    seed_effect,
    seed_noise,
    sign_test,
    summarize,
    welch_ttest,
)
from ..data.shared import sharing_datasets
from ..engine.checkpoint import kept_checkpoint
from ..engine.config import config_diff, load_yaml
from ..engine.logger import progress
from ..io import (
    LOCK_NAME,
    OWNED_NAME,
    FolderBusyError,
    atomic_open,
    check_ours,
    claim_folder,
    lock_folder,
    mark_ours,
    write_json,
    write_text,
)
from .budget import Skipped, TimeBudget
from .launchers import Launcher, make_launcher, parse_launcher_options, torch_settings_restored

__all__ = [
    "Run",
    "Sweep",
    "aggregate",
    "check_levels",
    "expand_grid",
    "find_sweep_copy",
    "finished_scores",
    "format_plan",
    "format_seeds",
    "load_sweep",
    "parse_seeds",
    "plan_sweep",
    "read_sweep_copy",
    "report_plan",
    "report_tables",
    "run_state",
    "run_sweep",
    "sweep_command",
]

RunFn = Callable[[dict, Path], dict]
LoadFn = Callable[[str, Sequence[str]], dict]

_log = logging.getLogger(__name__)

SUMMARY = "summary.json"
KEPT_RUN_FILES = (SUMMARY, "metrics.csv", "config.yaml")  # what a run folder keeps in the repository (no checkpoints)
RUN_ANALYSIS = Path("analysis_test") / "analysis.json"  # `srblock analyze --split test`'s default place in a run
RUN_PREDICTIONS = "predictions_test.npz"  # the test split's top-1 predictions of a run's kept checkpoint
SWEEP_COPY = "sweep.yaml"
FAILED = "failed.json"  # the last failure of a run (--keep-going), removed when it succeeds
STALE_DIR = ".stale"  # where --rerun-stale moves the folders of stale runs
INTERRUPTED_DIR = ".interrupted"  # where a run that cannot resume leaves its files when it starts again
LOCK = ".sweep.lock"
# what a sweep writes into its output folder besides the runs (and table-<metric>.md): never over a file of the user's
LATENCY_FILE = "latency.json"  # each arm's step time against its control's (srblock.experiments.latency)
SWEEP_OUTPUTS = (SWEEP_COPY, "results.csv", "table.md", "noise.md", "dynamics.md", "dynamics.png", LATENCY_FILE)
# summary.json keys copied into results.csv when present (classification and segmentation)
CSV_KEYS = (
    "best_val_acc",
    "test_acc1",
    "test_acc5",
    "test_acc1_last",
    "test_corruption_acc1",
    "best_val_miou",
    "test_miou",
    "test_miou_last",
    "best_epoch",
    "epochs",
    "steps",
    "params",
    "sr_params",
    "wall_time_s",
)
RUN_KEYS = ("device", "gpu", "cpu_threads")  # results.csv's columns after the metrics: what wall_time_s was measured on


@dataclass
class Arm:
    name: str
    recipe: str
    overrides: list[str] = field(default_factory=list)
    seeds: list[int] | None = None  # None: the sweep's seeds
    baseline: str | None = None  # the arm this one is compared to in the table; None: the sweep's baseline


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
    reuse: list[Path] = field(default_factory=list)  # other sweeps' output folders whose finished runs are copied
    trends: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> {arm: x}, tested on every report
    report_metrics: list[str] = field(default_factory=list)  # more summary keys tabled with every table

    def arm_seeds(self, arm: str) -> list[int]:
        """The seeds the sweep plans for ``arm``: its own ``seeds:``, else the sweep's."""
        return next(a.seeds or self.seeds for a in self.arms if a.name == arm)

    def planned_seeds(self) -> dict[str, int]:
        """How many seeds the sweep plans for each arm (:meth:`arm_seeds`)."""
        return {a.name: len(self.arm_seeds(a.name)) for a in self.arms}

    def controls(self, baseline: str | None = None) -> dict[str, str]:
        """Each arm's control: its own ``baseline:`` in the sweep file, else ``baseline`` (default: the sweep's)."""
        return {a.name: a.baseline or baseline or self.baseline for a in self.arms}


@dataclass
class Run:
    arm: str
    seed: int
    recipe: str
    overrides: list[str]
    output_dir: Path

    @property
    def name(self) -> str:
        return f"{self.arm}/seed{self.seed}"


@dataclass
class RunState:
    """Where a run stands (see the module docstring): ``state`` and a one-line ``detail``."""

    state: str  # done | unchecked | stale | broken | failed | partial | interrupted | reusable | todo
    detail: str = ""
    summary: dict | None = None
    source: Path | None = None  # a reusable run's finished twin

    @property
    def finished(self) -> bool:
        """Counted in the tables: ``done``, or ``unchecked`` (a report whose arm config no longer loads)."""
        return self.state in ("done", "unchecked")

    @property
    def blocked(self) -> bool:
        """A finished result that does not belong to the sweep: needs --rerun-stale to run again."""
        return self.state in ("stale", "broken")


class RunFailedError(RuntimeError):
    """A run of the sweep raised; names the arm and seed. ``exit_code`` follows the cause (2: bad input)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def read_summary(path: Path) -> dict:
    """A run's ``summary.json``; ``ValueError`` naming the file when it does not parse to a JSON object."""
    try:
        summary = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is damaged (not valid JSON: {err})") from None
    if not isinstance(summary, dict):
        raise ValueError(f"{path} is damaged (a JSON {type(summary).__name__}, not an object)")
    return summary


def _changes(recorded: Mapping, expected: Mapping, resolve: Callable[[dict], dict]) -> str:
    """'' when ``recorded`` (a run's config) trains like ``expected``, else which keys differ."""
    try:
        recorded = resolve(dict(recorded))
    except (ValueError, FileNotFoundError) as err:
        return f"its config is no longer valid ({err})"
    diff = config_diff(recorded, expected)
    return ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in diff.items())


def run_state(run: Run, expected: Mapping | None = None, resolve: Callable[[dict], dict] = dict) -> RunState:
    """The state of ``run``'s folder; ``expected``: its config now (``None``: staleness is not checked), compared
    with the recorded one after ``resolve`` (the engine's ``resolve_config``)."""
    folder = run.output_dir
    if (folder / SUMMARY).is_file():
        try:
            summary = read_summary(folder / SUMMARY)
        except ValueError as err:
            return RunState("broken", str(err))
        recorded = summary.get("config")
        changed = _changes(recorded, expected, resolve) if expected is not None and recorded is not None else ""
        return RunState("stale", f"changed: {changed}", summary) if changed else RunState("done", "", summary)
    if (folder / "checkpoint_last.pt").is_file() and expected is not None and (folder / "config.yaml").is_file():
        recorded = yaml.safe_load((folder / "config.yaml").read_text()) or {}
        changed = _changes(recorded, expected, resolve)
        if changed:
            return RunState("stale", f"half-finished with another config: {changed}")
    if _unresumable(folder):
        return RunState("interrupted", f"no checkpoint_last.pt: its files move to {INTERRUPTED_DIR}/, it starts again")
    if (folder / FAILED).is_file():
        try:
            error = json.loads((folder / FAILED).read_text()).get("error", "")
        except (json.JSONDecodeError, AttributeError):
            error = f"see {folder / FAILED}"
        return RunState("failed", f"last attempt: {error}")
    if (folder / "checkpoint_last.pt").is_file():
        return RunState("partial", "resumes from checkpoint_last.pt")
    return RunState("todo")


def _unresumable(folder: Path) -> bool:
    """Run files beside neither a summary nor a checkpoint to resume from (a bare ``config.yaml`` starts fresh)."""
    from ..engine.trainer import RUN_FILES

    present = {name for name in RUN_FILES if (folder / name).is_file()}
    return bool(present) and not present & {SUMMARY, "checkpoint_last.pt"} and present != {"config.yaml"}


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


def _reuse_folders(value: Any, output: Path, where: str) -> list[Path]:
    """The ``reuse:`` list: other sweeps' output folders (one path or a list), never the sweep's own."""
    if value is None:
        return []
    paths = [value] if isinstance(value, str) else value
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
        raise ValueError(f"{where}: reuse must be a folder or a list of folders (other sweeps' outputs), got {value!r}")
    folders = [Path(p) for p in paths]
    if any(f.resolve() == output.resolve() for f in folders):
        raise ValueError(f"{where}: reuse names the sweep's own output {str(output)!r}; list other sweeps' outputs")
    return folders


TREND_NAME = re.compile(r"[A-Za-z0-9_-]+")  # names trend-<name>.md in the sweep folder


def check_levels(levels: Mapping[str, float], where: str) -> dict[str, float]:
    """A trend's levels ``{arm: x}`` as floats, checked: at least two, each x a number and used once; ``ValueError``
    naming ``where`` and what is wrong."""
    checked: dict[str, float] = {}
    for arm, x in levels.items():
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise ValueError(f"{where}: the level of arm {arm!r} must be a finite number, got {x!r}")
        checked[str(arm)] = float(x)
    if len(checked) < 2:
        raise ValueError(f"{where}: a trend needs at least 2 levels (ARM=X,ARM=X), got {dict(levels)!r}")
    if len(set(checked.values())) < len(checked):
        raise ValueError(f"{where}: two arms share one x in {dict(levels)!r}: each level needs its own value")
    return checked


def _report_metrics(value: Any, metric: str, where: str) -> list[str]:
    """The ``report_metrics:`` list: distinct summary metrics of the engine (:data:`CSV_KEYS`) other than ``metric``,
    each tabled in ``table-<key>.md`` (with the declared trends) whenever the sweep writes its table."""
    keys = [] if value is None else [value] if isinstance(value, str) else value
    if not isinstance(keys, list) or any(k not in CSV_KEYS or k == metric for k in keys) or len(set(keys)) < len(keys):
        raise ValueError(
            f"{where}: report_metrics must list distinct summary keys other than the metric {metric!r}, each one of "
            f"{', '.join(CSV_KEYS)}; got {value!r:.120}"
        )
    return list(keys)


def _trends(value: Any, arms: Sequence[str], where: str) -> dict[str, dict[str, float]]:
    """The ``trends:`` mapping: name -> {arm: x}, every arm one of the sweep's."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value.values()):
        raise ValueError(f"{where}: trends must map a name to {{arm: x, ...}}, got {value!r:.120}")
    trends = {}
    for name, levels in value.items():
        if not TREND_NAME.fullmatch(str(name)):
            raise ValueError(f"{where}: trend name {name!r} must be letters, digits, '-' or '_' (it names a file)")
        unknown = [arm for arm in levels if arm not in arms]
        if unknown:
            raise ValueError(f"{where}: trend {name!r} names {unknown}, not arms of the sweep; its arms: {list(arms)}")
        trends[str(name)] = check_levels(levels, f"{where}: trend {name!r}")
    return trends


def load_sweep(path: str | Path, extra_overrides: Sequence[str] = ()) -> Sweep:
    """Parse a sweep file; ``extra_overrides`` (``key=value``) are appended to its global overrides."""
    from ..recipes import find_recipe

    path = find_recipe(path, sweeps=True)
    raw = load_yaml(path, what="sweep file") or {}
    return sweep_from_dict(raw, source=path, extra_overrides=extra_overrides)


def _arm_name(name: Any, where: str) -> str:
    """An arm's name, checked to be one plain folder name: its runs go to ``<output>/<arm>/``, never elsewhere."""
    text = str(name)
    if not text or text.startswith(".") or text != text.strip() or any(c in text for c in "/\\\0:"):
        raise ValueError(
            f"{where}: arm name {text!r} must be a plain folder name (no '/', '\\', ':', not starting with '.'): "
            "its runs are written to <output>/<arm>/"
        )
    return text


def sweep_from_dict(raw: Mapping, source: Path | None = None, extra_overrides: Sequence[str] = ()) -> Sweep:
    where = str(source or "sweep")
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: a sweep file is a YAML mapping with 'arms', 'seeds' and 'output', got {raw!r:.80}")
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
        arm_base = None if spec.get("baseline") is None else str(spec["baseline"])
        arms.append(Arm(_arm_name(name, where), str(spec["recipe"]), overrides, arm_seeds, arm_base))
    names = [a.name for a in arms]
    baseline = str(raw.get("baseline", names[0]))
    if baseline not in names:
        raise ValueError(f"{where}: baseline {baseline!r} is not an arm; arms are {names}")
    for arm in arms:
        if arm.baseline is not None and (arm.baseline not in names or arm.baseline == arm.name):
            raise ValueError(
                f"{where}: arm {arm.name!r} has baseline {arm.baseline!r}, which must be another arm; arms are {names}"
            )
    seeds = _seed_list(raw["seeds"], where)
    ref = raw.get("reference_effect")
    output = Path(raw["output"])
    metric = str(raw.get("metric", "test_acc1"))
    return Sweep(
        name=str(raw.get("name", source.stem if source else "sweep")),
        output=output,
        arms=arms,
        seeds=list(seeds),
        baseline=baseline,
        metric=metric,
        overrides=_override_list(raw.get("overrides"), f"{where}: overrides") + list(extra_overrides),
        keep_checkpoints=_keep_checkpoints(raw.get("keep_checkpoints", False), where),
        reference_effect=None if ref is None else float(ref),
        launcher=_launcher_spec(raw.get("launcher"), where),
        source=source,
        reuse=_reuse_folders(raw.get("reuse"), output, where),
        trends=_trends(raw.get("trends"), names, where),
        report_metrics=_report_metrics(raw.get("report_metrics"), metric, where),
    )


def _launcher_spec(value: Any, where: str) -> str | dict | None:
    if value is None or isinstance(value, str) or (isinstance(value, Mapping) and "name" in value):
        return dict(value) if isinstance(value, Mapping) else value
    raise ValueError(f"{where}: 'launcher' must be a name (local:4) or a mapping with 'name', got {value!r}")


def parse_seeds(text: str) -> list[int]:
    """Seeds from ``"3-9"``, ``"0,2,5"`` or both (``"0-2,5"``), sorted and unique; ``ValueError`` naming the part it
    cannot read."""
    seeds: set[int] = set()
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high if dash else low)
        except ValueError:
            raise ValueError(f"seeds: expected N, N-M or a comma list of them (3-9, 0,2,5), got {part!r}") from None
        if first < 0 or last < first:
            raise ValueError(f"seeds: expected 0 <= N <= M in N-M, got {part!r}")
        seeds.update(range(first, last + 1))
    return sorted(seeds)


def format_seeds(seeds: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"`` (the inverse of :func:`parse_seeds`)."""
    ranges: list[list[int]] = []  # [first, last] of each run of consecutive seeds
    for seed in sorted(set(seeds)):
        if ranges and seed == ranges[-1][1] + 1:
            ranges[-1][1] = seed
        else:
            ranges.append([seed, seed])
    return ",".join(str(first) if first == last else f"{first}-{last}" for first, last in ranges)


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
        if seed in sweep.arm_seeds(arm.name)
    ]


def format_plan(runs: Sequence[Run], states: Sequence[RunState] | None = None) -> str:
    """One line per run: state, arm, seed, folder, overrides (and why a run is stale, broken, failed or
    interrupted)."""
    states = list(states) if states is not None else [run_state(r) for r in runs]
    lines = []
    for r, st in zip(runs, states, strict=True):
        line = f"[{st.state}] {r.arm:<20} seed={r.seed:<3} {r.output_dir}  {' '.join(r.overrides)}"
        shown = ("stale", "broken", "failed", "interrupted", "reusable")
        lines.append(line + (f"\n    {st.detail}" if st.state in shown else ""))
    names = ("done", "stale", "broken", "failed", "reusable")
    counts = {name: sum(st.state == name for st in states) for name in names}
    n_done = counts["done"]
    tail = "".join(f", {counts[k]} {k}" for k in ("stale", "broken", "failed") if counts[k])
    tail += f" ({counts['reusable']} of them copied from the reuse folders)" if counts["reusable"] else ""
    lines.append(f"{len(runs)} runs: {n_done} done, {len(runs) - n_done} to run{tail}")
    if counts["stale"] or counts["broken"]:
        lines.append("stale/broken runs are left out of every table; rerun them with --rerun-stale")
    return "\n".join(lines)


_loaded: dict[tuple[str, tuple[str, ...]], dict] | None = None  # within _loading_once(): configs read so far


@contextlib.contextmanager
def _loading_once() -> Iterator[None]:
    """While a sweep runs, each run's config is read and resolved once: the tables refreshed after every run plan
    the whole grid again, which costs a second per run of a 40-run sweep when every config is read anew."""
    global _loaded
    outer, _loaded = _loaded, {} if _loaded is None else _loaded
    try:
        yield
    finally:
        _loaded = outer


def _engine_load(recipe: str, overrides: Sequence[str]) -> dict:
    from ..engine import load_config

    if _loaded is None:
        return load_config(recipe, overrides)
    key = (recipe, tuple(overrides))
    if key not in _loaded:
        _loaded[key] = load_config(recipe, overrides)
    return copy.deepcopy(_loaded[key])  # a caller may change its copy


def _missing_data(config: dict) -> str:
    root = config["data"].get("root")
    if root is not None and not Path(root).exists():
        return f"data.root {root} does not exist (set it with --set data.root=DIR)"
    return ""


def _engine_check(config: dict) -> None:
    from ..engine.build import check_buildable

    check_buildable(config)


def _engine_resolve(config: dict) -> dict:
    from ..engine import resolve_config

    return resolve_config(config)


def _engine_train(config: dict, output_dir: Path) -> dict:
    from ..engine import train

    return train(config, output_dir, resume=True)  # a folder without run files starts fresh


def read_sweep_copy(folder: str | Path) -> Sweep:
    """The sweep that ``folder/sweep.yaml`` (the copy :func:`run_sweep` writes) describes, its output set to
    ``folder`` (the folder may have moved since the sweep ran); ``ValueError`` naming the file when it is damaged."""
    folder = Path(folder)
    try:
        sweep = sweep_from_dict(load_yaml(folder / SWEEP_COPY, what="sweep copy"), source=folder / SWEEP_COPY)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{folder / SWEEP_COPY} is damaged ({' '.join(str(err).split())})") from None
    return dataclasses.replace(sweep, output=folder)


def find_sweep_copy(folder: str | Path) -> Sweep | None:
    """:func:`read_sweep_copy` of a folder that may be a sweep's: ``None`` when it holds no ``sweep.yaml`` copy."""
    return read_sweep_copy(folder) if (Path(folder) / SWEEP_COPY).is_file() else None


def _is_sweep_folder(folder: Path) -> bool:
    """A sweep folder written before srblock listed the files it writes: its ``sweep.yaml`` is our copy."""
    try:
        doc = load_yaml(folder / SWEEP_COPY, what="sweep copy")
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and list(doc)[:4] == ["name", "output", "metric", "baseline"]


def check_sweep_outputs(root: Path, *names: str) -> None:
    """``FileExistsError`` before anything is written when ``root`` holds a file under a name the sweep writes
    (``names``, default: all of them) that srblock did not write (:func:`srblock.io.check_ours`), e.g. a table of
    the user's own. The files of a sweep folder of an older srblock (its ``sweep.yaml`` ours) are taken as ours."""
    every = [root / name for name in SWEEP_OUTPUTS] + sorted(root.glob("table-*.md"))
    if not (root / OWNED_NAME).exists() and _is_sweep_folder(root):
        mark_ours(*(p for p in every if p.is_file()))
    check_ours(*((root / name for name in names) if names else every))


def _write_output(path: Path, text: str) -> Path:
    """Write one of the sweep folder's own files (checked first, listed as ours as it is written)."""
    check_sweep_outputs(path.parent, path.name)
    return write_text(path, text, ours=True)


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
            a.name: {
                "recipe": a.recipe,
                "overrides": a.overrides,
                **({"seeds": a.seeds} if a.seeds else {}),
                **({"baseline": a.baseline} if a.baseline else {}),
            }
            for a in sweep.arms
        },
        **({"trends": sweep.trends} if sweep.trends else {}),
        **({"report_metrics": sweep.report_metrics} if sweep.report_metrics else {}),
    }
    _write_output(sweep.output / SWEEP_COPY, yaml.safe_dump(doc, sort_keys=False))


@dataclass
class Plan:
    """Every run of a sweep with its checked config and its state (:func:`plan_sweep`)."""

    runs: list[Run]
    configs: list[dict]
    states: list[RunState]
    warnings: list[str] = field(default_factory=list)

    def pending(self) -> list[tuple[Run, dict]]:
        return [(r, c) for r, c, st in zip(self.runs, self.configs, self.states, strict=True) if not st.finished]

    def format(self) -> str:
        return "\n".join([format_plan(self.runs, self.states), *(f"warning: {w}" for w in self.warnings)])


def plan_sweep(
    sweep: Sweep, *, load_fn: LoadFn | None = None, check: bool = True, need_data: bool = True, strict: bool = True
) -> Plan:
    """Load and check every run's config (all arms, before anything runs) and read each run folder's state.

    With the default ``load_fn`` (the engine's ``load_config``) each arm's model is also built on the meta device
    and its ``data.root`` looked up; recorded configs are resolved with ``resolve_config`` before they are compared.
    A custom ``load_fn`` is trusted as is and recorded configs are compared unresolved. Raises ``ValueError``
    naming every arm that cannot run. ``check=False`` (for reports) skips the model build and the data look-up;
    ``need_data=False`` (for ``--dry-run``) turns a missing data folder into a warning of the plan;
    ``strict=False`` (for reports of old folders) counts the finished runs of an arm whose config no longer loads
    as ``unchecked``, with a warning, instead of raising.
    """
    engine = load_fn is None
    load_fn = load_fn or _engine_load
    resolve = _engine_resolve if engine else dict
    runs = expand_grid(sweep)
    configs: list[dict] = []
    errors: dict[str, str] = {}
    warnings: list[str] = []
    checked: set[str] = set()
    for run in runs:
        try:
            config = load_fn(run.recipe, run.overrides)
            if engine and check and run.arm not in checked:
                missing = _missing_data(config)
                if missing and need_data:
                    raise FileNotFoundError(missing)
                if missing:
                    warnings.append(f"arm {run.arm!r}: {missing}; its runs would fail")
                _engine_check(config)
        except (ValueError, FileNotFoundError, TypeError) as err:
            errors.setdefault(run.arm, " ".join(str(err).split()))
            config = {}
        checked.add(run.arm)
        configs.append(config)
    if errors and strict:
        shown = "; ".join(f"arm {arm!r}: {message}" for arm, message in errors.items())
        raise ValueError(f"sweep {sweep.name}: {len(errors)} arm(s) cannot run, nothing was started: {shown}")
    states = []
    for run, config in zip(runs, configs, strict=True):
        if run.arm not in errors:
            state = run_state(run, config, resolve)
            source = _reuse_source(run, config, sweep.reuse, resolve) if state.state == "todo" else None
            states.append(RunState("reusable", f"copies the finished {source}", source=source) if source else state)
            continue
        state = run_state(run)
        if state.finished:
            state = RunState("unchecked", f"its arm's config does not load: {errors[run.arm]}", state.summary)
        states.append(state)
    warnings += [f"arm {arm!r}: not checked for staleness, its config does not load ({m})" for arm, m in errors.items()]
    return Plan(runs, configs, states, warnings)


def _reuse_source(run: Run, config: Mapping, folders: Sequence[Path], resolve: Callable[[dict], dict]) -> Path | None:
    """The first ``<folder>/<arm>/seed<N>`` of ``folders`` that holds a finished run whose recorded config trains
    like ``config`` (the test of a ``done`` run)."""
    for folder in folders:
        source = folder / run.arm / f"seed{run.seed}"
        if run_state(dataclasses.replace(run, output_dir=source), config, resolve).state == "done":
            return source
    return None


def _copy_reused(run: Run, source: Path) -> dict | None:
    """Copy the kept files of the finished run ``source`` into ``run``'s folder (claimed meanwhile), its summary last
    with ``reused_from``; ``None`` when another process holds the folder or finished the run."""
    with _claim(run.output_dir) as claimed:
        if not claimed or (run.output_dir / SUMMARY).is_file():
            return None
        for name in (n for n in KEPT_RUN_FILES if n != SUMMARY):  # the summary last: its presence makes the run done
            if (source / name).is_file():
                with atomic_open(run.output_dir / name, "wb") as f:
                    f.write((source / name).read_bytes())
        summary = {**read_summary(source / SUMMARY), "reused_from": str(source)}
        write_json(run.output_dir / SUMMARY, summary)
    return summary


def _move_stale(run: Run, sweep: Sweep, log: Callable[[str], None]) -> None:
    target = sweep.output / STALE_DIR / run.arm / f"seed{run.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(run.output_dir, target)
    except FileNotFoundError:  # another sweep process on the same grid moved it first
        return
    log(f"    moved the stale run {run.name} to {target}")


def _move_interrupted(run: Run, sweep: Sweep) -> None:
    """Move the files of a run that cannot resume (:func:`_unresumable`) out of its folder, which this process has
    claimed, into a new folder under ``<output>/.interrupted/``, so that the run starts again without losing them.
    Holds the run folder's own lock meanwhile: :class:`~srblock.io.FolderBusyError` while another process (a
    ``srblock train --resume``, a torchrun sweep) still writes there."""
    stamp = f"seed{run.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    with lock_folder(run.output_dir, what="run folder"):
        parent = sweep.output / INTERRUPTED_DIR / run.arm
        parent.mkdir(parents=True, exist_ok=True)
        target = Path(tempfile.mkdtemp(prefix=f"{stamp}-", dir=parent))  # a new folder, never an earlier one
        for entry in run.output_dir.iterdir():
            if entry.name not in (LOCK, LOCK_NAME):
                os.replace(entry, target / entry.name)
    _log.warning(
        "%s seed=%s had no checkpoint to resume from: its files are in %s; it starts again", run.arm, run.seed, target
    )


def _record_failure(run: Run, err: BaseException) -> None:
    message = " ".join(str(err).split()) or type(err).__name__
    doc = {"arm": run.arm, "seed": run.seed, "type": type(err).__name__, "error": message, "time": time.time()}
    write_json(run.output_dir / FAILED, doc)


def _claim(run_dir: Path, *, enabled: bool = True) -> contextlib.AbstractContextManager[bool]:
    """Hold ``run_dir/.sweep.lock`` while training (:func:`srblock.io.claim_folder`); yields False if another live
    process holds it. (The run's ``train`` then holds the run folder's own lock, so no other writer can enter.)"""
    if not enabled:
        run_dir.mkdir(parents=True, exist_ok=True)
        return contextlib.nullcontext(True)
    return claim_folder(run_dir, name=LOCK)


def execute_run(
    run: Run, *, sweep: Sweep, run_fn: RunFn, load_fn: LoadFn, budget: TimeBudget | None = None
) -> dict | Skipped | None:
    """One run of a sweep, wherever a launcher runs it: claim it, train, then (rank 0) parse ``summary.json``
    (written from ``run_fn``'s return value if it did not write one), drop the checkpoints the sweep does not keep
    and clear an earlier failure record. Returns the summary, ``None`` when another process has finished or is
    training this run, or :class:`Skipped` when it would not end within ``budget`` (then nothing is done here).
    A failure is recorded in the run's ``failed.json`` and raised."""
    # Several sweep processes may share a grid (e.g. one per CPU core): each run is claimed by one of them.
    # Under torchrun every rank must run the same list, so there the list stays as fixed at the start.
    single = int(os.environ.get("WORLD_SIZE", "1")) == 1
    if single and (run.output_dir / SUMMARY).is_file():
        return None
    if budget is not None and (refused := budget.refuses(run.output_dir)):
        return refused
    with _claim(run.output_dir, enabled=single) as claimed:
        if not claimed:
            return None
        if single and (run.output_dir / SUMMARY).is_file():  # finished by another process meanwhile
            return None
        if single and _unresumable(run.output_dir):
            try:
                _move_interrupted(run, sweep)
            except FolderBusyError:
                return None
        _log.info("%s seed=%s -> %s", run.arm, run.seed, run.output_dir)
        start = time.perf_counter()
        try:
            config = load_fn(run.recipe, run.overrides)
            with torch_settings_restored():  # a sweep process trains many runs: none may change the next
                summary = run_fn(config, run.output_dir) or {}
            if _rank() == 0:
                summary = _settle(run, summary, start, sweep)
        except Exception as err:
            if _rank() == 0:
                _record_failure(run, err)
            raise
        return {"wall_time_s": time.perf_counter() - start, **summary}


def _selection(sweep: Sweep, arms: Sequence[str] | None, seeds: Sequence[int] | None) -> Callable[[Run], bool]:
    """Check ``--arms`` / ``--seeds`` against the sweep's grid (one-line errors) and return the test a run passes
    when it is among them."""
    known = [a.name for a in sweep.arms]
    unknown = sorted(set(arms or ()) - set(known))
    if unknown:
        raise ValueError(f"unknown arm(s) {unknown} for sweep {sweep.name}; its arms are {known}")
    grid_seeds = sorted({run.seed for run in expand_grid(sweep)})
    if seeds is not None and not set(seeds) & set(grid_seeds):
        raise ValueError(f"sweep {sweep.name} has none of the seeds {format_seeds(seeds)}; its seeds are "
                         f"{format_seeds(grid_seeds)}")  # fmt: skip
    return lambda run: (arms is None or run.arm in arms) and (seeds is None or run.seed in seeds)


def _selection_words(arms: Sequence[str] | None, seeds: Sequence[int] | None) -> str:
    return (f" of the arms {', '.join(arms)}" if arms else "") + (
        f" of the seeds {format_seeds(seeds)}" if seeds is not None else ""
    )


@_loading_once()
def run_sweep(
    sweep: Sweep,
    *,
    run_fn: RunFn | None = None,
    load_fn: LoadFn | None = None,
    log: Callable[[str], None] = _log.info,
    after_run: Callable[[Run, dict], None] | None = None,
    keep_going: bool = False,
    rerun_stale: bool = False,
    launcher: Launcher | None = None,
    arms: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    budget: TimeBudget | None = None,
) -> list[Run]:
    """Check every arm, run every pending run of the grid, then aggregate (rank 0). Returns the runs executed now,
    as they finished.

    ``run_fn(config, output_dir) -> summary`` defaults to the engine's ``train`` (resuming from
    ``checkpoint_last.pt`` when present); ``load_fn(recipe, overrides) -> config`` to ``engine.load_config`` (see
    :func:`plan_sweep`). If ``run_fn`` does not write ``summary.json`` itself, the returned summary is written
    there; a summary is parsed before the run counts as done. ``after_run(run, summary)`` is called on rank 0
    after each finished run (e.g. to commit it). ``launcher`` (:func:`srblock.experiments.launchers.make_launcher`)
    runs the runs; default: one after another here. A launcher with worker processes needs picklable
    (module-level) ``run_fn``/``load_fn``.

    Stale or broken runs stop the sweep before anything runs unless ``rerun_stale`` (their folders are moved
    aside, see the module docstring). A run that raises stops the sweep with :class:`RunFailedError` naming it;
    with ``keep_going`` the failure is recorded in the run's ``failed.json``, the sweep goes on, and the returned
    list holds only the runs that succeeded (the failed ones are logged and left for the next invocation).
    ``arms``, ``seeds``: run only these arms, these seeds (the table still shows every run). ``budget``: start no run
    that is not expected to end by its deadline (:class:`srblock.experiments.budget.TimeBudget`; not under torchrun).
    The sweep runs the srblock code it started with (``srblock._modules``), whatever happens to the source meanwhile.
    """
    import_every_module()
    selected = _selection(sweep, arms, seeds)
    torchrun = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if budget is not None and torchrun:
        raise ValueError("a time budget could stop the ranks of a torchrun sweep at different runs; run it without")
    launcher = launcher or make_launcher()
    if launcher.name != "sequential" and torchrun:
        raise ValueError(f"the {launcher.name} launcher starts its own processes; run it without torchrun")
    plan = plan_sweep(sweep, load_fn=load_fn)
    _check_metric(sweep.metric, [st.summary for st in plan.states if st.summary])
    blocked = [(r, st) for r, st in zip(plan.runs, plan.states, strict=True) if st.blocked]
    if blocked and not rerun_stale:
        shown = "; ".join(f"{r.name}: {st.detail}" for r, st in blocked)
        raise ValueError(
            f"sweep {sweep.name}: {len(blocked)} finished run(s) do not match the sweep's settings (stale) or are "
            f"damaged, nothing was started: {shown}. Rerun them with --rerun-stale (their folders move to "
            f"{sweep.output / STALE_DIR}) or restore the settings they ran with"
        )
    if blocked and torchrun:
        raise ValueError("--rerun-stale moves run folders: run it once without torchrun")
    interrupted = [r.name for r, st in zip(plan.runs, plan.states, strict=True) if st.state == "interrupted"]
    if interrupted and torchrun:
        raise ValueError(
            f"sweep {sweep.name}: {len(interrupted)} run(s) left files but no checkpoint to resume from "
            f"({', '.join(interrupted)}): run the sweep once without torchrun, which moves them to "
            f"{sweep.output / INTERRUPTED_DIR}"
        )
    job = functools.partial(
        execute_run, sweep=sweep, run_fn=run_fn or _engine_train, load_fn=load_fn or _engine_load, budget=budget
    )
    runs = plan.runs
    # fixed now, so every torchrun rank runs the same list
    pending = [run for run, _ in plan.pending() if selected(run)]
    reusable = {run.name: st for run, st in zip(runs, plan.states, strict=True) if st.state == "reusable"}
    to_copy = [run for run in pending if run.name in reusable]
    pending = [run for run in pending if run.name not in reusable]

    def finished(run: Run, summary: dict) -> None:
        """A run trained or copied: the partial tables first, so ``after_run`` (a commit) finds them with the run."""
        report_tables(sweep.output, sweep=sweep, log=lambda _: None, load_fn=load_fn)
        if after_run is not None:
            after_run(run, summary)

    if _rank() == 0:
        check_sweep_outputs(sweep.output)  # before any write: a table of the user's own there stops the sweep
        trend_files = [f"trend-{name}{ext}" for name in sweep.trends for ext in (".md", ".png")]
        trend_files += [ROBUSTNESS_TABLE] if _scores_robustness(sweep) else []
        if trend_files:  # refreshed after every run: a file of the user's under one of their names stops it now
            check_sweep_outputs(sweep.output, *trend_files)
        for run, _ in blocked:
            _move_stale(run, sweep, log)
        _write_sweep_copy(sweep)
        for run in to_copy:
            source = reusable[run.name].source
            summary = _copy_reused(run, source)
            if summary is not None:
                log(f"{run.arm} seed={run.seed}: copied the finished run {source} (same config)")
                finished(run, summary)
    log(
        f"sweep {sweep.name}: {len(runs)} runs, {sum(st.finished for st in plan.states)} done"
        + (f", {len(to_copy)} copied from the reuse folders" if to_copy else "")
        + f", {len(pending)} to run"
        + _selection_words(arms, seeds)
        + (f" ({launcher.name} launcher, {launcher.workers or 'any number of'} at a time)" if pending else "")
    )
    executed: list[Run] = []
    failed: list[Run] = []
    not_started: list[Run] = []
    bar = progress(total=len(pending), desc=f"sweep {sweep.name}", unit="run", leave=True, enabled=_rank() == 0)
    # closing: stop workers on an error; sharing: runs trained in this process read their dataset once
    with bar, sharing_datasets(), contextlib.closing(launcher.launch(job, pending)) as outcomes:
        for i, (run, result) in enumerate(outcomes, 1):
            try:
                summary = result.result()
            except Exception as err:
                reason = " ".join(str(err).split()) or type(err).__name__
                message = f"sweep {sweep.name}: run {run.name} failed: {reason}"
                if not keep_going:
                    user_error = isinstance(err, (ValueError, FileNotFoundError, FileExistsError))
                    raise RunFailedError(message, exit_code=2 if user_error else 1) from err
                log(f"[{i}/{len(pending)}] FAILED, recorded in {run.output_dir / FAILED}; going on. {message}")
                failed.append(run)
                continue
            finally:
                bar.update()
            if summary is None:
                log(
                    f"[{i}/{len(pending)}] {run.arm} seed={run.seed}: done or being trained by another process, skipped"
                )
                continue
            if isinstance(summary, Skipped):
                not_started.append(run)
                if len(not_started) == 1:
                    log(f"[{i}/{len(pending)}] {run.arm} seed={run.seed}: not started, {summary.reason}")
                continue
            if _rank() == 0:
                value, wall = _metric_value(summary, sweep.metric), summary["wall_time_s"]
                shown = summary.get(sweep.metric) if value is None else f"{value:.6g}"
                log(f"[{i}/{len(pending)}] {run.arm} seed={run.seed} done: {sweep.metric}={shown} in {wall:.0f}s")
                finished(run, summary)
            executed.append(run)
    if _rank() == 0:
        if not_started:
            first = not_started[0]
            log(f"time budget: {len(not_started)} run(s) not started, from {first.arm} seed={first.seed} on")
        report_tables(sweep.output, sweep=sweep, log=log, load_fn=load_fn)
        if failed:
            log(f"{len(failed)} run(s) failed: {', '.join(r.name for r in failed)} (see their {FAILED})")
    return executed


def report_tables(
    root: str | Path,
    *,
    sweep: Sweep | None = None,
    log: Callable[[str], None] = _log.info,
    load_fn: LoadFn | None = None,
    baseline: str | None = None,
    metric: str | None = None,
) -> None:
    """The table of the runs under ``root`` (:func:`aggregate`) and the trends its sweep declares (``trends:``;
    without ``sweep``, those of the folder's ``sweep.yaml`` copy), as the runs stand now: for ``metric``, else for
    the sweep's metric and each of its ``report_metrics``. The runs are read once for all of them."""
    from .trend import report_trends  # trend.py reads sweeps with this module: imported here, not at the top

    sweep = sweep or find_sweep_copy(root)
    if sweep is not None:
        sweep = dataclasses.replace(sweep, output=Path(root))  # the folder may have moved since the sweep ran
    plan = report_plan(sweep, load_fn) if sweep is not None else None
    metrics = [metric] if metric is not None else [None, *(sweep.report_metrics if sweep is not None else [])]
    for key in metrics:
        aggregate(root, sweep=sweep, baseline=baseline, metric=key, log=log, load_fn=load_fn, plan=plan)
        if sweep is not None:
            for path in report_trends(root, sweep=sweep, metric=key, baseline=baseline, load_fn=load_fn, plan=plan):
                log(f"trend: {path}")
    if sweep is not None and _scores_robustness(sweep):
        done = [run.output_dir for run, st in zip(plan.runs, plan.states, strict=True) if st.finished]
        try:  # from the runs' summaries only: nothing is scored here
            robustness_sweep(
                root,
                baseline=baseline or sweep.baseline,
                planned=sweep.planned_seeds(),
                run_dirs=done,
                log=lambda _: None,
            )
        except (FileNotFoundError, ValueError) as err:  # no run has its numbers yet, or the baseline none: later
            log(f"robustness: {ROBUSTNESS_TABLE} not written yet: {err}")
        else:
            log(f"robustness: {Path(root) / ROBUSTNESS_TABLE}")


def _scores_robustness(sweep: Sweep) -> bool:
    """Whether the sweep tables the corruption benchmark (``test_corruption_acc1`` its metric or a report metric):
    then ``robustness.md`` (clean, mCA and drop, paired) is refreshed with every table."""
    return "test_corruption_acc1" in (sweep.metric, *sweep.report_metrics)


def report_plan(sweep: Sweep, load_fn: LoadFn | None = None) -> Plan:
    """The plan the tables read (:func:`plan_sweep` without the model build and data look-up, old arms tolerated)."""
    return plan_sweep(sweep, load_fn=load_fn, check=False, strict=False)


def _time_left(plan: Plan, latency: dict | None = None) -> str | None:
    """How long the plan's runs still to train would take: each at the median ``wall_time_s`` of its arm's finished
    runs (a partial run counted whole; a reusable one costs nothing), and at the fastest of them where that is less:
    wall times grow when runs share the machine, so the fastest says what a quiet machine needs. Where that leaves
    out arms without runs, or an arm's only runs were slow, every run left at the sweep's fastest run is given too;
    with the sweep's ``latency.json`` (``--time-arms``, measured at that run's batch size) also each run left at the
    fastest run plus its steps times the difference of its arm's training step from that run's arm's (CBAM's step
    is 1.8× the bare network's on the CPU). A run to be copied (``reusable``) counts as a finished run of its arm at
    its twin's wall time, so a sweep that reuses another's runs has that estimate before its first run. ``None``
    when nothing is left to train."""
    times: dict[str, list[float]] = {}
    fastest_run: tuple[float, str, dict] | None = None  # wall time, arm, summary of the sweep's fastest run
    for run, st in zip(plan.runs, plan.states, strict=True):
        summary = st.summary if st.finished else _twin_summary(st) if st.state == "reusable" else None
        if isinstance((summary or {}).get("wall_time_s"), (int, float)):
            times.setdefault(run.arm, []).append(float(summary["wall_time_s"]))
            if fastest_run is None or summary["wall_time_s"] < fastest_run[0]:
                fastest_run = (float(summary["wall_time_s"]), run.arm, summary)
    left = [
        run.arm for run, st in zip(plan.runs, plan.states, strict=True) if not st.finished and st.state != "reusable"
    ]
    if not left:
        return None
    known = [arm for arm in left if arm in times]
    unknown = len(left) - len(known)
    if not times:
        return f"time left: not known yet, none of the {unknown} run(s) to train has an arm with a finished run"
    # an arm with one slow run (a screen that shared the machine) says little: the sweep's fastest run, same protocol
    floor = fastest_run[0]
    at_floor = f"all {len(left)} at the sweep's fastest run ({floor:.0f} s): {_duration(floor * len(left))}"
    if (stepped := _stepped_time_left(left, fastest_run, latency)) is not None:
        at_floor += f", {_duration(stepped)} with each arm's training step from {LATENCY_FILE}"
    if not known:
        return f"time left: none of the {unknown} run(s) to train has an arm with a finished run; {at_floor}"
    median = sum(float(np.median(times[arm])) for arm in known)
    fastest = sum(min(times[arm]) for arm in known)
    text = f"time left: about {_duration(median)} of run time for {len(known)} run(s), at the median of their "
    text += "arm's finished runs (partial runs counted whole)"
    if fastest < 0.95 * median:
        text += f", {_duration(fastest)} at the fastest (runs that shared the machine took longer)"
    text += f"; {unknown} run(s) of arms without a finished run not counted" if unknown else ""
    if unknown or floor * len(known) < 0.95 * fastest:
        text += f"; {at_floor}"
    return text


def _stepped_time_left(left: list[str], fastest_run: tuple[float, str, dict], latency: dict | None) -> float | None:
    """The runs of ``left`` (their arms) each at the fastest run's wall time plus its ``steps`` times the arm's
    training step less that run's arm's (``latency.json``'s ``train_ms``); ``None`` without a latency file measured
    at the fastest run's batch size for every arm involved, or when it changes the sum by under 5 %."""
    floor, floor_arm, summary = fastest_run
    batch = (summary.get("config") or {}).get("train", {}).get("batch_size")
    if latency is None or latency.get("batch") != batch or not isinstance(summary.get("steps"), int):
        return None
    step_ms = {arm: timed.get("train_ms") for arm, timed in latency.get("arms", {}).items()}
    if not all(isinstance(step_ms.get(arm), (int, float)) for arm in {floor_arm, *left}):
        return None
    total = sum(floor + summary["steps"] * (step_ms[arm] - step_ms[floor_arm]) / 1000 for arm in left)
    return total if abs(total - floor * len(left)) >= 0.05 * floor * len(left) else None


def _read_latency(root: Path) -> dict | None:
    """The sweep folder's ``latency.json`` (:mod:`srblock.experiments.latency`), ``None`` where there is none."""
    path = Path(root) / LATENCY_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _twin_summary(state: RunState) -> dict | None:
    """The summary of a reusable run's finished twin (``None`` if it no longer parses)."""
    try:
        return read_summary(state.source / SUMMARY)
    except (OSError, ValueError):
        return None


def _duration(seconds: float) -> str:
    """``seconds`` in hours, minutes or seconds, one decimal for hours."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _settle(run: Run, summary: dict, start: float, sweep: Sweep) -> dict:
    """After ``run_fn``: a parsed ``summary.json`` (written from ``summary`` if the run function did not), then the
    checkpoints the sweep does not keep are removed and a failure record of an earlier attempt is cleared."""
    summary_path = run.output_dir / SUMMARY
    if not summary_path.is_file():
        write_json(summary_path, {"seed": run.seed, "wall_time_s": time.perf_counter() - start, **summary}, default=str)
    summary = read_summary(summary_path)
    for ckpt in run.output_dir.glob("checkpoint_*.pt"):
        if sweep.keep_checkpoints is True or (sweep.keep_checkpoints == "best" and ckpt.stem.endswith("best")):
            continue
        ckpt.unlink()
    (run.output_dir / FAILED).unlink(missing_ok=True)
    return summary


# --------------------------------------------------------------------------------------------------- aggregation


def _load_summaries(root: Path, plan: Plan | None) -> tuple[list[dict], list[str]]:
    """Rows ``{arm, seed, run_dir, summary}`` of every finished run under ``root`` (arms in sweep order), and one
    line for each run left out (stale, broken). With a ``plan`` only its ``done`` runs count; without one every
    ``<arm>/seed<N>/summary.json`` that parses does (staleness cannot be judged without the sweep)."""
    rows, left_out = [], []
    if plan is not None:
        arm_names = list(dict.fromkeys(r.arm for r in plan.runs))
        for run, st in zip(plan.runs, plan.states, strict=True):
            if st.finished:
                rows.append({"arm": run.arm, "seed": run.seed, "run_dir": run.output_dir, "summary": st.summary})
            elif st.blocked:
                left_out.append(f"`{run.name}` ({st.state}: {st.detail})")
    else:
        dirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        arm_names = sorted(p.name for p in dirs if any(p.glob(f"*/{SUMMARY}")))
        for arm in arm_names:
            for path in sorted((root / arm).glob(f"*/{SUMMARY}")):
                try:
                    summary = read_summary(path)
                except ValueError as err:
                    left_out.append(f"`{arm}/{path.parent.name}` (broken: {err})")
                    continue
                seed = summary.get("seed")
                if seed is None:
                    name = path.parent.name
                    seed = int(name.removeprefix("seed")) if name.removeprefix("seed").isdigit() else name
                rows.append({"arm": arm, "seed": seed, "run_dir": path.parent, "summary": summary})
    rows.sort(key=lambda r: (arm_names.index(r["arm"]), str(r["seed"]).zfill(6)))
    return rows, left_out


def finished_scores(
    folder: str | Path,
    *,
    metric: str | None = None,
    load_fn: LoadFn | None = None,
    sweep: Sweep | None = None,
    plan: Plan | None = None,
) -> tuple[Sweep, list[dict], dict, list[str]]:
    """A sweep folder's finished runs as the tables count them: its sweep (default: the ``sweep.yaml`` copy), the
    rows of :func:`_load_summaries`, ``{arm: {seed: metric}}`` over the sweep's arms, and one line per run left out
    (stale, broken, or without a number for the metric). ``metric`` (default: the sweep's) must be a number in the
    runs' ``summary.json``. ``load_fn`` loads a recipe for the staleness check (default: the engine's
    ``load_config``); ``plan`` is that sweep's :func:`report_plan` when the caller has made it already."""
    sweep = dataclasses.replace(sweep or read_sweep_copy(folder), output=Path(folder))
    plan = plan or report_plan(sweep, load_fn)
    rows, left_out = _load_summaries(sweep.output, plan)
    if metric is None:
        metric = sweep.metric
    else:
        _check_metric(metric, [r["summary"] for r in rows])
    scores: dict[str, dict[int, float]] = {a.name: {} for a in sweep.arms}
    for r in rows:  # a finished run without the metric (NaN: written as null) cannot be paired: named, not counted
        value = _metric_value(r["summary"], metric)
        if value is None:
            left_out.append(_no_number(r, metric))
        else:
            scores[r["arm"]][r["seed"]] = value
    return sweep, rows, scores, left_out


def _metric_value(summary: Mapping, metric: str) -> float | None:
    """A run's ``metric`` as a float; ``None`` where it is not a finite number (a diverged run's NaN, written as
    null, or a key the run lacks)."""
    value = summary.get(metric)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _no_number(row: Mapping, metric: str) -> str:
    shown = json.dumps(row["summary"].get(metric, "absent"))
    return f"`{row['arm']}/seed{row['seed']}` (no number for {metric} in its summary.json: {shown})"


def _check_metric(metric: str, summaries: Sequence[Mapping]) -> None:
    """``ValueError`` unless ``metric`` is a number in a finished run's summary (before any run finished: a key the
    engine's summaries hold)."""
    numeric = {k for s in summaries for k, v in s.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    known = sorted(numeric if summaries else CSV_KEYS)
    if metric not in known:
        close = difflib.get_close_matches(metric, known, n=2)
        hint = f"did you mean {' or '.join(map(repr, close))}?" if close else f"numeric keys: {', '.join(known)}"
        raise ValueError(f"metric {metric!r} is not a number in the runs' summary.json; {hint}")


def _check_baseline(baseline: str | None, arms: Sequence[str]) -> None:
    if baseline is not None and arms and baseline not in arms:
        raise ValueError(f"baseline {baseline!r} is not an arm; arms are {list(arms)}")


def _length(summary: Mapping) -> str:
    """The run's length as trained: ``N epochs`` or ``N iterations`` (from the summary or its config)."""
    if summary.get("steps") is not None and summary.get("epochs") is not None:
        return f"{summary['steps']} iterations ({summary['epochs']:g} epochs)"
    train = (summary.get("config") or {}).get("train") or {}
    if train.get("epochs"):
        return f"{train['epochs']} epochs"
    return f"{train['iterations']} iterations" if train.get("iterations") else ""


def _ran_on(summary: Mapping) -> str:
    """Where a run's ``wall_time_s`` was measured: its GPU, or the CPU with the threads it trained on."""
    if summary.get("gpu"):
        return str(summary["gpu"])
    threads = summary.get("cpu_threads")
    if threads is None:
        return "CPU, threads not recorded"
    return f"CPU, {threads} thread" + ("" if threads == 1 else "s")


def aggregate(
    root: str | Path,
    *,
    sweep: Sweep | None = None,
    baseline: str | None = None,
    metric: str | None = None,
    reference_effect: float | None = None,
    seeds: Sequence[int] | None = None,
    log: Callable[[str], None] = _log.info,
    load_fn: LoadFn | None = None,
    plan: Plan | None = None,
) -> str:
    """Write ``results.csv`` (one row per finished run) and ``table.md`` (per arm) into ``root``; return the table.

    Without ``sweep``, ``root/sweep.yaml`` (written by :func:`run_sweep`) supplies arms, baseline and metric when
    present; otherwise every sub-folder with finished runs is an arm. ``baseline``/``metric``/``reference_effect``
    override the sweep's values (checked: an unknown arm or summary key is a ``ValueError``). A ``metric`` other
    than the sweep's own (e.g. ``test_acc1_last``, arms compared at matched epochs) is tabled in
    ``table-<metric>.md``, leaving the sweep's ``table.md`` and ``results.csv`` as they are. With a sweep, stale
    and broken runs (:func:`run_state`, configs from ``load_fn``) are listed under the table, never in it.
    ``seeds`` tables only the runs of those seeds (e.g. fresh seeds that played no part in choosing the arms), in
    ``table[-<metric>]-seeds<N-M>.md``. ``plan``: the sweep's :func:`report_plan`, when the caller has made it.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no sweep output folder at {root} (expected <output>/<arm>/seed<N>/summary.json)")
    from_copy = sweep is None and (root / SWEEP_COPY).is_file()
    if from_copy:
        sweep = read_sweep_copy(root)
    if sweep is not None:
        sweep = dataclasses.replace(sweep, output=root)  # the folder may have moved since the sweep ran
    primary = sweep.metric if sweep else "test_acc1"
    metric = metric or primary
    if sweep is not None and plan is None:
        plan = report_plan(sweep, load_fn)
    rows, left_out = _load_summaries(root, plan)
    if seeds is not None:
        rows = [r for r in rows if r["seed"] in set(seeds)]
    arms = [a.name for a in sweep.arms] if sweep else sorted({r["arm"] for r in rows})
    _check_baseline(baseline, arms)
    baseline = baseline or (sweep.baseline if sweep else (arms[0] if arms else None))
    if rows:
        _check_metric(metric, [r["summary"] for r in rows])
    if reference_effect is None and sweep is not None:
        reference_effect = sweep.reference_effect

    if metric == primary and seeds is None:
        _write_results_csv(root, rows, metric)

    by_seed: dict[str, dict] = {a: {} for a in arms}
    not_numbers = []  # runs that hold the metric, but not as a finite number (diverged): named under the table
    for r in rows:
        value = _metric_value(r["summary"], metric)
        if value is None:
            if metric in r["summary"]:
                not_numbers.append(_no_number(r, metric))
        elif r["arm"] in by_seed:
            by_seed[r["arm"]][r["seed"]] = value
    values = {a: list(by_seed[a].values()) for a in arms}
    extras = {a: [r["summary"] for r in rows if r["arm"] == a] for a in arms}
    own = sweep is not None and any(a.baseline for a in sweep.arms)  # an arm names its own control: a 'vs' column
    versus = sweep.controls(baseline) if sweep is not None else {a: baseline for a in arms}
    all_vals = [v for vs in values.values() for v in vs]
    digits = 4 if all_vals and max(abs(v) for v in all_vals) <= 1.0 else 2  # fractions vs percent
    ref_col = reference_effect is not None
    header = ["arm", *(["vs"] if own else []), "n", f"{metric} mean ± std", "95 % CI"]
    header += ["Δ" if own else f"Δ vs {baseline}", "Δ 95 % CI (paired)"]
    header += ["Δ 95 % CI (Welch)", "p (Welch)", "p (paired, n)", "p (paired, Holm)", "p (sign, wins/n)"]
    header.append("seeds for Δ (80 %)")
    if ref_col:
        header.append(f"seeds for Δ={reference_effect:g} (80 %)")
    header += ["routing entropy", "memory ratio", "params", "SR params", "MFLOPs/image", "time/run (s)"]
    latency = _read_latency(root)
    if latency is not None:
        header += ["train step ×", "inference ×"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    # the family Holm's adjustment covers: every arm whose paired p the table shows (not the baseline, not a screen)
    pairs = {a: paired_ttest(by_seed[versus[a]], by_seed[a]) for a in arms if a != baseline}
    family = [a for a, r in pairs.items() if len(values[a]) > SCREEN_SEEDS and r.n >= 2 and not math.isnan(r.p)]
    holm = dict(zip(family, holm_adjust([pairs[a].p for a in family]), strict=True))
    screens, partial = [], []
    for arm in arms:
        s = summarize(values[arm])
        control = versus[arm]
        base_vals = values.get(control, [])
        is_base = arm == baseline
        planned = len([k for k in sweep.arm_seeds(arm) if seeds is None or k in seeds]) if sweep is not None else 0
        screen, short, marks = arm_marks(s.n, planned, baseline=is_base)
        if screen:
            screens.append(arm)
        if short:
            partial.append(f"`{arm}` {s.n} of {planned}")
        w = welch_ttest(base_vals, values[arm]) if not is_base else None
        pair = pairs.get(arm)
        pooled = math.sqrt((s.std**2 + summarize(base_vals).std ** 2) / 2) if not is_base else s.std
        need = "–"
        if not screen and w is not None and not math.isnan(pooled) and pooled > 0 and not math.isnan(w.delta):
            need = _seeds_text(required_seeds(w.delta, pooled))
        cells = [
            f"`{arm}`" + marks,
            *([("–" if is_base else f"`{control}`")] if own else []),
            str(s.n),
            f"{format_number(s.mean, digits)} ± {format_number(s.std, digits)}",
            f"[{format_number(s.ci_low, digits)}, {format_number(s.ci_high, digits)}]",
            "–" if is_base or math.isnan(w.delta) else f"{w.delta:+.{digits}f}",  # nan: an arm without runs yet
            "–" if is_base else format_interval(pair.ci_low, pair.ci_high, digits),
            "–" if is_base else format_interval(w.ci_low, w.ci_high, digits),
            "–" if is_base or screen else format_p(w.p),
            "–" if is_base or screen else format_paired(pair),
            format_p(holm[arm]) if arm in holm else "–",
            "–" if is_base or screen else format_sign(sign_test(by_seed[control], by_seed[arm])),
            need,
        ]
        if ref_col:
            ok = not screen and not math.isnan(pooled) and pooled > 0
            cells.append(_seeds_text(required_seeds(reference_effect, pooled)) if ok else "–")
        ex = extras[arm]
        params = {e.get("params") for e in ex} - {None}
        sr = {e.get("sr_params") for e in ex} - {None}
        times = [float(e["wall_time_s"]) for e in ex if "wall_time_s" in e]
        models = {json.dumps((e.get("config") or {}).get("model"), sort_keys=True) for e in ex}
        flops = {_forward_mflops(m) for m in models} - {None}
        cells += [
            _dynamics_text(ex, "routing_entropy"),
            _dynamics_text(ex, "memory_ratio"),
            ", ".join(f"{p:,}" for p in sorted(params)) or "–",
            ", ".join(f"{p:,}" for p in sorted(sr)) or "–",
            ", ".join(f"{f:,.1f}" for f in sorted(flops)) or "–",
            f"{sum(times) / len(times):.0f}" if times else "–",
        ]
        if latency is not None:
            timed = latency["arms"].get(arm)
            cells += [f"{timed[mode]:.2f}" if timed else "–" for mode in ("train", "eval")]
        lines.append("| " + " | ".join(cells) + " |")
    lengths = sorted({_length(r["summary"]) for r in rows} - {""})
    reused = sum("reused_from" in r["summary"] for r in rows)
    notes = [
        "",
        f"{len(rows)} finished runs under `{root}`"
        + (f", trained for {'; '.join(lengths)}" if lengths else "")
        + "."
        + (f" Seeds {format_seeds(seeds)} only (`--seeds`)." if seeds is not None else "")
        + (f" {reused} of them copied from another sweep's runs of the same config (`reuse:`)." if reused else ""),
        (
            "Δ = mean(arm) − mean(its `vs` arm, the control the sweep file names for it; else "
            f"`{baseline}`), and every test below compares the arm with that control"
            if own
            else f"Δ = mean(arm) − mean({baseline})"
        )
        + "; p: two-sided Welch t-test, `scipy.stats.ttest_ind(arm, baseline, equal_var=False)`; 95 % CI: t-interval "
        "of the mean.",
        "Δ 95 % CI (paired): t-interval of the mean per-seed difference over the seeds both arms ran (centred off Δ "
        "while one arm has seeds the other lacks); (Welch): the Welch interval around Δ. An interval without 0 is "
        "that test's p < 0.05.",
        "p (paired, n): two-sided paired t-test over the n seeds both arms ran (`scipy.stats.ttest_rel`); seed k of "
        "two arms shares the split, data order, augmentation and the initial weights of every common layer.",
        f"p (paired, Holm): the paired p adjusted by Holm's step-down method over the {len(family)} arm(s) with a "
        "paired p in this table (`srblock.analysis.stats.holm_adjust`): read it, not the raw p, when picking the best "
        "of several arms; below 0.05 keeps the chance of any false positive among them under 5 %.",
        "p (sign, wins/n): exact two-sided sign test over the same pairs (`scipy.stats.binomtest`), wins = seeds where "
        "the arm beat the baseline; it does not rest on the spread of the differences.",
        "Seeds for Δ: seeds per arm for 80 % power at α = 0.05 (two-sided Welch test) if the true difference were "
        "the observed Δ (or the reference Δ), with the two arms' pooled per-seed std.",
        "Routing entropy (1 = uniform over the P memories, 0 = one memory per image) and memory ratio (RMS of the "
        "recalled memory / RMS of the block's input) at the last validation pass, mean over the runs (`sr_dynamics` "
        "of summary.json; one value per SR block). MFLOPs/image: one forward pass of one image in eval mode "
        "(`torch.utils.flop_counter`, 2 FLOPs per multiply-accumulate; element-wise work not counted), the model "
        "built from the runs' config on the meta device.",
    ]
    ran_on = Counter(_ran_on(r["summary"]) for r in rows if "wall_time_s" in r["summary"])
    notes.append(
        "Time/run: the mean `wall_time_s` of the arm's runs, training and evaluation; it depends on the machine, its "
        "load and the threads a run had, so it compares arms only where they ran alike"
        + ("; `train step ×` times them in turn" if latency is not None else "")
        + "."
        + (
            " These runs ran on: " + "; ".join(f"{where} ({n})" for where, n in sorted(ran_on.items())) + "."
            if len(ran_on) > 1
            else ""
        )
    )
    if latency is not None:
        notes.append(
            "Train step × and inference ×: the arm's time over its control's, the median over "
            f"{latency['repeats']} rounds in which every arm's network (built from its config) ran one SGD step and "
            f"one inference forward at batch {latency['batch']} in turn (`{LATENCY_FILE}`: {latency['device']}, "
            f"{latency['threads']} thread(s), torch {latency['torch']}; `srblock sweep -c SWEEP --time-arms`)."
        )
    if screens:
        notes.append(
            f"(screen): {len(screens)} arm(s) with {SCREEN_SEEDS} seeds or fewer; Δ and its intervals are shown, "
            "p-values and seed counts are not (too few runs to read one)."
        )
    if partial:
        notes.append(
            f"(partial): {len(partial)} arm(s) holding fewer of the sweep's seeds than it plans "
            f"({', '.join(partial)}): their tests are interim; the reading is the one with every seed."
        )
    if not_numbers:
        notes.append(f"Not counted ({len(not_numbers)}, diverged or unscored): " + "; ".join(not_numbers))
    if left_out:
        how = "rerun with --rerun-stale"
        if from_copy:  # the copy names recipes, whose defaults may have moved on since the runs
            how = (
                f"against the recipes as they are now: report with -c SWEEP where its file pins what they ran, or {how}"
            )
        notes.append(f"Left out of this table ({len(left_out)}; {how}): " + "; ".join(left_out))
    if plan is not None and plan.warnings:
        notes.append("Warning: " + "; ".join(plan.warnings))
    table = "\n".join(lines + notes) + "\n"
    name = "table" if metric == primary else f"table-{metric}"
    if seeds is not None:
        name += f"-seeds{format_seeds(seeds).replace(',', '_')}"
    _write_output(root / f"{name}.md", table)
    log(table)
    return table


def _write_results_csv(root: Path, rows: Sequence[Mapping], metric: str) -> None:
    """``results.csv``: one row per finished run, the compared ``metric`` first, then every known summary metric and
    what the run's wall time was measured on (:data:`RUN_KEYS`)."""
    keys = [k for k in CSV_KEYS + RUN_KEYS if any(k in r["summary"] for r in rows)]
    if metric not in keys:
        keys.insert(0, metric)
    check_sweep_outputs(root, "results.csv")
    with atomic_open(root / "results.csv", newline="", ours=True) as f:
        writer = csv.writer(f)
        writer.writerow(["arm", "seed", "metric", "value", *keys, "run_dir"])
        for r in rows:
            s = r["summary"]
            rel = os.path.relpath(r["run_dir"], root)
            writer.writerow([r["arm"], r["seed"], metric, s.get(metric, ""), *(s.get(k, "") for k in keys), rel])


def analyze_sweep_runs(root: str | Path, *, log: Callable[[str], None] = _log.info) -> list[Path]:
    """For every finished run under ``root`` that kept a checkpoint (best, else last): the top-1 predictions of a
    classifier on the test split (``<run>/predictions_test.npz``, for :func:`report_sweep_noise`) and, for SR runs,
    :func:`srblock.analysis.report.analyze_checkpoint` on the test split (``<run>/analysis_test``); each is made
    once. Returns the paths written."""
    from ..analysis.report import analyze_checkpoint, predict_checkpoint

    written = []
    for summary_path in sorted(Path(root).glob(f"*/*/{SUMMARY}")):
        run = summary_path.parent
        checkpoint = kept_checkpoint(run)
        if checkpoint is None:
            continue
        summary = json.loads(summary_path.read_text())
        classifier = (summary.get("config") or {}).get("task", "classification") == "classification"
        if classifier and not (run / RUN_PREDICTIONS).is_file():
            log(f"predict {checkpoint} (test split)")
            predictions, labels = predict_checkpoint(checkpoint, split="test")
            with atomic_open(run / RUN_PREDICTIONS, "wb") as f:
                np.savez_compressed(
                    f,
                    predictions=predictions.numpy().astype(np.int16),
                    labels=labels.numpy().astype(np.int16),
                    checkpoint=np.array(checkpoint.name),
                )
            acc = 100.0 * float((predictions == labels).double().mean())
            recorded = summary.get("test_acc1") if checkpoint.name == "checkpoint_best.pt" else None
            if recorded is not None and abs(acc - recorded) > 0.005:
                log(f"warning: {checkpoint} scores {acc:.2f} % on test now, its summary says {recorded}")
            written.append(run / RUN_PREDICTIONS)
        if summary.get("sr_params") and not (run / RUN_ANALYSIS).is_file():
            log(f"analyze {checkpoint} (test split)")
            analyze_checkpoint(checkpoint, split="test", output_dir=run / RUN_ANALYSIS.parent)
            written.append(run / RUN_ANALYSIS.parent)
    return written


def report_sweep_noise(root: str | Path, baseline: str | None = None) -> Path | None:
    """``<root>/noise.md``: per arm, how much of its seed-to-seed spread in test top-1 the finite test set explains
    (:func:`srblock.analysis.stats.seed_noise` over the runs' ``predictions_test.npz``, see
    :func:`analyze_sweep_runs`), and how many test images an arm scores differently from the ``baseline`` arm
    (default: ``<root>/sweep.yaml``'s) at the same seed; ``None`` when no arm has two runs with predictions."""
    root = Path(root)
    if baseline is None and (root / SWEEP_COPY).is_file():
        baseline = (load_yaml(root / SWEEP_COPY, what="sweep copy") or {}).get("baseline")
    arms: dict[str, dict[str, np.ndarray]] = {}
    labels: np.ndarray | None = None
    for path in sorted(root.glob(f"*/*/{RUN_PREDICTIONS}")):
        with np.load(path) as data:
            if labels is None:
                labels = data["labels"]
            elif not np.array_equal(data["labels"], labels):
                raise ValueError(
                    f"{path} scores other test labels than the sweep's first run (it holds {len(data['labels'])} "
                    f"images, the first {len(labels)}): the runs under {root} must share one test set"
                )
            arms.setdefault(path.parent.parent.name, {})[path.parent.name] = data["predictions"] == labels

    def paired(arm: str) -> str:
        """Mean % of test images the arm and the baseline score differently over the seeds both ran, and the
        correlation of their accuracies over those seeds (what pairing by seed can remove from a difference)."""
        common = sorted(set(arms[arm]) & set(arms.get(baseline or "", {})))
        if arm == baseline or not common:
            return "– | –"
        differ = [100.0 * float((arms[arm][s] != arms[baseline][s]).mean()) for s in common]
        acc = np.array([[arms[a][s].mean() for s in common] for a in (arm, baseline)])
        r = "–" if len(common) < 3 or min(acc.std(axis=1)) == 0 else f"{np.corrcoef(acc)[0, 1]:+.2f}"
        return f"{np.mean(differ):.1f} % | {r} ({len(common)})"

    rows = [(arm, seed_noise(np.stack(list(runs.values())))) for arm, runs in arms.items() if len(runs) >= 2]
    if not rows:
        return None
    blocks = ""
    base_seeds = sorted(arms.get(baseline or "", {}))
    full = [a for a, runs in arms.items() if set(base_seeds) <= set(runs)] if len(base_seeds) >= 2 else []
    if len(full) >= 2:  # the arms that ran every seed of the baseline: seeds as blocks
        effect = seed_effect([[100.0 * float(arms[a][s].mean()) for s in base_seeds] for a in full])
        blocks = (
            f"Seeds as blocks, over the {effect.arms} arms that ran all {effect.seeds} of the baseline's seeds "
            f"({', '.join(full)}): the seed explains {100 * effect.share:.0f} % of the per-run variance of test "
            f"top-1 (two-way ANOVA, F = {effect.f:.2f}, p = {format_p(effect.p)}).\n"
        )
    lines = [
        "| arm | runs | test top-1 | std | flip std | rest std | disagreement | vs baseline, same seed | seed r (n) |",
        "|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {arm} | {r.runs} | {r.mean:.2f} | {r.std:.2f} | {r.flip_std:.2f} | {r.rest_std:.2f} | "
            f"{r.disagreement:.1f} % | {paired(arm)} |"
            for arm, r in rows
        ),
        "",
        f"Test top-1 of each run's kept checkpoint over {len(labels):,} test images (percent, std in pp; "
        "`srblock sweep --report DIR --analyze`). flip std: the seed-to-seed std that test examples flipping "
        "independently at their own rate over the runs would give (Jordan 2023, arXiv 2304.01910); rest std: "
        "√(std² − flip std²), the spread shared by all examples (a whole run better or worse); disagreement: mean "
        "share of test images that two runs of the arm score differently (one right, one wrong); vs baseline: the "
        f"same share between the arm and `{baseline}` at the same seed — below the disagreement by what pairing by "
        "seed shares; seed r: the correlation over the n common seeds of the arm's and the baseline's top-1 "
        "(a paired difference has variance σ₁² + σ₂² − 2rσ₁σ₂, so pairing gains power only where r > 0). "
        "A flip std near the std means more seeds, not a quieter protocol, is what narrows a comparison at this "
        "accuracy; a large rest std means the runs themselves differ.",
        "",
        *([blocks] if blocks else []),
    ]
    return _write_output(root / "noise.md", "\n".join(lines))


def _analysis_values(run: Path) -> dict[str, float]:
    """A run's analysis (``<run>/analysis_test``) as dynamics-table cells: per SR block the relative η² gain of the
    trained routing over its norm-matched init, the top-1 points the SR blocks add (with SR − SR removed), and the
    part of them the per-input routing adds (with SR − the routing fixed to its mean weights)."""
    path = run / RUN_ANALYSIS
    if not path.is_file():
        return {}
    analysis = json.loads(path.read_text())
    ablation = analysis.get("ablation") or {}
    out = {}
    for block, result in analysis.get("blocks", {}).items():
        control = result.get("routing_control") or {}
        if control.get("eta2_init"):
            out[f"{block}.eta2_gain"] = control["delta"] / control["eta2_init"]
        if "delta_pp" in ablation:
            out[f"{block}.sr_contribution_pp"] = -ablation["delta_pp"]
        if "routing_pp" in ablation:
            out[f"{block}.routing_contribution_pp"] = ablation["routing_pp"]
    return out


def report_sweep_dynamics(root: str | Path) -> list[Path]:
    """The SR learning dynamics of every arm whose runs wrote them: ``<root>/dynamics.png`` (the curves, mean over
    seeds with the min-max band, :func:`srblock.analysis.dynamics.plot_dynamics`; only when some run evaluated more
    than once, as a single point is no curve) and ``<root>/dynamics.md`` (the end values, mean ± std over seeds,
    :func:`~srblock.analysis.dynamics.dynamics_table`, with the routing control and the ablation of the runs analysed
    by :func:`analyze_sweep_runs`); the paths written, none when no run has SR columns."""
    from ..analysis.dynamics import DYNAMICS_COLUMNS, dynamics_table, load_dynamics, plot_dynamics
    from ..analysis.plots import save_figure

    root = Path(root)
    arms: dict[str, list[Path]] = {}
    finals: dict[str, list[dict[str, float]]] = {}
    evaluations = 0
    for summary in sorted(root.glob(f"*/*/{SUMMARY}")):
        run = summary.parent
        curves = load_dynamics(run) if (run / "metrics.csv").is_file() else {}
        if curves:
            arms.setdefault(run.parent.name, []).append(run)
            evaluations = max(evaluations, *(len(c["epoch"]) for c in curves.values()))
            end = {**(json.loads(summary.read_text()).get("sr_dynamics") or {}), **_analysis_values(run)}
            if end:
                finals.setdefault(run.parent.name, []).append(end)
    if not arms:
        return []
    written = []
    if evaluations > 1:
        check_sweep_outputs(root, "dynamics.png")
        figure = plot_dynamics(arms, title=f"SR learning dynamics, {root}")
        written.append(save_figure(figure, root / "dynamics.png", ours=True))
    if finals:
        note = (
            "\nEnd of training (last validation pass), mean ± std over the runs (a cell's own n in brackets where it "
            "has fewer); `srblock sweep --report DIR --analyze`. eta2_gain: (η² trained − η² init) / η² init, the "
            "class separation of the trained routing over the same model's routing at its seeded init rescaled to "
            "the trained norms (`srblock analyze`, test split); sr_contribution_pp: test top-1 with SR minus with the "
            "SR blocks removed, best checkpoint"
        )
        columns = (*DYNAMICS_COLUMNS, "eta2_gain", "sr_contribution_pp")
        if any(key.endswith(".routing_contribution_pp") for runs in finals.values() for run in runs for key in run):
            columns += ("routing_contribution_pp",)  # analyses written since the fixed-routing control
            note += "; routing_contribution_pp: test top-1 with SR minus with each block's routing fixed to its mean"
        note += ".\n"
        _write_output(root / "dynamics.md", dynamics_table(finals, columns) + note)
        written.append(root / "dynamics.md")
    return written


def _dynamics_text(summaries: Sequence[Mapping], column: str) -> str:
    """Mean over the runs of an SR dynamics column at the end of training (``sr_dynamics`` of summary.json), one
    value per SR block (``layer2 0.981; layer3 0.975`` when there are several); ``–`` without SR blocks."""
    per_block: dict[str, list[float]] = {}
    for summary in summaries:
        for key, value in (summary.get("sr_dynamics") or {}).items():
            block, _, name = key.rpartition(".")
            if name == column and isinstance(value, (int, float)) and not math.isnan(value):
                per_block.setdefault(block, []).append(float(value))
    spec = ".3f" if column == "routing_entropy" else ".3g"  # entropy near 1 needs its decimals, the ratio its digits
    means = {block: format(sum(v) / len(v), spec) for block, v in per_block.items()}
    if len(means) <= 1:
        return next(iter(means.values()), "–")
    return "; ".join(f"{block.removesuffix('.sr')} {mean}" for block, mean in means.items())


@functools.lru_cache(maxsize=64)
def _forward_mflops(model_json: str) -> float | None:
    """MFLOPs of one eval-mode forward pass of one image through the model of a run's ``model`` section (JSON text,
    so the count is made once per architecture), on the meta device; ``None`` when it builds no zoo model."""
    import torch

    from ..analysis.overhead import count_macs
    from ..engine.build import build_model
    from ..models import get_model_entry
    from ..models.registry import INIT_ONLY_KEYS

    section = json.loads(model_json)
    if not isinstance(section, Mapping) or "name" not in section:
        return None
    section = {k: v for k, v in section.items() if k not in INIT_ONLY_KEYS}  # no weights to read on the meta device
    try:
        size = section.get("input_size") or get_model_entry(section["name"]).input_size
        with torch.device("meta"):
            model = build_model({"model": section})
        return 2 * count_macs(model, torch.zeros(1, *size, device="meta")) / 1e6
    except (ValueError, TypeError, KeyError, RuntimeError, NotImplementedError):  # a config of an older srblock
        return None


def _seeds_text(n: int) -> str:
    return f"> {n - 1:,}" if n > 999_999 else f"{n:,}"


def sweep_command(
    config: str | None = None,
    *,
    report: str | None = None,
    analyze: bool = False,
    dry_run: bool = False,
    overrides: Sequence[str] = (),
    baseline: str | None = None,
    metric: str | None = None,
    after_run: str | None = None,
    keep_going: bool = False,
    rerun_stale: bool = False,
    run_fn: RunFn | None = None,
    load_fn: LoadFn | None = None,
    launcher: str | None = None,
    launcher_options: Sequence[str] = (),
    merge: str | None = None,
    arms: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    time_budget: float | None = None,
    run_seconds: float | None = None,
    time_arms: bool = False,
) -> int:
    """What ``srblock sweep`` does: run (``config``), list (``dry_run``), re-aggregate (``report``), take in the
    runs of an archive made elsewhere (``merge``, :func:`srblock.experiments.archive.merge_runs`) or time every arm's
    network against its control's (``time_arms``, :func:`srblock.experiments.latency.write_latency`, with the sweep's
    copy and its table, so the folder reports and merges as a sweep).

    ``baseline``, ``metric`` and ``overrides`` are checked (and every arm's config with them) before anything is
    written, so a typo never reaches the output's ``sweep.yaml``. Returns 1 when ``keep_going`` let runs fail.

    ``after_run`` is a shell command run after each finished run (rank 0), with the environment variables
    ``SRBLOCK_RUN_DIR``, ``SRBLOCK_RUN_ARM``, ``SRBLOCK_RUN_SEED``, ``SRBLOCK_SWEEP_NAME`` and
    ``SRBLOCK_SWEEP_OUTPUT`` set, e.g. to commit each finished run; its failure is reported, not fatal.
    ``launcher`` (``sequential``, ``local:N``, ``slurm``) and ``launcher_options`` (``key=value``) override the
    sweep file's ``launcher:`` (see :mod:`srblock.experiments.launchers`).
    The plan (``dry_run``) and the table (``report``) are this command's output and go to stdout; ``analyze``
    (with ``report``) first saves predictions and analyses of the runs that have none yet (:func:`analyze_sweep_runs`).
    ``arms`` and ``seeds`` limit the runs to those arms and seeds (``seeds`` with ``report``: a table of those seeds'
    runs alone, beside the full one; no dynamics or noise tables); ``time_budget`` (seconds from now;
    ``run_seconds``: the expected length of a run of an arm without a finished one) starts no run that would not
    end in time (:mod:`.budget`).
    """
    budget = None if time_budget is None else TimeBudget(time.time() + time_budget, run_seconds)
    if merge is not None:
        from .archive import merge_runs

        merge_runs(merge, log=print)
        return 0
    if report is not None:
        if analyze:
            analyze_sweep_runs(report, log=print)
        sweep = load_sweep(config, overrides) if config else None
        if seeds is not None:
            aggregate(report, sweep=sweep, baseline=baseline, metric=metric, seeds=seeds, log=print, load_fn=load_fn)
            return 0
        report_tables(report, sweep=sweep, baseline=baseline, metric=metric, log=print, load_fn=load_fn)
        written = report_sweep_dynamics(report)
        if written:
            print("SR learning dynamics per arm: " + ", ".join(map(str, written)))
        noise = report_sweep_noise(report, baseline=baseline)
        if noise is not None:
            print(f"seed noise per arm: {noise}")
        return 0
    if config is None:
        raise ValueError(
            "srblock sweep needs -c SWEEP.yaml (to run or --dry-run), --report DIR (to aggregate) or --merge ARCHIVE"
        )
    sweep = load_sweep(config, overrides)
    _check_baseline(baseline, [a.name for a in sweep.arms])
    sweep.baseline = baseline or sweep.baseline
    sweep.metric = metric or sweep.metric
    if time_arms:
        from .latency import write_latency

        check_sweep_outputs(sweep.output)  # before any write: a file of the user's there stops it
        path = write_latency(sweep, load_fn=load_fn)
        _write_sweep_copy(sweep)  # the folder is the sweep's from now on: its table and a merge elsewhere need it
        print(f"wrote {path}")
        aggregate(sweep.output, sweep=sweep, log=print, load_fn=load_fn)
        return 0
    if dry_run:
        selected = _selection(sweep, arms, seeds)
        plan = plan_sweep(sweep, load_fn=load_fn, need_data=False)
        _check_metric(sweep.metric, [st.summary for st in plan.states if st.summary])
        if arms is not None or seeds is not None:  # the runs this command would run, and what it leaves out
            keep = [i for i, run in enumerate(plan.runs) if selected(run)]
            left = len(plan.runs) - len(keep)
            plan = Plan([plan.runs[i] for i in keep], [plan.configs[i] for i in keep],
                        [plan.states[i] for i in keep], plan.warnings)  # fmt: skip
            print(f"only the runs{_selection_words(arms, seeds)} ({left} other runs of the sweep left out):")
        print(plan.format())
        if (estimate := _time_left(plan, _read_latency(sweep.output))) is not None:
            print(estimate)
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

    run_sweep(
        sweep,
        run_fn=run_fn,
        load_fn=load_fn,
        after_run=hook,
        launcher=runner,
        keep_going=keep_going,
        rerun_stale=rerun_stale,
        arms=arms,
        seeds=seeds,
        budget=budget,
    )
    return 1 if any((r.output_dir / FAILED).is_file() for r in expand_grid(sweep)) else 0
