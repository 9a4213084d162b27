"""How many testbed runs a machine finishes per minute: whole runs, start-up included, with their accuracy.

For each recipe (default ``cifar10/airbench``, ``cifar10/airbench_sr``, ``cifar10/r18_d2d_fast``) and seeds 0, 1, ...:

* ``alone``: each run its own ``python -m srblock train`` process, one after another (how a run is tried by hand);
* ``sweep[<launcher>]``: the same recipe as one ``python -m srblock sweep`` process over ``--runs`` seeds with each
  launcher of ``--launchers`` (``sequential``: every run in that one process, reading the dataset once;
  ``local:N``: N worker processes sharing the machine's GPU): the sweep's wall time from spawn to exit;
* ``bare``: a minimal loop written here, in this process: the same model and init (the recipe's, whitening fit
  included), data on the device, batch, optimizer, LR schedule, label smoothing and augmentation, then one test
  pass with the recipe's test-time augmentation; no Lookahead, no whitening-bias freeze, no checkpoints, no logs.

Reported per path: runs per minute (over the path's whole wall time), seconds per run, each run's ``test_acc1`` and
its mean with a 95 % CI; per sweep, ``engine_over_bare``: the bare run's seconds over the sweep's seconds per run
(>= 0.95 is the issue's target for r18_d2d_fast), and ``same_as_alone``: for the seeds run both alone and in the
sweep, whether the final weights and test accuracy are equal (bit for bit on the CPU; on a GPU cuDNN's autotuning may
pick other kernels in another process, so the largest weight difference is reported). With one GPU, a path's wall
time is its GPU time: ``gpu_s_per_run`` = wall x GPUs / runs.

    # the GPU window (see benchmarks/gpu_sweep.sh, stage bench)
    python benchmarks/testbed_speed.py --data-dir .device/cifar10 --runs 40 --runs cifar10/r18_d2d_fast=2 --out t.json
    # CPU, small scale, one thread
    OMP_NUM_THREADS=1 python benchmarks/testbed_speed.py --data-dir ../shared/data/cifar10 --recipes cifar10/airbench \\
        --runs 4 --alone 4 --bare 1 --set data.train_subset=512 --set data.test_subset=256 --set train.epochs=2 \\
        --set model.width=0.25 --set train.batch_size=128
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml

from common import make_main  # the script's folder is on sys.path
from engine_throughput import bare_batches
from srblock.analysis.stats import summarize
from srblock.data.shared import sharing_datasets
from srblock.engine.checkpoint import load_checkpoint
from srblock.engine.classification import tta_logits
from srblock.engine.config import load_config
from srblock.engine.distributed import DistInfo
from srblock.engine.optim import build_optimizer, build_scheduler
from srblock.engine.task import get_task
from srblock.engine.trainer import seed_everything
from srblock.experiments.sweep import read_summary
from srblock.io import write_json

RECIPES = ["cifar10/airbench", "cifar10/airbench_sr", "cifar10/r18_d2d_fast"]
REPO = Path(__file__).resolve().parents[1]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", nargs="+", default=RECIPES)
    p.add_argument("--data-dir", required=True, help="data.root of every run (CIFAR-10 npz)")
    p.add_argument(
        "--runs", action="append", default=[], help="runs per sweep: N, or RECIPE=N for one recipe (repeatable)"
    )
    p.add_argument("--alone", type=int, default=2, help="runs of each recipe as their own srblock train process")
    p.add_argument("--bare", type=int, default=1, help="bare-loop runs per recipe, after a warm-up")
    p.add_argument("--launchers", nargs="+", default=["sequential"], help="sweep launchers to time")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="train.device")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="KEY=VALUE for every run")
    p.add_argument("--time-budget", type=float, help="seconds each sweep may start runs in (srblock sweep's)")
    p.add_argument("--workdir", help="where the runs go (default: a temporary folder, removed)")
    p.add_argument("--out", help="write the results as JSON here")
    return p


def _runs_per_recipe(entries: list[str], recipes: list[str]) -> dict[str, int]:
    default, own = 40, {}
    for entry in entries:
        name, sep, count = entry.rpartition("=")
        if not count.isdigit():
            raise ValueError(f"--runs takes N or RECIPE=N, got {entry!r}")
        if sep:
            own[name] = int(count)
        else:
            default = int(count)
    return {r: own.get(r, default) for r in recipes}


def _overrides(args: argparse.Namespace) -> list[str]:
    return [f"data.root={Path(args.data_dir).resolve()}", f"train.device={args.device}", *args.overrides]


def _accuracy(summaries: list[dict]) -> dict[str, Any]:
    acc = [s["test_acc1"] for s in summaries]
    s = summarize(acc)
    return {"test_acc1": acc, "mean": s.mean, "ci95": [s.ci_low, s.ci_high]}


def _rate(runs: int, wall: float) -> dict[str, float]:
    gpus = max(torch.cuda.device_count(), 1)
    return {
        "runs": runs,
        "wall_s": wall,
        "runs_per_min": 60 * runs / wall if wall else float("nan"),
        "s_per_run": wall / runs if runs else float("nan"),
        "gpu_s_per_run": wall * gpus / runs if runs else float("nan"),
    }


def _run(cmd: list[str]) -> None:
    """``cmd`` in its own process group, all of which is killed if this script stops (a time-out's SIGTERM, see
    :func:`main`): a sweep's worker processes must not outlive the benchmark on a lent GPU."""
    process = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        code = process.wait()
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    if code:
        raise subprocess.CalledProcessError(code, cmd)


def _env() -> dict[str, str]:
    paths = [str(REPO / "src"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), "PYTHONUNBUFFERED": "1"}


def time_alone(recipe: str, count: int, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """``count`` runs, each ``srblock train`` in its own process, one after another."""
    started = time.perf_counter()
    for seed in range(count):
        sets = [w for o in [*_overrides(args), f"seed={seed}"] for w in ("--set", o)]
        cmd = [sys.executable, "-m", "srblock", "train", "-c", recipe, *sets, "--output", str(folder / f"seed{seed}")]
        _run([*cmd, "-q"])
    wall = time.perf_counter() - started
    summaries = [read_summary(folder / f"seed{s}" / "summary.json") for s in range(count)]
    return {**_rate(count, wall), **_accuracy(summaries)}


def time_sweep(recipe: str, count: int, launcher: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """One ``srblock sweep`` process over seeds 0..count-1 of ``recipe`` with ``launcher``."""
    doc = {
        "name": "testbed-speed",
        "output": str(folder),
        "seeds": count,
        "keep_checkpoints": True,  # compared with the runs alone
        "overrides": _overrides(args),
        "arms": {"run": {"recipe": recipe}},
    }
    sweep_file = folder.with_suffix(".yaml")
    sweep_file.parent.mkdir(parents=True, exist_ok=True)
    sweep_file.write_text(yaml.safe_dump(doc))
    cmd = [sys.executable, "-m", "srblock", "sweep", "-c", str(sweep_file), "--launcher", launcher, "-q"]
    if args.time_budget is not None:
        cmd += ["--time-budget", str(args.time_budget)]
    if launcher.startswith("local") and args.device == "cpu":
        cmd += ["--launcher-opt", f"threads={max(1, torch.get_num_threads() // int(launcher.partition(':')[2] or 1))}"]
    started = time.perf_counter()
    _run(cmd)
    wall = time.perf_counter() - started
    summaries = [read_summary(p) for p in sorted(folder.glob("run/seed*/summary.json"), key=_seed_of)]
    return {**_rate(len(summaries), wall), **_accuracy(summaries)}


def _seed_of(path: Path) -> int:
    return int(path.parent.name.removeprefix("seed"))


def same_as_alone(alone: Path, sweep: Path, seeds: int) -> dict[str, Any]:
    """For seeds 0..seeds-1 run both ways: equal test accuracy, equal final weights (largest difference)."""
    out: dict[str, Any] = {"seeds": 0, "acc_equal": True, "weights_equal": True, "max_abs_weight_diff": 0.0}
    for seed in range(seeds):
        a, b = alone / f"seed{seed}", sweep / "run" / f"seed{seed}"
        if not (b / "summary.json").is_file():
            continue
        out["seeds"] += 1
        sa, sb = read_summary(a / "summary.json"), read_summary(b / "summary.json")
        out["acc_equal"] &= sa["test_acc1"] == sb["test_acc1"]
        wa, wb = (load_checkpoint(r / "checkpoint_last.pt")["model"] for r in (a, b))
        for name, x in wa.items():
            y = wb[name]
            out["weights_equal"] &= torch.equal(x, y)
            if x.is_floating_point():
                diff = float((x.double() - y.double()).abs().max()) if x.numel() else 0.0
                out["max_abs_weight_diff"] = max(out["max_abs_weight_diff"], diff)
    return out


def bare_run(recipe: str, seed: int, args: argparse.Namespace, steps: int | None = None) -> dict[str, Any]:
    """One run of the minimal loop (see the module docstring); its seconds from model build to test accuracy.
    ``steps``: train only that many steps (a warm-up: CUDA's lazy start, cuDNN's autotuning)."""
    device = torch.device(args.device)
    config = load_config(recipe, [*_overrides(args), f"seed={seed}"])
    train_cfg = config["train"]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.synchronize()
    task = get_task("classification")(config, DistInfo(), device)
    loaders = task.build_loaders()  # the data on the device, read once (not timed: a bare loop keeps it loaded)
    started = time.perf_counter()
    seed_everything(seed)
    memory_format = torch.channels_last if train_cfg["channels_last"] else torch.contiguous_format
    model = task.build_model().to(device, memory_format=memory_format)
    steps_per_epoch = len(loaders.train)
    total = train_cfg["epochs"] * steps_per_epoch if steps is None else steps
    optimizer = build_optimizer(model, config["optim"])
    scheduler = build_scheduler(optimizer, config["schedule"], steps_per_unit=steps_per_epoch, total_steps=total)
    train_set = loaders.train
    stream = bare_batches(train_set.images, train_set.labels, task.batch_sizes()[0], train_set.augment)
    smoothing = train_cfg["label_smoothing"]
    model.train()
    for _ in range(total):
        images, targets = next(stream)
        loss = F.cross_entropy(
            model(images.contiguous(memory_format=memory_format)), targets, label_smoothing=smoothing
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    model.eval()
    correct = count = 0
    with torch.no_grad():
        loaders.test.set_epoch(0)
        for images, targets in loaders.test:
            logits = tta_logits(model, images.contiguous(memory_format=memory_format), config["data"]["tta"])
            correct += int((logits.argmax(1) == targets).sum())
            count += len(targets)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {"seconds": time.perf_counter() - started, "test_acc1": 100.0 * correct / max(count, 1)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    runs = _runs_per_recipe(args.runs, args.recipes)
    result: dict[str, Any] = {
        "benchmark": "testbed_speed",
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu ({platform.machine()})",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "overrides": args.overrides,
        "recipes": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        for recipe in args.recipes:
            name = recipe.replace("/", "-")
            entry: dict[str, Any] = {}
            result["recipes"][recipe] = entry
            if args.bare:
                with sharing_datasets():  # one read for all bare runs
                    bare_run(recipe, 0, args, steps=3)  # what a process pays once, as the sweep's first run does
                    bare = [bare_run(recipe, seed, args) for seed in range(args.bare)]
                seconds = [b["seconds"] for b in bare]
                entry["bare"] = {"s_per_run": min(seconds), "seconds": seconds, **_accuracy(bare)}
            print(f"{recipe}: bare loop done; {args.alone} run(s) alone, then sweeps of {runs[recipe]}", flush=True)
            if args.alone:
                entry["alone"] = time_alone(recipe, args.alone, args, work / name / "alone")
            for launcher in args.launchers:
                folder = work / name / f"sweep-{launcher.replace(':', '')}"
                timed = time_sweep(recipe, runs[recipe], launcher, args, folder)
                if args.bare:
                    timed["engine_over_bare"] = entry["bare"]["s_per_run"] / timed["s_per_run"]
                if args.alone:
                    timed["same_as_alone"] = same_as_alone(work / name / "alone", folder, args.alone)
                entry[f"sweep[{launcher}]"] = timed
            _print(recipe, entry)
            if args.out:  # what finished survives a time-out
                write_json(args.out, result)
    return result


def _print(recipe: str, entry: dict[str, Any]) -> None:
    print(f"\n{recipe}")
    print(f"  {'path':<18} {'runs':>4} {'runs/min':>9} {'s/run':>7} {'test_acc1 mean [95% CI]':>28}  notes")
    for path, r in entry.items():
        low, high = r["ci95"]
        notes = ""
        if "engine_over_bare" in r:
            notes += f"bare/engine {r['engine_over_bare']:.3f}x"
        if "same_as_alone" in r:
            same = r["same_as_alone"]
            notes += f"; vs alone ({same['seeds']} seeds): acc equal {same['acc_equal']}, weights equal "
            notes += f"{same['weights_equal']} (max diff {same['max_abs_weight_diff']:.3g})"
        runs = r.get("runs", len(r["test_acc1"]))
        rate = r.get("runs_per_min", 60 / r["s_per_run"])
        print(
            f"  {path:<18} {runs:>4} {rate:>9.2f} {r['s_per_run']:>7.2f} "
            f"{r['mean']:>10.2f} [{low:.2f}, {high:.2f}]  {notes}",
            flush=True,
        )


main = make_main(build_parser, run)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout`: unwind, so that _run stops its process group
    main()
