"""Where the SR block's time goes: kernels launched, device time vs wall time, eager vs ``torch.compile``.

    python benchmarks/sr_block_profile.py --device cuda --out sr_block_profile.json

The block of ImageNet ResNet50 at M=3 (C=1024, 14x14, P=10, U=16) on a batch of layer3 outputs, in eval mode, fp32
and bf16 autocast. On a GPU a small block is bound by launches, not arithmetic: if the device time is a small part of
the wall time, fusing (``torch.compile``, CUDA graphs) is what would make it cheaper, not a faster kernel.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from srblock import SRBlock
from srblock.analysis.timing import eval_step, interleaved_timings
from srblock.io import write_json

AMP = {None: None, "bf16": torch.bfloat16}


def profile_block(device: torch.device, batch: int, amp: str | None, repeats: int, compile_block: bool) -> dict:
    block = SRBlock(1024, 14, num_memories=10, hidden=16, memory_init="normal", device=device).eval()
    x = torch.randn(batch, 1024, 14, 14, device=device)
    step = eval_step(torch.compile(block) if compile_block else block, x, amp_dtype=AMP[amp])
    samples = interleaved_timings({"block": step}, repeats=repeats, warmup=5, device=device)  # warm-up compiles
    wall = statistics.median(samples["block"]) * 1e3
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    events = prof.key_averages()
    if device.type == "cuda":
        kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
        device_ms = sum(e.self_device_time_total for e in kernels) / 1e3
    else:
        kernels = [e for e in events if e.key.startswith("aten::") and e.self_cpu_time_total > 0]
        device_ms = sum(e.self_cpu_time_total for e in kernels) / 1e3
    return {
        "batch": batch,
        "amp": amp,
        "compiled": compile_block,
        "wall_ms": wall,
        "device_ms": device_ms,
        "kernels": sum(e.count for e in kernels),
        "top": [(e.key[:60], e.count) for e in sorted(kernels, key=lambda e: -e.count)[:12]],
    }


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    p.add_argument("--out", help="JSON file for the rows")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    rows = []
    print(f"{'batch':>5}  {'amp':<5}  {'compiled':<8}  {'wall ms':>8}  {'device ms':>9}  {'kernels':>7}")
    for batch in args.batch_sizes:
        for amp in (None, "bf16"):
            for compiled in (False,) if args.no_compile else (False, True):
                row = profile_block(device, batch, amp, args.repeats, compiled)
                rows.append(row)
                timing = f"{row['wall_ms']:>8.3f}  {row['device_ms']:>9.3f}  {row['kernels']:>7}"
                print(f"{batch:>5}  {amp or 'fp32':<5}  {compiled!s:<8}  {timing}", flush=True)
    print("kernels of the last eager row:", rows[-2 if not args.no_compile else -1]["top"])
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, rows)
    return rows


if __name__ == "__main__":
    main()
