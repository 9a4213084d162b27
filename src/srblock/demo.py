"""``srblock demo``: a baseline and its SR twin on scikit-learn's digits, in a few minutes on a CPU.

Built from the library's own parts, the way a user would chain them: the built-in recipes ``digits/r18_d2d`` and
``digits/r18_d2d_sr`` (the paper's CIFAR protocol in miniature: seeded 90/10 split, best-validation checkpoint tested
once) trained by the engine, then the analysis package on the SR model's test split (memory usage per class, memory
maps, feature effect, the paper's ablation with the block removed). It prints both test accuracies, the SR block's
parameter overhead and the ablation, and writes into its output folder::

    baseline/  sr/            the two run folders (config.yaml, metrics.csv, summary.json, checkpoints)
    analysis/                 report.md and its figures (``srblock analyze`` on the SR model, test split)
    memory_weights.png        mean softmax weight of each memory block per digit class
    demo.json                 every number printed, and the per-class weights

Nothing is ever overwritten: without ``output_dir`` the demo writes ``runs/demo``, or ``runs/demo-2``, ``-3``, ...
when that exists; an ``output_dir`` given explicitly must be new or empty.

Needs the ``demo`` extra (scikit-learn for the digits, matplotlib and scipy for the analysis), checked before any
work starts: ``pip install 'srblock[demo]'``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ._extras import MissingExtraError
from .engine import load_config, train
from .io import write_json

__all__ = ["ARMS", "DEFAULT_OUTPUT", "DEMO_PACKAGES", "FAST", "check_demo_extras", "demo_output_dir", "run_demo"]

_log = logging.getLogger(__name__)

#: arm -> built-in recipe
ARMS = {"baseline": "digits/r18_d2d", "sr": "digits/r18_d2d_sr"}
DEFAULT_OUTPUT = Path("runs/demo")
#: import name -> pip name of every package the demo needs beyond the core (the ``demo`` extra, analysis included)
DEMO_PACKAGES = {"sklearn": "scikit-learn", "matplotlib": "matplotlib", "scipy": "scipy"}
#: ``--fast``: a few seconds' smoke run of the same pipeline (its numbers mean nothing).
FAST = ["train.epochs=1", "data.train_subset=128", "data.val_subset=64", "data.test_subset=64"]


def demo_output_dir(output_dir: str | Path | None = None) -> Path:
    """Where a demo may write without touching anything: a new or empty folder.

    ``None`` picks the first of ``runs/demo``, ``runs/demo-2``, ``runs/demo-3``, ... that is absent or empty (so
    ``make demo`` can be run again); a folder given explicitly that holds anything is a ``FileExistsError``.

    >>> demo_output_dir("fresh-folder")
    PosixPath('fresh-folder')
    """
    if output_dir is None:
        for n in itertools.count(1):
            candidate = DEFAULT_OUTPUT if n == 1 else DEFAULT_OUTPUT.with_name(f"{DEFAULT_OUTPUT.name}-{n}")
            if not candidate.exists() or (candidate.is_dir() and not any(candidate.iterdir())):
                return candidate
    path = Path(output_dir)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"demo output {path} is a file; pass a new or empty folder")
    if path.is_dir() and any(path.iterdir()):
        held = ", ".join(sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())[:5])
        raise FileExistsError(
            f"demo output {path} already holds files ({held}); the demo never overwrites anything: pass a new or "
            "empty folder, or leave out --output to write the next free runs/demo-N"
        )
    return path


@contextlib.contextmanager
def _engine_logs_quiet() -> Iterator[None]:
    """Hold the engine's per-step and per-epoch log lines back (warnings still pass); its progress bar stays."""
    engine_log = logging.getLogger("srblock.engine")
    level = engine_log.level
    engine_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        engine_log.setLevel(level)


def _plot_class_weights(mean: torch.Tensor, path: Path) -> Path:
    """Heat map of the mean softmax weight of each memory block (x) per class (y)."""
    from .analysis.plots import Figure, save_figure

    fig = Figure(figsize=(1.0 + 0.5 * mean.shape[1], 4.2), layout="tight")
    ax = fig.subplots()
    image = ax.imshow(mean.numpy(), cmap="viridis", vmin=0.0, aspect="auto")
    ax.set_xlabel("memory block i")
    ax.set_ylabel("digit class")
    ax.set_xticks(range(mean.shape[1]))
    ax.set_yticks(range(mean.shape[0]))
    ax.set_title("mean softmax weight w_i per class (test set)")
    fig.colorbar(image, ax=ax, fraction=0.05)
    return save_figure(fig, path, dpi=120)


def check_demo_extras() -> None:
    """Fail before any work when a package of the ``demo`` extra is missing, naming every one and the one command.

    The demo needs scikit-learn (the digits), matplotlib and scipy (the analysis): all come with
    ``pip install 'srblock[demo]'``, so a user installs once instead of meeting one missing package per stage.
    """
    missing = [dist for module, dist in DEMO_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise MissingExtraError(
            f"the demo needs {' and '.join(missing)}, not installed: pip install 'srblock[demo]'", name=missing[0]
        )


def run_demo(output_dir: str | Path | None = None, *, fast: bool = False, seed: int = 0) -> dict[str, Any]:
    """Train the digits baseline and SR twin, analyse the SR model, plot its memory weights; returns the numbers.

    ``output_dir``: see :func:`demo_output_dir` (``None``: the next free ``runs/demo[-N]``). Progress goes to the
    ``srblock`` logger (and a bar on a terminal); the result table to stdout.
    """
    check_demo_extras()
    from .analysis import analyze_checkpoint

    started = time.perf_counter()
    output_dir = demo_output_dir(output_dir)
    overrides = [f"seed={seed}", *(FAST if fast else [])]
    results: dict[str, Any] = {}
    steps = len(ARMS) + 1
    for i, (arm, recipe) in enumerate(ARMS.items(), 1):
        config = load_config(recipe, overrides)
        _log.info(
            "[%d/%d] training %s (%s, %g epochs) into %s ...",
            i,
            steps,
            arm,
            recipe,
            config["train"]["epochs"],
            output_dir / arm,
        )
        with _engine_logs_quiet():  # the bar with its ETA stays (on a terminal); per-epoch lines would flood
            results[arm] = train(config, output_dir / arm, quiet=False)
        _log.info(
            "[%d/%d] %s: test acc %.2f %% (%.0f s)",
            i,
            steps,
            arm,
            results[arm]["test_acc1"],
            results[arm]["wall_time_s"],
        )
    base, sr = results["baseline"], results["sr"]

    # The paper's 50 images per class are every test image of a class here (the digits test split has <= 37).
    _log.info("[%d/%d] analysing the SR model on the test split into %s ...", steps, steps, output_dir / "analysis")
    analysis = analyze_checkpoint(
        output_dir / "sr" / "checkpoint_best.pt", split="test", output_dir=output_dir / "analysis"
    )
    (block,) = analysis["blocks"].values()  # the recipe has one SR block
    per_class = block["usage"]["classes"]
    nan_row = [float("nan")] * block["num_memories"]  # a class absent from a --fast test subset
    classes = range(int(sr["config"]["model"]["num_classes"]))
    mean = torch.tensor([per_class[str(c)]["mean"] or nan_row if str(c) in per_class else nan_row for c in classes])
    std = [per_class[str(c)]["std"] or nan_row if str(c) in per_class else nan_row for c in classes]
    plot = _plot_class_weights(mean, output_dir / "memory_weights.png")

    numbers = {
        "baseline_test_acc1": base["test_acc1"],
        "sr_test_acc1": sr["test_acc1"],
        "sr_removed_test_acc1": analysis["ablation"]["acc_no_sr"],
        "params_baseline": base["params"],
        "params_sr": sr["params"],
        "sr_params": sr["sr_params"],
        "overhead_pct": 100.0 * sr["sr_params"] / base["params"],
        "memory_weights_mean": mean.tolist(),
        "memory_weights_std": std,
        "output_dir": str(output_dir),
        "plot": str(plot),
        "report": str(output_dir / "analysis" / "report.md"),
        "fast": fast,
        "seed": seed,
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
    write_json(output_dir / "demo.json", numbers)  # strict: a class missing from a --fast subset has null weights

    model, data = sr["config"]["model"], sr["config"]["data"]
    sr_label = f"+ SR (M={model['sr_stage']}, P={model['num_memories']}, U={model['hidden']})"
    rows = [
        ("baseline", base["test_acc1"], f"params {base['params']:,}"),
        (
            sr_label,
            sr["test_acc1"],
            f"params {sr['params']:,} (+{sr['sr_params']:,} = +{numbers['overhead_pct']:.2f} %)",
        ),
        ("SR model, block removed", numbers["sr_removed_test_acc1"], "(the paper's ablation)"),
    ]
    tested = int(sr["test"]["count"])
    print(
        f"\nsrblock demo: scikit-learn digits ({data['image_size']}x{data['image_size']}), ResNet18 "
        f"x{model.get('width', 1.0)} + Dropout2d, {sr['epochs']:g} epochs, seed {seed}"
    )
    for label, acc, note in rows:
        print(f"  {label:<24} test acc {acc:6.2f} %   {note}")
    print(
        f"  test set: {tested} images, so one image is {100 / tested:.2f} pp; one seed per arm shows the pipeline "
        "working,\n  it is no evidence for or against SR (measured comparisons: RESULTS.md)"
    )
    print(f"  runs and checkpoints: {output_dir / 'baseline'}, {output_dir / 'sr'}")
    print(f"  memory weights per class: {plot}\n  analysis report: {numbers['report']}")
    print(f"  took {numbers['wall_time_s']:.0f} s")
    return numbers
