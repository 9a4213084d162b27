"""How much of the SR memory's contribution reaches the next layer under bf16 autocast (issue 10, "Mixed precision").

    python benchmarks/sr_bf16_contribution.py                       # CPU (bf16 autocast works there), ~1 minute
    python benchmarks/sr_bf16_contribution.py --device cuda --out bf16.json

The paper's CIFAR placement: a CIFAR ResNet18 (full width) with SR after ``layer3`` (256 x 8 x 8, P=10, U=8), eval
mode, a batch of real CIFAR-10 test images (random ones when ``--data-dir`` has none). The weights are a random init
whose BatchNorm statistics are recalibrated on the batch, so the features have a trained network's scale and ReLU
sparsity. The memory is scaled so that the recalled tensor has RMS(sum_i w_i M_i) / RMS(X) = r (the ``memory_ratio``
column of the training logs), for r over a grid.

The contribution of the memory is (with SR) - (without SR) at the input of ``layer4[0].conv1`` (where the next stage
starts; its downsample conv sees the same tensor), compared with the fp32 contribution of the same memory:
``kept`` = |c| / |c_fp32| and ``cos`` = cos(c, c_fp32) over the batch. ``tensor`` is the tensor handed to layer4,
``operand`` what its first conv multiplies (autocast casts it to bf16 there), ``logits`` the change of the output.

Precision modes:
  * ``bf16``: plain bf16 autocast; the block runs in its input's dtype, so ``x + recalled`` is a bf16 add;
  * ``bf16+fp32_out``: the block alone in fp32 (its output handed on as fp32) - what "the add in fp32" buys;
  * ``bf16+fp32_stage``: the block and the whole next stage (layer4) outside autocast;
  * ``bf16+stochastic``: bf16 add with stochastic rounding (unbiased in expectation), for comparison;
  * ``tf32_emulated``: fp32 with the conv operand rounded to TF32's 10-bit mantissa (what an Ampere+ GPU's conv
    multiplies with ``allow_tf32``; the tensor itself stays fp32).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common import make_main  # the script's folder is on sys.path
from srblock.data.cifar import load_npz_split
from srblock.data.transforms import CIFAR_MEAN, CIFAR_STD
from srblock.models import create_model

SHARED_DATA = Path(os.environ.get("SRBLOCK_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
MODES = ("fp32", "bf16", "bf16+fp32_out", "bf16+fp32_stage", "bf16+stochastic", "tf32_emulated")
RATIOS = (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (bf16 autocast on either)")
    p.add_argument("--data-dir", default=str(SHARED_DATA / "cifar10"), help="a folder with CIFAR-10's test.npz")
    p.add_argument("--batch", type=int, default=64, help="test images measured")
    p.add_argument("--width", type=float, default=1.0, help="channel width multiplier (1 = the paper's ResNet18)")
    p.add_argument("--ratios", type=float, nargs="+", default=list(RATIOS), help="memory_ratio grid")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="JSON file for the rows")
    return p


def _images(data_dir: str, batch: int, device: torch.device) -> tuple[torch.Tensor, str]:
    test = Path(data_dir) / "test.npz"
    if test.is_file():
        images, _ = load_npz_split(test)
        x, source = images[:batch].float() / 255, f"CIFAR-10 test[:{batch}]"
    else:
        x, source = torch.rand(batch, 3, 32, 32), "uniform noise (no CIFAR-10 test.npz found)"
    mean, std = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1), torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).to(device), source


def _round_mantissa(t: torch.Tensor, bits: int) -> torch.Tensor:
    """fp32 rounded to nearest-even with ``bits`` explicit mantissa bits (TF32: 10), kept in fp32."""
    drop = 23 - bits
    i = t.float().contiguous().view(torch.int32)
    i = (i + ((1 << (drop - 1)) - 1) + ((i >> drop) & 1)) & ~((1 << drop) - 1)
    return i.view(torch.float32)


def _stochastic_bf16(t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """fp32 -> bf16 with stochastic rounding: add uniform noise below bf16's last bit, then truncate."""
    i = t.float().contiguous().view(torch.int32)
    noise = torch.randint(0, 1 << 16, i.shape, generator=generator, device="cpu", dtype=torch.int32).to(i.device)
    return ((i + noise) & ~0xFFFF).view(torch.float32).to(torch.bfloat16)


def _autocast(device: torch.device, on: bool) -> contextlib.AbstractContextManager:
    return torch.autocast(device.type, dtype=torch.bfloat16) if on else contextlib.nullcontext()


def _stats(c: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    c, ref = c.double().flatten(), ref.double().flatten()
    denom = c.norm() * ref.norm()
    return {
        "kept": float(c.norm() / ref.norm()),
        "cos": float(c @ ref / denom) if denom > 0 else 0.0,
    }


@torch.no_grad()
def _head(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model.fc(torch.flatten(model.avgpool(model.layer4(x)), 1))


@torch.no_grad()
def measure(model: nn.Module, feats: dict[bool, torch.Tensor], mode: str, seed: int) -> dict[str, torch.Tensor]:
    """Contribution of the memory at layer4's input (tensor and conv operand) and at the logits, for one mode."""
    block, device = model.layer3.sr, model.layer3.sr.memory.device
    x = feats[mode.startswith("bf16")]  # the SR block's input as this precision computes it (bf16 under autocast)
    if mode == "bf16":
        with _autocast(device, True):
            out = block(x)
    else:
        with torch.autocast(device.type, enabled=False):
            out = block(x.float())
    if mode == "bf16+stochastic":
        out = _stochastic_bf16(out, torch.Generator().manual_seed(seed))
    head_in_bf16 = mode in ("bf16", "bf16+fp32_out", "bf16+stochastic")  # layer4 runs under autocast
    if head_in_bf16:
        operand = lambda t: t.to(torch.bfloat16).float()  # noqa: E731  (autocast's cast at the conv)
    elif mode == "tf32_emulated":
        operand = lambda t: _round_mantissa(t, 10)  # noqa: E731
    else:
        operand = lambda t: t.float()  # noqa: E731
    head_in = (lambda t: t) if head_in_bf16 else operand  # fp32 heads get fp32 tensors (TF32: rounded ones)
    with _autocast(device, head_in_bf16):
        logits, logits_base = _head(model, head_in(out)), _head(model, head_in(x))  # zero memory: x itself
    return {
        "tensor": out.float() - x.float(),
        "operand": operand(out) - operand(x),
        "logits": logits.float() - logits_base.float(),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    images, source = _images(args.data_dir, args.batch, device)
    model = create_model("cifar_resnet18", num_classes=10, sr_stage=3, num_memories=10, hidden=8, width=args.width)
    model = model.to(device)
    # BatchNorm statistics of this batch (momentum None: a plain average), so the features have a trained net's scale.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(images)
    model.eval()

    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.layer1, model.layer2, model.layer3[:-1])
    with torch.no_grad():
        feats = {False: stem(images)}
        with _autocast(device, True):
            feats[True] = stem(images)
        block = model.layer3.sr
        block.memory.normal_()
        recalled = model.layer3.sr(feats[False]) - feats[False]
        unit = recalled.pow(2).mean().sqrt() / feats[False].pow(2).mean().sqrt()
    memory = block.memory.detach().clone() / unit  # memory_ratio 1
    zeros = float((feats[False] == 0).float().mean())
    print(f"input: {source}; SR input {tuple(feats[False].shape[1:])}, {zeros:.0%} zeros (post-ReLU)")
    print(
        f"{'ratio':>7}  {'mode':<16}  {'tensor kept':>11} {'cos':>6}  {'operand kept':>12} {'cos':>6}  "
        f"{'logits kept':>11} {'cos':>6}"
    )
    rows = []
    for ratio in args.ratios:
        with torch.no_grad():
            block.memory.copy_(memory * ratio)
        reference = measure(model, feats, "fp32", args.seed)
        for mode in MODES:
            got = measure(model, feats, mode, args.seed)
            row = {"ratio": ratio, "mode": mode}
            for where in ("tensor", "operand", "logits"):
                stats = _stats(got[where], reference[where] if where != "operand" else reference["tensor"])
                row.update({f"{where}_{k}": v for k, v in stats.items()})
            rows.append(row)
            print(
                f"{ratio:>7g}  {mode:<16}  {row['tensor_kept']:>11.3f} {row['tensor_cos']:>6.3f}  "
                f"{row['operand_kept']:>12.3f} {row['operand_cos']:>6.3f}  {row['logits_kept']:>11.3f} "
                f"{row['logits_cos']:>6.3f}",
                flush=True,
            )
    return {
        "model": "cifar_resnet18 + SR(M=3, P=10, U=8)",
        "width": args.width,
        "images": source,
        "sr_input_zero_fraction": zeros,
        "device": str(device),
        "torch": torch.__version__,
        "rows": rows,
        "note": "kept = |c| / |c_fp32|, cos = cos(c, c_fp32); c = (with SR) - (without SR); operand vs fp32 tensor",
        "nan_free": all(math.isfinite(v) for r in rows for k, v in r.items() if k not in ("mode",)),
    }


main = make_main(build_parser, run)

if __name__ == "__main__":
    main()
