"""A load-balancing loss for the SR routing (beyond the paper; ``train.sr_balance``, 0 = off = the paper's loss).

Sharpened routing (``model.sr.logit_scale`` 8, RESULTS.md "Does the memory learn?") picks one memory per image, and
in one of its first two seeds every test image ended on the same memory: the router collapse that mixture-of-experts
layers meet without a balancing term. The remedy of that literature (Shazeer et al. 2017, arXiv 1701.06538, the
"importance" loss) is taken here: per SR block and training batch, with ``u`` the batch mean of the softmax weights
(how much each of the P memories is recalled),

    balance = P · Σᵢ uᵢ² − 1 = CV(u)²,

0 when the batch recalls every memory equally, P − 1 when it recalls one. It says nothing about one image's
weights, so each image may still pick a single memory. The training loss gets ``weight`` times the mean over the
blocks; the engine logs the unweighted mean as ``sr_balance`` (``train_sr_balance`` in ``metrics.csv``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["RoutingBalance"]


class RoutingBalance:
    """Collects each SR block's softmax weights during training forwards and turns them into the balance term.

    Create it on the bare model (hooks on the blocks' ``softmax`` submodules also fire under DDP or compile);
    :meth:`loss` consumes what the last forward recorded. Evaluation forwards (no grad or eval mode) record nothing.

    >>> from srblock.layers import SRBlock
    >>> model = nn.Sequential(SRBlock(4, 2, num_memories=3, hidden=2))
    >>> balance = RoutingBalance(model, weight=0.01)
    >>> _ = model(torch.randn(5, 4, 2, 2))
    >>> term = balance.loss()  # a scalar in [0, P - 1]; the engine adds balance.weight * term to the loss
    >>> term.shape, 0 <= term.item() <= 2
    (torch.Size([]), True)
    """

    def __init__(self, model: nn.Module, weight: float) -> None:
        from srblock.layers import find_sr_blocks

        self.weight = float(weight)
        blocks = find_sr_blocks(model)
        if not blocks:
            raise ValueError("train.sr_balance needs a model with SR blocks, got one without (set model.sr_stage)")
        self._weights: list[torch.Tensor] = []
        self._handles = [block.softmax.register_forward_hook(self._record) for block in blocks.values()]

    def _record(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:
        if module.training and torch.is_grad_enabled():
            self._weights.append(output)

    def loss(self) -> torch.Tensor:
        """Mean over the recorded forwards (one per block) of P · Σ (batch-mean weight)² − 1, in float32."""
        if not self._weights:
            raise RuntimeError("RoutingBalance.loss() found no SR routing weights: call it after a training forward")
        terms = []
        for weights in self._weights:
            usage = weights.float().flatten(1).mean(dim=0)  # B x P (or B x P x 1 x 1) -> P
            terms.append(usage.numel() * usage.square().sum() - 1)
        self._weights.clear()
        return torch.stack(terms).mean()

    def remove(self) -> None:
        """Remove the hooks (the model is untouched afterwards)."""
        for handle in self._handles:
            handle.remove()
        self._weights.clear()
