"""Interleaved wall-clock timing: the cost of SR as a ratio to a baseline measured in the same run.

Timing two models one after the other lets drift (thermal throttling, other processes on a shared machine, clock
boosts) land on one of them only. Here every repeat runs each candidate once, in a rotating order, and the ratio is
taken per repeat (the samples ran back to back) and then the median over repeats, so slow phases of the machine
hit all candidates alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.modes import eval_mode

__all__ = ["eval_step", "interleaved_timings", "ratios", "sr_block_step", "train_step"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, amp_dtype: torch.dtype | None):
    if amp_dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype)


def eval_step(model: nn.Module, images: torch.Tensor, *, amp_dtype: torch.dtype | None = None) -> Callable[[], object]:
    """A closure running one inference forward pass of ``model`` (eval mode, no autograd) on ``images``."""
    device = images.device

    def step() -> object:
        model.eval()
        with torch.inference_mode(), _autocast(device, amp_dtype):
            return model(images)

    return step


def train_step(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    lr: float = 1e-3,
    amp_dtype: torch.dtype | None = None,
) -> Callable[[], object]:
    """A closure running one SGD training step (forward, cross-entropy, backward, optimizer step) on one batch.

    The optimizer is SGD with momentum and weight decay, as in the paper's recipes (PAPER.md §3), so its per-parameter
    cost (the SR memory is most of the block's parameters) is part of the measurement.
    """
    device = images.device
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)

    def step() -> object:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        with _autocast(device, amp_dtype):
            loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        return loss

    return step


def sr_block_step(
    model: nn.Module, images: torch.Tensor, mode: str, *, amp_dtype: torch.dtype | None = None
) -> Callable[[], object]:
    """A closure running only the SR blocks of ``model``, each on the feature map it sees for ``images``.

    ``mode="eval"``: one inference forward; ``"train"``: forward, backward and an SGD step of the blocks' parameters.
    Timed next to the whole model, its share is a low-noise estimate of what SR adds to a step.
    """
    from ..layers.sr import find_sr_blocks

    blocks = list(find_sr_blocks(model).values())
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no SR block")
    if mode not in ("eval", "train"):
        raise ValueError(f"mode must be 'eval' or 'train', got {mode!r}")
    seen: dict[int, torch.Tensor] = {}

    def record(index: int) -> Callable[..., None]:
        return lambda _m, inputs: seen.setdefault(index, inputs[0].detach().clone())

    handles = [block.register_forward_pre_hook(record(i)) for i, block in enumerate(blocks)]
    try:
        with eval_mode(model), torch.no_grad(), _autocast(images.device, amp_dtype):
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    inputs = [seen[i] for i in range(len(blocks))]
    if mode == "eval":
        steps = [eval_step(block, x, amp_dtype=amp_dtype) for block, x in zip(blocks, inputs, strict=True)]
        return lambda: [step() for step in steps]
    optimizer = torch.optim.SGD([p for b in blocks for p in b.parameters()], lr=1e-3, momentum=0.9, weight_decay=1e-4)
    for x in inputs:
        x.requires_grad_(True)
    grads = [torch.ones_like(x) for x in inputs]

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        for block, x, grad in zip(blocks, inputs, grads, strict=True):
            with _autocast(x.device, amp_dtype):
                out = block(x)
            out.backward(grad.to(out.dtype))
        optimizer.step()

    return step


def interleaved_timings(
    steps: Mapping[str, Callable[[], object]],
    *,
    repeats: int = 10,
    warmup: int = 2,
    inner: int = 1,
    device: torch.device | str = "cpu",
) -> dict[str, list[float]]:
    """Seconds per call of each step, measured interleaved: each repeat runs every step once, in rotating order.

    Args:
        steps: name -> zero-argument callable (see :func:`eval_step`, :func:`train_step`).
        repeats: timed rounds; each yields one sample per step.
        warmup: untimed rounds first (allocator, cuDNN autotuning, lazy init).
        inner: calls per sample (the sample is their mean), for steps too short to time one by one.
        device: CUDA work is synchronised before and after each sample.

    >>> t = interleaved_timings({"a": lambda: sum(range(100)), "b": lambda: sum(range(200))}, repeats=3, warmup=0)
    >>> sorted(t), len(t["a"])
    (['a', 'b'], 3)
    """
    if repeats < 1 or inner < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1, inner >= 1, warmup >= 0; got {repeats}, {inner}, {warmup}")
    device = torch.device(device)
    names = list(steps)
    for _ in range(warmup):
        for name in names:
            steps[name]()
    _sync(device)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            _sync(device)
            start = time.perf_counter()
            for _ in range(inner):
                steps[name]()
            _sync(device)
            samples[name].append((time.perf_counter() - start) / inner)
    return samples


def ratios(samples: Mapping[str, list[float]], baseline: str, *, paired: bool = True) -> dict[str, float]:
    """Time of each entry relative to ``baseline`` (which maps to 1.0).

    ``paired`` (default): the median over repeats of the per-repeat ratio, which cancels drift between repeats
    (both samples of a repeat ran back to back); otherwise the ratio of the two medians.
    """
    if baseline not in samples:
        raise ValueError(f"baseline {baseline!r} is not among the timed steps {sorted(samples)}")
    base = samples[baseline]
    if paired:
        return {
            name: statistics.median(t / b for t, b in zip(times, base, strict=True)) for name, times in samples.items()
        }
    return {name: statistics.median(times) / statistics.median(base) for name, times in samples.items()}
