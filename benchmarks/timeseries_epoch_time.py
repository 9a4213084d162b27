"""CPU seconds per training epoch of every time-series recipe (FCN, ResNet, each ± SR), to size a sweep.

For each recipe, on one thread: the recipe's model, optimiser and batch size on batches of its real training data;
the median process CPU time of ``--steps`` training steps (after two warm-up steps), base and SR steps interleaved
so that the load of a shared machine hits both alike; times the steps of one epoch. CPU time rather than wall time,
since other processes on a shared machine would inflate the latter (they still slow the former through the caches:
trust the ratios more than the absolute numbers). The test evaluations (every ``train.eval_every`` epochs) and the
set-up are left out. Prints a Markdown table with the full schedule's extrapolated CPU hours per run:

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/timeseries_epoch_time.py
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/timeseries_epoch_time.py --sr-stage 1   # the sweeps' -sr-m1 arm
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from srblock.data.timeseries import load_ucr
from srblock.engine import load_config
from srblock.engine.build import build_model
from srblock.engine.optim import build_optimizer
from srblock.recipes import find_recipe


def _step_timer(recipe: str, overrides: list[str] | None = None):
    config = load_config(f"timeseries/{recipe}", overrides or [])
    data = load_ucr(config["data"]["name"])
    batch = config["train"]["batch_size"]
    model = build_model(config).train()
    optimizer = build_optimizer(model, config["optim"])
    x, y = data.train_x[:batch], data.train_y[:batch]
    steps = -(-len(data.train_y) // batch)

    def step() -> float:
        start = time.process_time()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.process_time() - start

    return step, steps, config["train"]["epochs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=7, help="timed steps per recipe")
    parser.add_argument("--datasets", nargs="*", default=None, help="lower-case recipe prefixes (default: all)")
    parser.add_argument("--sr-stage", type=int, default=None, help="put the SR block here (default: the _sr recipe's)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = find_recipe("timeseries/gunpoint_fcn").parent
    names = sorted(p.stem for p in folder.glob("*.yaml") if not p.stem.startswith("_") and not p.stem.endswith("_sr"))
    if args.datasets:
        names = [n for n in names if n.split("_")[0] in args.datasets]
    print("| recipe | steps/epoch | CPU s/epoch | + SR | SR / base | full schedule, CPU h (base) | epochs |")
    print("|---|---|---|---|---|---|---|")
    placement = [] if args.sr_stage is None else [f"model.sr_stage={args.sr_stage}"]
    for name in names:
        (base, steps, epochs), (sr, _, _) = _step_timer(name), _step_timer(f"{name}_sr", placement)
        times: tuple[list[float], list[float]] = ([], [])
        for i in range(args.steps + 2):
            b, s = base(), sr()
            if i >= 2:
                times[0].append(b)
                times[1].append(s)
        t_base, t_sr = (statistics.median(t) * steps for t in times)
        print(
            f"| {name} | {steps} | {t_base:.3f} | {t_sr:.3f} | {t_sr / t_base:.2f} | "
            f"{t_base * epochs / 3600:.2f} | {epochs} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
