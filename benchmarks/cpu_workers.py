"""How to share a CPU between runs: one run on every core, or N runs at once on one thread each.

Each round times ``--steps`` SGD steps of a recipe's network at its batch size (``srblock.analysis.timing.
train_step`` on ``srblock.experiments.latency.timed_network``: random images, the engine's memory format), first in
one process with one thread per core, then in N processes with one thread each, started together; the two paths take
turns, so a shared machine's load hits both.
It reports steps per second of both and their ratio per round: what ``srblock sweep --launcher local:N`` (each
worker gets an equal share of the cores) trains more or less than the sequential launcher, counting the training
step alone (data loading and evaluation come on top).

    python benchmarks/cpu_workers.py --recipe cifar10/r18_d2d_sr --set model.width=0.25 --steps 40 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import torch

from common import make_main  # the script's folder is on sys.path
from srblock.analysis.timing import train_step
from srblock.engine.config import load_config
from srblock.experiments.latency import timed_network


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="cifar10/r18_d2d_sr", help="recipe whose network and batch size to time")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override (repeatable)")
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="runs at once, one thread each (default: cores)")
    p.add_argument("--steps", type=int, default=40, help="timed SGD steps per process and round (5 more warm up)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)  # a timed process (this script runs itself)
    p.add_argument("--out", help="write the results as JSON here")
    return p


def _seconds_per_step(args: argparse.Namespace) -> float:
    """In a worker process: the mean seconds of one SGD step of the recipe's network, after 5 untimed ones."""
    torch.set_num_threads(args.worker_threads)
    config = load_config(args.recipe, args.set)
    step = train_step(*timed_network(config, config["train"]["batch_size"], torch.device("cpu")))
    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    return (time.perf_counter() - start) / args.steps


def _steps_per_second(args: argparse.Namespace, processes: int, threads: int) -> tuple[float, list[int]]:
    """Steps per second of ``processes`` timed processes of ``threads`` threads each, started together, and the
    thread count each process ran with."""
    command = [sys.executable, __file__, "--recipe", args.recipe, "--steps", str(args.steps)]
    command += [f"--set={kv}" for kv in args.set] + ["--worker-threads", str(threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    children = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) for _ in range(processes)]
    seconds, ran_with = [], []
    for child in children:
        out, _ = child.communicate()
        if child.returncode:
            raise RuntimeError(f"a timed process exited with {child.returncode}: {' '.join(command)}")
        timed = json.loads(out)
        seconds.append(timed["seconds_per_step"])
        ran_with.append(timed["threads"])
    return sum(1 / s for s in seconds), ran_with


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.worker_threads is not None:
        print(json.dumps({"seconds_per_step": _seconds_per_step(args), "threads": torch.get_num_threads()}))
        return {}
    if args.workers < 2:
        raise SystemExit(f"cpu_workers.py: --workers must be at least 2 to compare with one run, got {args.workers}")
    rounds = []
    for r in range(args.rounds):
        one, one_threads = _steps_per_second(args, 1, args.workers)
        many, many_threads = _steps_per_second(args, args.workers, 1)
        rounds.append({"one_run_steps_per_s": one, "workers_steps_per_s": many, "ratio": many / one,
                       "threads": {"one_run": one_threads, "workers": many_threads}})  # fmt: skip
        print(f"round {r}: 1 run x {args.workers} threads {one:.2f} steps/s, {args.workers} runs x 1 thread "
              f"{many:.2f} steps/s, ratio {many / one:.2f}", flush=True)  # fmt: skip
    ratios = sorted(x["ratio"] for x in rounds)
    print(f"{args.workers} one-thread runs / one {args.workers}-thread run: {ratios[0]:.2f}-{ratios[-1]:.2f}x "
          f"over {len(ratios)} rounds ({args.recipe} {' '.join(args.set)}, torch {torch.__version__})")  # fmt: skip
    return {"recipe": args.recipe, "overrides": args.set, "workers": args.workers, "torch": torch.__version__,
            "rounds": rounds}  # fmt: skip


main = make_main(build_parser, run)

if __name__ == "__main__":
    main()
