"""What SR costs in wall-clock time on ResNet50: baseline vs SR (M=3, P=10, U=16) vs SE-ResNet50 vs CBAM-ResNet50.

Every model runs the same step (inference forward, or one SGD training step) on the same batch, interleaved in one
run (see ``srblock.analysis.timing``), and each is reported as a ratio of median times to the baseline.
Targets (README): SR eval ratio <= 1.01x and train ratio <= 1.02x at 224x224. The row "SR block alone" times the
block by itself on the feature map it sees (train: forward, backward, SGD step of its parameters); its ratio is
its share of the baseline's step, a low-noise estimate of the SR row's excess over 1.

    python benchmarks/sr_overhead.py --device cuda --batch-sizes 1 32 --amp bf16 --out bench_sr.json
    python benchmarks/sr_overhead.py --device cpu --input-size 112 --batch-sizes 1 4 --repeats 5   # a laptop check
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Any

import torch

from common import calibrate_inner, device_name, make_main  # the script's folder is on sys.path
from srblock.analysis.timing import eval_step, interleaved_timings, ratios, sr_block_step, train_step
from srblock.models import create_model

VARIANTS = {
    "resnet50": {},
    "resnet50+SR": {"sr_stage": 3, "num_memories": 10, "hidden": 16},
    "se_resnet50": {"attention": "se"},
    "cbam_resnet50": {"attention": "cbam"},
}
AMP = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    p.add_argument("--input-size", type=int, default=224, help="square input side (the paper: 224)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    p.add_argument("--modes", nargs="+", choices=["eval", "train"], default=["eval", "train"])
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--repeats", type=int, default=20, help="timed interleaved rounds (median)")
    p.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    p.add_argument("--inner", type=int, default=1, help="steps per timed sample (raise for tiny GPU steps)")
    p.add_argument(
        "--min-sample-ms",
        type=float,
        default=None,
        help="raise --inner per setting until a sample lasts this long (default: 25 on CUDA, off on CPU)",
    )
    p.add_argument("--amp", choices=list(AMP), default="none", help="autocast dtype (bf16 on recent GPUs)")
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format (faster on GPUs)")
    p.add_argument("--out", help="write the results as JSON here")
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    amp = AMP[args.amp]
    size = args.input_size
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    models = {}
    skipped = {}
    for name in args.variants:
        # The SR block is sized for the benchmark's input (224 -> memory 10 x 1024 x 14 x 14, the paper's).
        try:
            model = create_model("resnet50", num_classes=1000, input_size=(3, size, size), **VARIANTS[name])
        except (ImportError, ValueError) as err:  # e.g. timm missing for CBAM: measure the others
            if name == args.variants[0]:
                raise
            skipped[name] = f"{type(err).__name__}: {err}"
            print(f"skipping {name}: {skipped[name]}", flush=True)
            continue
        models[name] = model.to(device, memory_format=memory_format)
    baseline = args.variants[0]
    rows = []
    started = time.perf_counter()
    for batch in args.batch_sizes:
        images = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=memory_format)
        labels = torch.randint(0, 1000, (batch,), device=device)
        for mode in args.modes:
            if mode == "eval":
                steps = {n: eval_step(m, images, amp_dtype=amp) for n, m in models.items()}
            else:
                steps = {n: train_step(m, images, labels, amp_dtype=amp) for n, m in models.items()}
            if "resnet50+SR" in models:
                # The block on its own, in the same interleaved run: a low-noise measure of what SR adds.
                steps[BLOCK_ROW] = sr_block_step(models["resnet50+SR"], images, mode, amp_dtype=amp)
            inner = calibrate_inner(steps[baseline], args, device)
            samples = interleaved_timings(steps, repeats=args.repeats, warmup=args.warmup, inner=inner, device=device)
            for name, ratio in ratios(samples, baseline).items():
                times = sorted(samples[name])
                rows.append(
                    {
                        "batch": batch,
                        "mode": mode,
                        "model": name,
                        "median_ms": 1e3 * times[len(times) // 2],
                        "min_ms": 1e3 * times[0],
                        "ratio": ratio,
                        "inner": inner,
                    }
                )
            print_rows([r for r in rows if r["batch"] == batch and r["mode"] == mode], header=len(rows) == len(steps))
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return {
        "benchmark": "sr_overhead",
        "baseline": baseline,
        "device": device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "input_size": size,
        "amp": args.amp,
        "channels_last": args.channels_last,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "inner": args.inner,
        "seconds": time.perf_counter() - started,
        "skipped": skipped,
        "rows": rows,
    }


BLOCK_ROW = "SR block alone"


def print_rows(rows: list[dict[str, Any]], *, header: bool) -> None:
    if header:
        print(f"{'batch':>5}  {'mode':<5}  {'model':<14}  {'median ms':>10}  {'min ms':>9}  {'ratio':>7}")
    for r in rows:
        print(
            f"{r['batch']:>5}  {r['mode']:<5}  {r['model']:<14}  {r['median_ms']:>10.2f}  {r['min_ms']:>9.2f}  "
            f"{r['ratio']:>6.3f}x",
            flush=True,
        )


main = make_main(build_parser, run)


if __name__ == "__main__":
    main()
