"""Top-1 of a trained CIFAR run under JPEG re-encoding at several qualities, on and off the source's 8x8 grid.

This project's CIFAR-10 copy was itself JPEG-encoded (about quality 75, data README), and the corruption
benchmark's ``jpeg_compression`` re-encodes it on the same 8x8 block grid. To tell what that alignment does, every
test image is re-encoded (PIL, as :mod:`srblock.data.corruptions` does) at each ``--qualities`` value after a
cyclic shift of ``--shifts`` pixels, then shifted back: shift 0 is the benchmark's corruption, shift 4 puts every
block boundary in the middle of a source block. Prints a Markdown table: top-1 and the RMS pixel error (0-255) per
shift and quality.

    python benchmarks/jpeg_grid.py results/cifar10-cpu/w25/r18-d2d-sr-p32/seed0 --device cpu --out jpeg_grid.json
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from common import make_main  # the script's folder is on sys.path
from srblock.analysis.robustness import checkpoint_evaluator
from srblock.data.corruptions import jpeg_round_trip
from srblock.engine.checkpoint import kept_checkpoint


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run folder with a kept checkpoint (best, else last)")
    parser.add_argument("--qualities", type=int, nargs="+", default=[80, 70, 65, 58, 55, 50, 45, 40, 35, 30])
    parser.add_argument("--shifts", type=int, nargs="+", default=[0, 4], help="pixels, 0-7")
    parser.add_argument("--device", default=None)
    parser.add_argument("--max-images", type=int, default=None, help="a seeded subset of the test split")
    parser.add_argument("--data-dir", default=None, help="replaces the recipe's data.root")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    return parser


def shifted_jpeg(images: torch.Tensor, quality: int, shift: int) -> torch.Tensor:
    """``images`` (uint8 N x 3 x H x W) JPEG-encoded at ``quality`` on a grid moved by ``shift`` pixels."""
    rolled = torch.roll(images, (shift, shift), dims=(2, 3))
    return torch.roll(jpeg_round_trip(rolled, quality), (-shift, -shift), dims=(2, 3))


def run(args: argparse.Namespace) -> dict[str, Any]:
    if any(not 0 <= s < 8 for s in args.shifts):
        raise SystemExit(f"--shifts must lie in 0..7 (the JPEG block is 8 pixels), got {args.shifts}")
    checkpoint = kept_checkpoint(args.run)
    if checkpoint is None:
        raise SystemExit(f"{args.run} holds no checkpoint_best.pt or checkpoint_last.pt")
    task, evaluate = checkpoint_evaluator(
        checkpoint, data_dir=args.data_dir, device=args.device, max_images=args.max_images
    )
    test = task.build_loaders().test
    images = test.images.cpu()
    rows = [{"shift": None, "quality": None, "acc1": evaluate(test, "clean")["acc1"], "rms": 0.0}]
    print(f"{checkpoint}: {len(images)} test images\n\n| shift | quality | top-1 % | RMS error |\n|---|---|---|---|")
    print(f"| clean | – | {rows[0]['acc1']:.2f} | 0 |", flush=True)
    for shift in args.shifts:
        for quality in args.qualities:
            corrupted = shifted_jpeg(images, quality, shift)
            rms = float(((corrupted.double() - images.double()) ** 2).mean().sqrt())
            acc1 = evaluate(test.with_images(corrupted), f"q{quality} shift {shift}")["acc1"]
            rows.append({"shift": shift, "quality": quality, "acc1": acc1, "rms": rms})
            print(f"| {shift} | {quality} | {acc1:.2f} | {rms:.2f} |", flush=True)
    return {"checkpoint": str(checkpoint), "count": len(images), "rows": rows}


main = make_main(build_parser, run)

if __name__ == "__main__":
    main()
