"""What each cheap plug-in block costs on the CIFAR ResNet18 (issue 21, question 6): none / SE / CBAM / ECA / SR /
SR+SE, each with its parameters, forward FLOPs per image and latency as a ratio to the same network without a block.

SE, CBAM and ECA sit in every residual block (their usual place, srblock.models.attention); SR after layer3 (M=3,
P=10, U=8, the paper's). Latency: one training step (forward, backward, SGD) and one inference forward at the given
batch, every variant interleaved in one run (srblock.analysis.timing) and reported as the median of the per-round
ratio to `none`, so a busy machine's drift cancels; read ratios, not milliseconds. FLOPs: one eval-mode forward of
one image (torch.utils.flop_counter, 2 per multiply-accumulate; element-wise work such as SE's and CBAM's gating is
not counted, which is why their FLOPs barely move while their latency does).

    python benchmarks/block_costs.py                          # widths 0.25 and 1, batch 128, CPU
    python benchmarks/block_costs.py --widths 0.25 --batch 32 --repeats 5 --out block_costs.json
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Any

import torch

from common import device_name, make_main  # the script's folder is on sys.path
from srblock.analysis.overhead import count_macs, count_params
from srblock.analysis.timing import eval_step, interleaved_timings, ratios, train_step
from srblock.models import count_sr_params, create_model

SR = {"sr_stage": 3, "num_memories": 10, "hidden": 8}
VARIANTS: dict[str, dict[str, Any]] = {
    "none": {},
    "SE": {"attention": "se"},
    "CBAM": {"attention": "cbam"},
    "ECA": {"attention": "eca"},
    "SR": SR,
    "SR+SE": {"attention": "se", **SR},
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", type=float, nargs="+", default=[0.25, 1.0], help="ResNet18 width multipliers")
    p.add_argument("--batch", type=int, default=128, help="batch of the timed steps (the CIFAR recipes' 128)")
    p.add_argument("--modes", nargs="+", choices=["train", "eval"], default=["train", "eval"])
    p.add_argument("--repeats", type=int, default=10, help="timed interleaved rounds (median)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    p.add_argument("--out", help="write the results as JSON here")
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    started = time.perf_counter()
    rows = []
    for width in args.widths:
        torch.manual_seed(0)
        models = {name: create_model("cifar_resnet18", width=width, **v).to(device) for name, v in VARIANTS.items()}
        one = torch.randn(1, 3, 32, 32, device=device)
        images = torch.randn(args.batch, 3, 32, 32, device=device)
        labels = torch.randint(0, 10, (args.batch,), device=device)
        latency = {}
        for mode in args.modes:
            if mode == "train":
                steps = {n: train_step(m, images, labels) for n, m in models.items()}
            else:
                steps = {n: eval_step(m, images) for n, m in models.items()}
            samples = interleaved_timings(steps, repeats=args.repeats, warmup=args.warmup, device=device)
            latency[mode] = {
                "ratio": ratios(samples, "none"),
                "none_ms": 1e3 * sorted(samples["none"])[len(samples["none"]) // 2],
            }
        base_params = count_params(models["none"])
        for name, model in models.items():
            params = count_params(model)
            rows.append(
                {
                    "width": width,
                    "block": name,
                    "params": params,
                    "added_params": params - base_params,
                    "sr_params": count_sr_params(model),
                    "mflops": 2 * count_macs(model, one) / 1e6,
                    **{f"latency_ratio_{mode}": latency[mode]["ratio"][name] for mode in args.modes},
                    # the ratios' base, on `none`'s row: its median step in milliseconds
                    **{f"latency_ms_{mode}": latency[mode]["none_ms"] for mode in args.modes if name == "none"},
                }
            )
        for mode in args.modes:
            print(f"width {width:g}: `none` {mode} step at batch {args.batch}: {latency[mode]['none_ms']:.1f} ms")
    print_table(rows, args.modes)
    return {
        "benchmark": "block_costs",
        "model": "cifar_resnet18",
        "device": device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "batch": args.batch,
        "repeats": args.repeats,
        "seconds": time.perf_counter() - started,
        "rows": rows,
    }


def print_table(rows: list[dict[str, Any]], modes: list[str]) -> None:
    """One markdown table: every block at every width."""
    header = ["width", "block", "params", "added", "MFLOPs/image", *(f"latency {m} (× none)" for m in modes)]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        cells = [f"{r['width']:g}", r["block"], f"{r['params']:,}", f"{r['added_params']:+,}", f"{r['mflops']:,.1f}"]
        cells += [f"{r[f'latency_ratio_{m}']:.3f}" for m in modes]
        print("| " + " | ".join(cells) + " |", flush=True)


main = make_main(build_parser, run)


if __name__ == "__main__":
    main()
