"""Learning dynamics of the SR blocks, measured on the validation pass the engine runs anyway (no extra forward).

For every SR block, named by its module path (``layer3.sr``), :class:`SRDynamics` adds these columns to each
``metrics.csv`` row:

* ``<name>.memory_ratio``: RMS(Σ wᵢMᵢ) / RMS(X) over the pass — how much the recalled memory changes the features;
* ``<name>.routing_change``: ‖θ − θ₀‖ / ‖θ₀‖ over the squeeze and FCN weights (θ₀: their values at init);
* ``<name>.routing_turn``: 1 − cos(θ, θ₀) — how far the routing turned. Weight decay only shrinks θ (a pure
  shrink leaves this at 0 however large ``routing_change`` gets), so this is the part gradients made;
* ``<name>.routing_entropy``: mean entropy of the softmax weights over the pass divided by log P
  (1 = uniform routing, 0 = one memory per input);
* ``<name>.memory_spread``: RMS of (Mᵢ − mean over i of Mᵢ) / RMS(M) — 0 while the P memories are identical. With
  zero-initialised memory the memories receive nearly the same gradient, so this shows whether the symmetry broke.

The recalled tensor is never materialised: Σ_b ‖w_b M‖² = Σ_b w_bᵀ G w_b with G = M Mᵀ (P × P), so the columns cost
a few small matmuls per validation batch. Sums are all-reduced over ranks like the task's own metrics.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .distributed import DistInfo

__all__ = ["SRDynamics"]


def _routing_vector(block: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().float().flatten() for _, p in block.named_routing_parameters()])


class SRDynamics:
    """Per-block training-dynamics columns; create it on the freshly initialised model (θ₀ is read then).

    >>> from srblock.layers import SRBlock
    >>> model = nn.Sequential(SRBlock(4, 2, num_memories=3, hidden=2))
    >>> dynamics = SRDynamics(model)
    >>> with dynamics.track():
    ...     _ = model(torch.randn(5, 4, 2, 2))
    >>> cols = dynamics.columns()
    >>> cols["0.memory_ratio"], cols["0.routing_change"]  # zero memory at init, nothing trained yet
    (0.0, 0.0)
    """

    def __init__(self, model: nn.Module, dist: DistInfo | None = None) -> None:
        from srblock.layers import find_sr_blocks

        self.dist = dist or DistInfo()
        self.blocks = find_sr_blocks(model)
        self.init = {name: _routing_vector(block).cpu() for name, block in self.blocks.items()}
        self._sums: dict[str, torch.Tensor] = {}
        self._size: dict[str, tuple[int, ...]] = {}

    @contextmanager
    def track(self) -> Iterator[None]:
        """Accumulate the activation statistics of every forward pass inside the context (hooks removed on exit)."""
        self._sums, self._size = {}, {}
        handles = []
        for name, block in self.blocks.items():
            handles.append(block.register_forward_pre_hook(self._input_hook(name)))
            handles.append(block.softmax.register_forward_hook(self._weights_hook(name, block)))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _add(self, name: str, index: int, value: torch.Tensor) -> None:
        sums = self._sums.setdefault(name, torch.zeros(6, dtype=torch.float64, device=value.device))
        sums[index] += value.double()

    def _input_hook(self, name: str):
        def hook(_module: nn.Module, inputs: tuple) -> None:
            x = inputs[0].detach()
            self._add(name, 0, x.float().pow(2).sum())
            self._add(name, 1, torch.tensor(float(x.numel()), device=x.device))
            self._size[name] = tuple(x.shape[2:])  # the memory is added at this size (a coarse block resizes it)

        return hook

    def _weights_hook(self, name: str, block: nn.Module):
        def hook(_module: nn.Module, _inputs: tuple, weights: torch.Tensor) -> None:
            w = weights.detach().float()
            memory = block.resized_memory(self._size.get(name, block.feat_size)).detach().float().flatten(1)
            gram = memory @ memory.T  # P x P
            self._add(name, 2, ((w @ gram) * w).sum())  # Σ_b ‖w_b M‖²
            self._add(name, 5, torch.tensor(float(w.shape[0] * memory.shape[1]), device=w.device))
            self._add(name, 3, -(w * w.clamp_min(1e-30).log()).sum())
            self._add(name, 4, torch.tensor(float(w.shape[0]), device=w.device))

        return hook

    def columns(self) -> dict[str, float]:
        """The columns of the last :meth:`track` pass (activation ones NaN if it saw no batch) and of the weights."""
        out: dict[str, float] = {}
        for name, block in self.blocks.items():
            sums = self._sums.get(name)
            if sums is not None:
                sums = sums.clone()
                self.dist.all_reduce(sums)
                x_sq, x_n, recall_sq, entropy, samples, recall_n = sums.tolist()
                x_rms = math.sqrt(x_sq / x_n) if x_n else math.nan
                recall_rms = math.sqrt(recall_sq / recall_n) if recall_n else math.nan
                out[f"{name}.memory_ratio"] = recall_rms / x_rms if x_rms else math.nan
                norm = math.log(block.num_memories) if block.num_memories > 1 else math.nan  # P = 1: no choice
                out[f"{name}.routing_entropy"] = entropy / samples / norm if samples else math.nan
            else:
                out[f"{name}.memory_ratio"] = out[f"{name}.routing_entropy"] = math.nan
            theta0 = self.init[name]
            delta = _routing_vector(block).cpu() - theta0
            out[f"{name}.routing_change"] = float(delta.norm() / theta0.norm())
            theta = theta0 + delta
            out[f"{name}.routing_turn"] = float(1 - torch.dot(theta, theta0) / (theta.norm() * theta0.norm()))
            memory = block.memory.detach().float()
            spread = (memory - memory.mean(0, keepdim=True)).pow(2).mean().sqrt()
            rms = memory.pow(2).mean().sqrt()
            out[f"{name}.memory_spread"] = float(spread / rms) if rms > 0 else 0.0
        return out
