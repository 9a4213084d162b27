"""Lookahead with a growing slow-weight decay, as airbench94 uses it (Jordan 2024, arXiv 2404.00498).

Lookahead (Zhang et al. 2019, arXiv 1907.08610) keeps slow weights φ beside the fast weights θ that the optimizer
moves; every k steps φ ← φ + α(θ − φ) and θ ← φ. airbench94 runs it over the last part of training with k = 5 and
α = 1 − ρ, ρ = decay^k · (t/T)^power (t: steps done, T: all steps), so the average is short early and long at the
end; it averages every float entry of the state dict (BatchNorm statistics too) and also sets θ ← φ at the end of
every epoch and of training, so the final weights are the slow ones.

Written here rather than taken from a library: torch's ``swa_utils.AveragedModel`` keeps a separate averaged copy
and never writes it back into the trained model, which is what Lookahead is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["LOOKAHEAD_DEFAULTS", "Lookahead", "check_lookahead"]

#: airbench94's values: start after 30 % of training (its 3 of 10 epochs), every 5 steps, decay 0.95, power 3.
LOOKAHEAD_DEFAULTS: dict[str, Any] = {"start": 0.3, "every": 5, "decay": 0.95, "power": 3.0}


def check_lookahead(options: Any) -> dict[str, Any] | None:
    """``optim.lookahead`` with defaults filled in (``None``: off); ``ValueError`` naming a bad key or value."""
    if options is None or options is False:
        return None
    if options is True:
        options = {}
    if not isinstance(options, Mapping):
        raise ValueError(
            f"optim.lookahead must be null, true or a mapping of {sorted(LOOKAHEAD_DEFAULTS)}, got {options!r}"
        )
    unknown = sorted(set(options) - set(LOOKAHEAD_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in optim.lookahead; known keys: {sorted(LOOKAHEAD_DEFAULTS)}")
    merged = {**LOOKAHEAD_DEFAULTS, **options}
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in merged.values())
    if not numbers or not (
        0 <= merged["start"] < 1
        and isinstance(merged["every"], int)
        and merged["every"] > 0
        and 0 < merged["decay"] <= 1
    ):
        raise ValueError(
            f"optim.lookahead needs 0 <= start < 1 (fraction of training), every a positive int, 0 < decay <= 1 and a "
            f"numeric power, got {merged}"
        )
    return merged


class Lookahead:
    """The slow weights of ``model``; call :meth:`step` after every optimizer step.

    Args:
        model: the bare model (not a DDP/compile wrapper; their tensors are the same).
        total_steps, steps_per_epoch: of the run (the schedule of ρ and the end-of-epoch resets).
        start, every, decay, power: see the module docstring and :data:`LOOKAHEAD_DEFAULTS`.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        total_steps: int,
        steps_per_epoch: int,
        start: float = 0.3,
        every: int = 5,
        decay: float = 0.95,
        power: float = 3.0,
    ) -> None:
        self.model = model
        self.total_steps, self.steps_per_epoch = total_steps, steps_per_epoch
        self.start_step = round(start * total_steps)
        self.every, self.decay, self.power = every, decay, power
        self.slow: dict[str, torch.Tensor] | None = None

    def _fast(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def step(self, done: int) -> None:
        """Update after optimizer step number ``done`` (1-based)."""
        if done <= self.start_step:
            return
        if done % self.every == 0:
            if self.slow is None:
                self.slow = {k: v.detach().clone() for k, v in self._fast().items()}
                return
            rho = self.decay**self.every * (done / self.total_steps) ** self.power
            for key, value in self._fast().items():
                self.slow[key].lerp_(value, 1 - rho)
                value.copy_(self.slow[key])
        elif self.slow is not None and (done % self.steps_per_epoch == 0 or done == self.total_steps):
            for key, value in self._fast().items():
                value.copy_(self.slow[key])

    def state_dict(self) -> dict[str, Any]:
        return {"slow": self.slow}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.slow = None if state["slow"] is None else {k: v.clone() for k, v in state["slow"].items()}
