"""How much the training engine costs on top of the model: images/s of the engine's train step vs a bare loop.

The engine path is the real one (``srblock.engine.trainer.train_steps`` with the classification task's in-memory
loader: index, batched pad-crop/flip augmentation, normalisation, DropBlock hook, loss logs, finiteness check,
LR schedule). The bare loop runs forward, cross-entropy, backward and SGD step on pre-made normalised tensors of
the same batch size. Both train their own copy of CIFAR ResNet18-SR (M=3, P=10, U=8) from the same init, in
interleaved chunks of ``--steps`` iterations; the ratio is engine images/s / bare images/s (target >= 0.95).

    python benchmarks/engine_throughput.py --device cuda --batch-size 128 --out bench_engine.json
    python benchmarks/engine_throughput.py --device cpu --width 0.25 --batch-size 64 --steps 5 --repeats 5
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from common import make_main  # the script's folder is on sys.path
from srblock.analysis.timing import interleaved_timings, ratios
from srblock.engine.config import resolve_config
from srblock.engine.distributed import DistInfo
from srblock.engine.logger import RunLogger
from srblock.engine.task import get_task
from srblock.engine.trainer import build_optimizer, build_scheduler, train_steps

AMP = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    p.add_argument("--batch-size", type=int, default=128, help="the paper's CIFAR batch: 128")
    p.add_argument("--width", type=float, default=1.0, help="CIFAR ResNet width multiplier (1 = the paper's)")
    p.add_argument("--steps", type=int, default=20, help="iterations per timed chunk")
    p.add_argument("--repeats", type=int, default=10, help="timed interleaved chunks per path (median)")
    p.add_argument("--warmup", type=int, default=1, help="untimed chunks first")
    p.add_argument("--images", type=int, default=4096, help="size of the synthetic in-memory training set")
    p.add_argument("--amp", choices=list(AMP), default="none")
    p.add_argument("--out", help="write the results as JSON here")
    return p


def _config(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    return resolve_config(
        {
            "task": "classification",
            "seed": 0,
            "data": {"dataset": "npz", "root": str(root), "val_fraction": 0.0},
            "model": {
                "name": "cifar_resnet18",
                "num_classes": 10,
                "sr_stage": 3,
                "num_memories": 10,
                "hidden": 8,
                "regularizer": "dropout2d",
                "width": args.width,
            },
            "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
            "schedule": {"name": "multistep", "milestones": [90, 136], "gamma": 0.1},
            "train": {"epochs": 182, "batch_size": args.batch_size, "device": args.device, "amp": _amp_name(args)},
        }
    )


def _amp_name(args: argparse.Namespace) -> str | None:
    return None if args.amp == "none" else args.amp


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


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    amp = AMP[args.amp]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write_npz(root, args.images)
        config = _config(root, args)
        torch.manual_seed(0)
        task = get_task("classification")(config, DistInfo(), device)
        loaders = task.build_loaders()
        engine_model = task.build_model().to(device)
        bare_model = copy.deepcopy(engine_model)

        steps_per_epoch = len(loaders.train)
        total = config["train"]["epochs"] * steps_per_epoch
        optimizer = build_optimizer(engine_model, config["optim"])
        scheduler = build_scheduler(optimizer, config["schedule"], steps_per_unit=steps_per_epoch, total_steps=total)
        scaler = torch.amp.GradScaler(device.type, enabled=args.amp == "fp16")
        autocast = torch.autocast(device.type, dtype=amp) if amp is not None else contextlib.nullcontext()
        logger = RunLogger(False, root, total_steps=total)
        batches = _endless(loaders.train)
        position = {"step": 0}

        def engine_chunk() -> None:
            start = position["step"]
            train_steps(
                task,
                engine_model,
                optimizer,
                scheduler,
                scaler,
                batches,
                start=start,
                end=start + args.steps,
                total_steps=total,
                autocast=autocast,
                logger=logger,
                log_interval=config["train"]["log_interval"],
                check_every_step=device.type == "cpu",
                bare_model=engine_model,
            )
            position["step"] = start + args.steps

        bare_opt = build_optimizer(bare_model, config["optim"])
        images = torch.randn(args.batch_size, 3, 32, 32, device=device)
        labels = torch.randint(0, 10, (args.batch_size,), device=device)

        def bare_chunk() -> None:
            bare_model.train()
            for _ in range(args.steps):
                with autocast:
                    loss = F.cross_entropy(bare_model(images), labels)
                bare_opt.zero_grad(set_to_none=True)
                loss.backward()
                bare_opt.step()

        started = time.perf_counter()
        samples = interleaved_timings(
            {"bare": bare_chunk, "engine": engine_chunk}, repeats=args.repeats, warmup=args.warmup, device=device
        )
    images_per_chunk = args.steps * args.batch_size
    ips = {name: images_per_chunk / statistics.median(times) for name, times in samples.items()}
    # throughput ratio = inverse time ratio, paired per repeat like the other benchmarks
    ratio = 1.0 / ratios(samples, "bare")["engine"]
    result = {
        "benchmark": "engine_throughput",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.machine()})",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "model": "cifar_resnet18 + SR (M=3, P=10, U=8) + dropout2d",
        "width": args.width,
        "batch_size": args.batch_size,
        "steps_per_chunk": args.steps,
        "repeats": args.repeats,
        "amp": args.amp,
        "images_per_s_bare": ips["bare"],
        "images_per_s_engine": ips["engine"],
        "ratio": ratio,
        "seconds": time.perf_counter() - started,
    }
    print(f"{'path':<8}  {'images/s':>10}  {'ratio':>7}")
    print(f"{'bare':<8}  {ips['bare']:>10.1f}  {1.0:>6.3f}x")
    print(f"{'engine':<8}  {ips['engine']:>10.1f}  {result['ratio']:>6.3f}x", flush=True)
    return result


main = make_main(build_parser, run)


if __name__ == "__main__":
    main()
