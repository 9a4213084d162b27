"""What the training engine costs on top of the model: images/s of the engine's train step vs a bare hand-written loop.

Both paths train their own copy of the same model (a recipe's, from the same init) on the same uint8 training set held
on the device, with the same batch and the same on-device augmentation (pad-crop and flip of a whole epoch at once by
:class:`srblock.data.transforms.BatchAugment`, then normalisation), under the same precision and ``torch.compile``
setting:

* engine: ``srblock.engine.trainer.train_steps`` with the classification task's in-memory loader (augmentation draws
  from the seed on the host, once per epoch), the DropBlock hook, train loss/accuracy logs, the finiteness check, the
  LR schedule and the progress logger: everything a real run does between two evaluations;
* bare: a loop as a researcher writes it by hand: draws on the device, forward, cross-entropy, backward, step.

Both use the recipe's optimizer (``build_optimizer``); what only some recipes add on top of the step (airbench's
Lookahead, label smoothing, the whitening freeze through ``set_train_progress``) is left out of the bare loop and,
for Lookahead, of the engine path too, so the ratio measures the engine's own overhead.

The two run interleaved in chunks of ``--steps`` iterations; the ratio is engine images/s / bare images/s (per-repeat
paired median; target >= 0.95). ``first_chunk_s`` is each path's first chunk (compilation, cuDNN autotuning and lazy
initialisation included); ``one_time_s``, the larger excess of a first chunk over a steady one, is what a process
pays once for them (the path compiled second may reuse the first one's graph).
fp32 means the PyTorch defaults: cuDNN convolutions may use TF32 on Ampere and later, float32 matmuls do not.

    python benchmarks/engine_throughput.py --device cuda --out bench_engine.json
    python benchmarks/engine_throughput.py --device cuda --recipe cifar10/r18_d2d_sr --compile reduce-overhead
    python benchmarks/engine_throughput.py --device cpu --width 0.125 --batch-size 32 --steps 2 --repeats 2 --images 256
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from common import make_main  # the script's folder is on sys.path
from srblock.analysis.timing import interleaved_timings, ratios
from srblock.data.transforms import BatchAugment
from srblock.engine.config import load_config
from srblock.engine.distributed import DistInfo
from srblock.engine.logger import RunLogger
from srblock.engine.optim import build_optimizer, build_scheduler
from srblock.engine.task import get_task
from srblock.engine.trainer import compile_model, train_steps

COMPILE_MODES = ["none", "default", "reduce-overhead", "max-autotune-no-cudagraphs"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    p.add_argument("--recipe", default="cifar10/r18_d2d_sr", help="recipe whose model, optimizer and batch to use")
    p.add_argument("--batch-size", type=int, help="default: the recipe's")
    p.add_argument("--width", type=float, help="model.width of the CIFAR ResNets (default: the recipe's)")
    p.add_argument("--steps", type=int, default=20, help="iterations per timed chunk")
    p.add_argument("--repeats", type=int, default=10, help="timed interleaved chunks per path (median)")
    p.add_argument("--warmup", type=int, default=1, help="untimed chunks after the first (timed) one")
    p.add_argument("--images", type=int, default=8192, help="size of the synthetic in-memory training set")
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none")
    p.add_argument("--compile", choices=COMPILE_MODES, default="none", help="torch.compile mode of both models")
    p.add_argument("--out", help="write the results as JSON here")
    return p


def _config(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    overrides = [
        f"data.root={root}",
        "data.dataset=npz",
        "data.val_fraction=0.0",
        f"train.device={args.device}",
        f"train.amp={'null' if args.amp == 'none' else args.amp}",
        f"train.compile={'false' if args.compile == 'none' else args.compile}",
    ]
    if args.batch_size is not None:
        overrides.append(f"train.batch_size={args.batch_size}")
    if args.width is not None:
        overrides.append(f"model.width={args.width}")
    return load_config(args.recipe, overrides)


def _write_npz(root: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for split, size in (("train", n), ("test", 256)):
        x = rng.integers(0, 256, size=(size, 32, 32, 3), dtype=np.uint8)
        np.savez(root / f"{split}.npz", x=x, y=rng.integers(0, 10, size=size))


def _endless(loader) -> Iterator[Any]:
    epoch = 0
    while True:
        loader.set_epoch(epoch)
        yield from loader
        epoch += 1


def bare_batches(images: torch.Tensor, labels: torch.Tensor, batch: int, augment: BatchAugment) -> Iterator[Any]:
    """Endless augmented batches, a whole epoch at a time, every random draw on the device."""
    n, device, p = len(images), images.device, augment.crop_padding
    while True:
        order = torch.randperm(n, device=device)
        params = torch.cat(
            [torch.randint(0, 2 * p + 1, (n, 2), device=device), torch.randint(0, 2, (n, 1), device=device)], dim=1
        )
        x, y = augment.normalize(augment.crop_flip(images[order], params)), labels[order]
        for i in range(0, n - batch + 1, batch):
            yield x[i : i + batch], y[i : i + batch]


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    amp = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.amp]
    autocast = torch.autocast(device.type, dtype=amp, enabled=amp is not None)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write_npz(root, args.images)
        config = _config(root, args)
        train_cfg = config["train"]
        torch.manual_seed(0)
        task = get_task("classification")(config, DistInfo(), device)
        loaders = task.build_loaders()
        engine_model = task.build_model().to(device)
        memory_format = torch.channels_last if train_cfg["channels_last"] else torch.contiguous_format
        engine_model.to(memory_format=memory_format)
        bare_model = copy.deepcopy(engine_model)

        # -- the engine path: what trainer._Run does between two evaluations
        steps_per_epoch = len(loaders.train)
        total = train_cfg["epochs"] * steps_per_epoch if train_cfg["epochs"] else train_cfg["iterations"]
        optimizer = build_optimizer(engine_model, config["optim"])
        unit = steps_per_epoch if train_cfg["epochs"] else 1
        scheduler = build_scheduler(optimizer, config["schedule"], steps_per_unit=unit, total_steps=total)
        scaler = torch.amp.GradScaler(device.type, enabled=args.amp == "fp16")
        logger = RunLogger(False, root, total_steps=total)
        train_model = compile_model(engine_model, train_cfg["compile"])
        batches = _endless(loaders.train)
        position = {"step": 0}

        def engine_chunk() -> None:
            start = position["step"]
            end = start + args.steps
            train_steps(
                task,
                train_model,
                optimizer,
                scheduler,
                scaler,
                batches,
                start=start,
                end=end,
                total_steps=total,
                autocast=autocast,
                logger=logger,
                log_interval=train_cfg["log_interval"],
                grad_clip=train_cfg["grad_clip"],
                check_every_step=device.type == "cpu",
                bare_model=engine_model,
            )
            position["step"] = end

        # -- the bare path: the same model, data, augmentation and optimizer, written by hand
        bare_opt = build_optimizer(bare_model, config["optim"])
        bare_train = compile_model(bare_model, train_cfg["compile"])
        train_set = loaders.train
        stream = bare_batches(train_set.images, train_set.labels, task.batch_sizes()[0], train_set.augment)
        bare_scaler = torch.amp.GradScaler(device.type, enabled=args.amp == "fp16")

        def bare_chunk() -> None:
            bare_train.train()
            for _ in range(args.steps):
                images, targets = next(stream)
                images = images.contiguous(memory_format=memory_format)
                with autocast:
                    loss = F.cross_entropy(bare_train(images), targets)
                bare_opt.zero_grad(set_to_none=True)
                bare_scaler.scale(loss).backward()
                bare_scaler.step(bare_opt)
                bare_scaler.update()

        started = time.perf_counter()
        paths: dict[str, Callable[[], None]] = {"bare": bare_chunk, "engine": engine_chunk}
        first = {name: _timed(chunk, device) for name, chunk in paths.items()}  # compilation and autotuning
        samples = interleaved_timings(paths, repeats=args.repeats, warmup=args.warmup, device=device)
    batch = task.batch_sizes()[0]
    ips = {name: args.steps * batch / statistics.median(times) for name, times in samples.items()}
    ratio = 1.0 / ratios(samples, "bare")["engine"]  # throughput ratio = inverse paired time ratio
    result = {
        "benchmark": "engine_throughput",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.machine()})",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "recipe": args.recipe,
        "model": {k: v for k, v in config["model"].items() if v is not None},
        "batch_size": batch,
        "amp": args.amp,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "compile": args.compile,
        "steps_per_chunk": args.steps,
        "repeats": args.repeats,
        "images_per_s_bare": ips["bare"],
        "images_per_s_engine": ips["engine"],
        "ratio": ratio,
        "first_chunk_s": first,
        "steady_chunk_s": {name: statistics.median(times) for name, times in samples.items()},
        # paid once per process (compilation, autotuning): the path run first pays it, the second may reuse its graph
        "one_time_s": max(first[name] - statistics.median(times) for name, times in samples.items()),
        "seconds": time.perf_counter() - started,
    }
    print(f"{'path':<8}  {'images/s':>10}  {'ratio':>7}  {'first chunk (s)':>15}")
    print(f"{'bare':<8}  {ips['bare']:>10.1f}  {1.0:>6.3f}x  {first['bare']:>15.2f}")
    print(f"{'engine':<8}  {ips['engine']:>10.1f}  {ratio:>6.3f}x  {first['engine']:>15.2f}", flush=True)
    return result


def _timed(chunk: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    chunk()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


main = make_main(build_parser, run)


if __name__ == "__main__":
    main()
