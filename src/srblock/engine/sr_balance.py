"""Routing losses for the SR block (beyond the paper; ``train.sr_balance`` is the weight, 0 = off = the paper's loss).

Sharpened routing (``model.sr.logit_scale`` 8, RESULTS.md "Does the memory learn?") picks one memory per image, and
in 2 of its first 3 seeds every test image ended on the same memory: the router collapse that mixture-of-experts
layers meet without a balancing term. Per SR block and training batch, with ``w_b`` image b's softmax weights and
``u`` their batch mean (how much each of the P memories is recalled), ``train.sr_balance_loss`` picks:

- ``importance`` (Shazeer et al. 2017, arXiv 1701.06538): P · Σᵢ uᵢ² − 1 = CV(u)², 0 when the batch recalls every
  memory equally, P − 1 when it recalls one. It says nothing about one image's weights, but a uniform softmax for
  every image is its easiest minimum: on CIFAR (weight 0.1, seed 0) it kept the entropy at 0.99 of uniform.
- ``mutual_info`` (Krause et al. 2010, "Discriminative clustering by regularized information maximization"):
  (mean_b H(w_b) − H(u)) / log P = −I(image; memory) / log P, from 0 (every image uniform, or all on one memory)
  down to −1 (each image decisive, the memories used equally): it asks for decisive and balanced routing at once.
  On CIFAR (weight 0.1, seed 0) it got that (entropy 0.001, term −0.97) at a cost of 3.2 pp test top-1; like the
  other term, its gradient also reaches the backbone through the squeeze conv.

The training loss gets ``weight`` times the mean over the blocks; the engine logs the unweighted mean as
``sr_balance`` (``train_sr_balance`` in ``metrics.csv``). By default the term's gradient reaches everything the
weights depend on, the backbone features too (through the squeeze conv); ``train.sr_balance_detach: true`` keeps it
to the routing (squeeze conv and FCN): the weights are computed again from the detached block input for the term
(one more squeeze and FCN per block and step), while the task loss still trains the backbone through the routing.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

__all__ = ["BALANCE_LOSSES", "RoutingBalance"]

BALANCE_LOSSES = ("importance", "mutual_info")


def _entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy over the last axis; the clamp keeps the gradient finite where a weight is exactly 0 (collapsed)."""
    return -(p * p.clamp_min(1e-12).log()).sum(dim=-1)


class RoutingBalance:
    """Collects each SR block's softmax weights during training forwards and turns them into the balance term.

    Create it on the bare model (hooks on the blocks' ``softmax`` submodules also fire under DDP or compile);
    :meth:`loss` consumes what the forwards since its last call recorded (call it after every training forward, or
    the records pile up). Evaluation forwards (no grad or eval mode) record nothing.

    >>> from srblock.layers import SRBlock
    >>> model = nn.Sequential(SRBlock(4, 2, num_memories=3, hidden=2))
    >>> balance = RoutingBalance(model, weight=0.01)
    >>> _ = model(torch.randn(5, 4, 2, 2))
    >>> term = balance.loss()  # a scalar in [0, P - 1]; the engine adds balance.weight * term to the loss
    >>> term.shape, 0 <= term.item() <= 2
    (torch.Size([]), True)
    """

    def __init__(self, model: nn.Module, weight: float, kind: str = "importance", *, detach: bool = False) -> None:
        from srblock.layers import find_sr_blocks

        if kind not in BALANCE_LOSSES:
            raise ValueError(f"the SR routing loss must be one of {BALANCE_LOSSES}, got {kind!r}")
        self.weight = float(weight)
        self.kind = kind
        blocks = find_sr_blocks(model)
        if not blocks:
            raise ValueError("train.sr_balance needs a model with SR blocks, got one without (set model.sr_stage)")
        # the softmax output itself, or (block, input) to compute the weights again from the detached input
        self._records: list[torch.Tensor | tuple[nn.Module, torch.Tensor]] = []
        if detach:
            self._handles = [block.register_forward_pre_hook(self._record_input) for block in blocks.values()]
        else:
            self._handles = [block.softmax.register_forward_hook(self._record) for block in blocks.values()]

    def _record(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:
        if module.training and torch.is_grad_enabled():
            self._records.append(output)

    def _record_input(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        if module.training and torch.is_grad_enabled():
            self._records.append((module, args[0]))

    def loss(self) -> torch.Tensor:
        """Mean over the recorded forwards (one per block) of the chosen term (module docstring), in float32."""
        if not self._records:
            raise RuntimeError("RoutingBalance.loss() found no SR routing weights: call it after a training forward")
        terms = []
        for record in self._records:
            weights = record if isinstance(record, torch.Tensor) else record[0].memory_weights(record[1].detach())
            w = weights.float().flatten(1)  # B x P (or B x P x 1 x 1) -> B x P
            usage = w.mean(dim=0)
            if self.kind == "importance":
                terms.append(usage.numel() * usage.square().sum() - 1)
            else:
                terms.append((_entropy(w).mean() - _entropy(usage)) / math.log(usage.numel()))
        self._records.clear()
        return torch.stack(terms).mean()

    def remove(self) -> None:
        """Remove the hooks (the model is untouched afterwards)."""
        for handle in self._handles:
            handle.remove()
        self._records.clear()
