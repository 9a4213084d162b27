"""Build the stratified CIFAR-10 subset that fits the device tool's 64 MiB transfer, reproducibly, with checksums.

The 2026-11-26 GPU pair in RESULTS.md used "1,200 training images per class drawn with numpy seed 0 and the full
test set"; the script that drew it was not committed, so its exact draw is lost. This one draws the same kind of
subset deterministically (``numpy.random.default_rng(seed)``, a sorted choice per class) and prints the sha256 of
what it writes, so a later subset run can be tied to its data. The GPU testbed now carries the whole set as the
18.5 MB JPEG tar instead (``srblock.data.cifar``), so this is only needed to rerun the old protocol.

    python benchmarks/make_cifar10_subset.py --src ../shared/data/cifar10 --out .device/cifar10-subset
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from srblock.io import atomic_open, file_sha256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, required=True, help="folder with the full train.npz and test.npz")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created; existing files refused)")
    parser.add_argument("--per-class", type=int, default=1200, help="training images per class (default 1200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    targets = [args.out / "train.npz", args.out / "test.npz"]
    if any(t.exists() for t in targets):
        raise SystemExit(f"make_cifar10_subset: {args.out} already holds train.npz/test.npz; choose another --out")
    rng = np.random.default_rng(args.seed)
    with np.load(args.src / "train.npz") as train:
        x, y = train["x"], train["y"]
    keep = np.concatenate(
        [np.sort(rng.choice(np.flatnonzero(y == c), args.per_class, replace=False)) for c in np.unique(y)]
    )
    with atomic_open(targets[0], "wb") as f:
        np.savez(f, x=x[keep], y=y[keep])
    with np.load(args.src / "test.npz") as test, atomic_open(targets[1], "wb") as f:
        np.savez(f, x=test["x"], y=test["y"])
    for t in targets:
        print(f"{file_sha256(t)}  {t}")


if __name__ == "__main__":
    main()
