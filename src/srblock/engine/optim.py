"""Optimizer, parameter groups and learning-rate schedule of a recipe.

Parameter groups (``optim.groups``, beyond the paper, off by default): the paper trains every parameter with one
learning rate and weight decay (PAPER.md §1). A recipe may give a named group its own learning-rate multiplier and
weight decay, or freeze it::

    optim:
      groups:
        sr_memory: {lr_mult: 10, weight_decay: 0}   # the SR memory tensors M
        sr_routing: {frozen: true}                  # squeeze conv + FCN of every SR block, fixed at their init
        norm_bias: {weight_decay: 0}                # norm-layer weights and every bias (timm's no-decay set)
        norm: {lr_mult: 64}                         # norm-layer weights and biases only (airbench's BN-bias lr)

A parameter belongs to the first group of :data:`GROUPS` that claims it; the rest form the default group, which
comes first in the optimizer. Frozen parameters get ``requires_grad=False`` before the model is wrapped (DDP,
compile) and are not given to the optimizer, so a frozen memory stays exactly at its init.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "GROUPS",
    "GROUP_DEFAULTS",
    "build_optimizer",
    "build_scheduler",
    "freeze_groups",
    "group_parameters",
    "observe_train_loss",
    "validate_groups",
]

#: Options of one parameter group; ``weight_decay: None`` means the recipe's ``optim.weight_decay``.
GROUP_DEFAULTS: dict[str, Any] = {"lr_mult": 1.0, "weight_decay": None, "frozen": False}


def _sr_params(model: nn.Module, part: str) -> Iterator[nn.Parameter]:
    from srblock.layers import find_sr_blocks

    for block in find_sr_blocks(model).values():
        if part == "memory":
            yield block.memory
        else:
            yield from (p for _, p in block.named_routing_parameters())


_NORM_LAYERS = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
)


def _norm_params(model: nn.Module) -> Iterator[nn.Parameter]:
    # the parameters of normalisation layers only: airbench scales the lr of BatchNorm biases, not of other biases
    for module in model.modules():
        if isinstance(module, _NORM_LAYERS):
            yield from module.parameters(recurse=False)


def _norm_bias_params(model: nn.Module) -> Iterator[nn.Parameter]:
    # timm's no-weight-decay convention: 1-d parameters are norm scales/shifts or biases.
    for _, param in model.named_parameters():
        if param.ndim <= 1:
            yield param


#: Group name -> the parameters it claims, in priority order (an SR block's 1-d parameters stay SR ones; with both
#: ``norm`` and ``norm_bias`` configured, ``norm_bias`` keeps the other biases).
GROUPS: dict[str, Callable[[nn.Module], Iterator[nn.Parameter]]] = {
    "sr_memory": lambda model: _sr_params(model, "memory"),
    "sr_routing": lambda model: _sr_params(model, "routing"),
    "norm": _norm_params,
    "norm_bias": _norm_bias_params,
}


def validate_groups(groups: Any) -> None:
    """Raise ``ValueError`` for an ``optim.groups`` value the engine cannot use."""
    if not isinstance(groups, Mapping):
        raise ValueError(f"optim.groups must be a mapping of group name -> options, got {groups!r}")
    for name, options in groups.items():
        if name not in GROUPS:
            raise ValueError(f"unknown parameter group optim.groups.{name}; known groups: {sorted(GROUPS)}")
        if not isinstance(options, Mapping):
            raise ValueError(f"optim.groups.{name} must be a mapping of options, got {options!r}")
        unknown = sorted(set(options) - set(GROUP_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} in optim.groups.{name}; known: {sorted(GROUP_DEFAULTS)}")
        lr_mult, wd = options.get("lr_mult", 1.0), options.get("weight_decay")
        if isinstance(lr_mult, bool) or not isinstance(lr_mult, (int, float)) or lr_mult < 0:
            raise ValueError(f"optim.groups.{name}.lr_mult must be a number >= 0, got {lr_mult!r}")
        if wd is not None and (isinstance(wd, bool) or not isinstance(wd, (int, float)) or wd < 0):
            raise ValueError(f"optim.groups.{name}.weight_decay must be a number >= 0 or null, got {wd!r}")
        if not isinstance(options.get("frozen", False), bool):
            raise ValueError(f"optim.groups.{name}.frozen must be true or false, got {options['frozen']!r}")


def group_parameters(model: nn.Module, groups: Mapping[str, Mapping[str, Any]]) -> dict[str, list[nn.Parameter]]:
    """The parameters of each configured group (first claim wins) and the rest under ``"default"``."""
    claimed: set[int] = set()
    out: dict[str, list[nn.Parameter]] = {}
    for name, members in GROUPS.items():
        if name in groups:
            out[name] = [p for p in members(model) if id(p) not in claimed]
            claimed.update(id(p) for p in out[name])
    out["default"] = [p for p in model.parameters() if id(p) not in claimed]
    return out


def freeze_groups(model: nn.Module, groups: Mapping[str, Mapping[str, Any]]) -> int:
    """Set ``requires_grad=False`` on every parameter of a group with ``frozen: true``; returns how many tensors."""
    frozen = 0
    for name, params in group_parameters(model, groups).items():
        if name != "default" and groups[name].get("frozen", False):
            for param in params:
                param.requires_grad_(False)
                frozen += 1
    return frozen


def build_optimizer(model: nn.Module, optim: Mapping[str, Any]) -> torch.optim.Optimizer:
    """SGD with momentum (the paper's), Adam or AdamW over the trainable parameters, one param group per
    ``optim.groups``. Adam is the time-series review's (Keras' Adam: its eps 1e-7 against PyTorch's 1e-8)."""
    groups = optim.get("groups") or {}
    param_groups = []
    for name, params in group_parameters(model, groups).items():
        options = {**GROUP_DEFAULTS, **groups.get(name, {})}
        params = [p for p in params if p.requires_grad]
        if not params or options["frozen"]:
            continue
        wd = optim["weight_decay"] if options["weight_decay"] is None else options["weight_decay"]
        group = {"params": params, "lr": optim["lr"] * options["lr_mult"], "weight_decay": wd, "name": name}
        param_groups.insert(0 if name == "default" else len(param_groups), group)
    if optim["name"] == "sgd":
        return torch.optim.SGD(
            param_groups,
            lr=optim["lr"],
            momentum=optim["momentum"],
            weight_decay=optim["weight_decay"],
            nesterov=optim["nesterov"],
        )
    adam = torch.optim.Adam if optim["name"] == "adam" else torch.optim.AdamW
    return adam(param_groups, lr=optim["lr"], weight_decay=optim["weight_decay"])


class PlateauFactor:
    """The lr factor of the ``plateau`` schedule: Keras' ``ReduceLROnPlateau`` on the training loss.

    After each epoch, :meth:`observe` gets its mean training loss; an epoch whose loss is not below the best so far
    by ``min_delta`` (absolute, Keras' default 1e-4) counts as bad, and after ``patience`` bad epochs in a row the
    factor is multiplied by ``gamma`` (not below ``floor``) and the count restarts. Written here rather than torch's
    ``ReduceLROnPlateau`` because the engine steps one per-iteration ``LambdaLR`` for every schedule (resume,
    warm-up, changed settings): as a callable object, its state is saved in the ``LambdaLR``'s state dict.
    """

    def __init__(self, gamma: float, patience: int, min_delta: float, floor: float, warmup: int) -> None:
        self.gamma, self.patience, self.min_delta, self.floor, self.warmup = gamma, patience, min_delta, floor, warmup
        self.factor, self.best, self.bad_epochs = 1.0, math.inf, 0

    def observe(self, loss: float) -> None:
        if loss < self.best - self.min_delta:
            self.best, self.bad_epochs = loss, 0
            return
        self.best = min(self.best, loss)  # Keras keeps the best loss even when it fell by less than min_delta
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            self.factor, self.bad_epochs = max(self.factor * self.gamma, self.floor), 0

    def __call__(self, step: int) -> float:
        return self.factor * ((step + 1) / self.warmup if step < self.warmup else 1.0)


def observe_train_loss(scheduler: torch.optim.lr_scheduler.LambdaLR, loss: float) -> bool:
    """Pass an epoch's mean training loss to a ``plateau`` schedule; ``False`` (nothing done) for any other."""
    plateaus = {id(f): f for f in scheduler.lr_lambdas if isinstance(f, PlateauFactor)}
    for factor in plateaus.values():
        factor.observe(loss)
    if plateaus:  # the new factor applies from the next step on: set it now, as LambdaLR.step would
        for group, base, fn in zip(
            scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True
        ):
            group["lr"] = base * fn(scheduler.last_epoch)
    return bool(plateaus)


def build_scheduler(
    optimizer: torch.optim.Optimizer, schedule: Mapping[str, Any], *, steps_per_unit: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """The recipe's LR schedule as a per-iteration multiplier (stepped after every optimizer step).

    ``multistep`` milestones are in epochs (``steps_per_unit`` = iterations per epoch) or, for iteration-counted
    runs, in iterations (``steps_per_unit`` = 1); fractional milestones (from ``--epochs`` scaling) land on the
    nearest iteration. Stepping per iteration at epoch-aligned milestones equals torchvision's per-epoch MultiStepLR.
    ``poly``: ``(lr - min_lr) * (1 - t/T)^power + min_lr``; ``cosine`` likewise; ``piecewise``: the factor is linear
    between ``points`` ``[t/T, factor]`` (airbench's triangle: ``[[0, 0.2], [0.23, 1], [1, 0.07]]``); ``plateau``:
    :class:`PlateauFactor`, fed the training loss per epoch by :func:`observe_train_loss` (``gamma``, ``patience``,
    ``min_delta``, ``min_lr`` its options);
    ``warmup_steps`` ramps linearly. The multiplier applies to every parameter group alike (``min_lr`` is relative
    to the recipe's ``optim.lr``).
    """
    base_lr = optimizer.defaults["lr"]
    floor = schedule["min_lr"] / base_lr
    name, warmup = schedule["name"], schedule["warmup_steps"]
    milestones = [round(m * steps_per_unit) for m in schedule["milestones"]]
    knots = list(zip(*schedule["points"], strict=True)) or [(0.0, 1.0), (1.0, 1.0)]
    if name == "plateau":
        plateau = PlateauFactor(schedule["gamma"], schedule["patience"], schedule["min_delta"], floor, warmup)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, plateau)

    def factor(step: int) -> float:
        t = min(step, total_steps) / max(total_steps, 1)
        if name == "multistep":
            value = schedule["gamma"] ** bisect.bisect_right(milestones, step)
        elif name == "poly":
            value = (1 - floor) * (1 - t) ** schedule["power"] + floor
        elif name == "cosine":
            value = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
        elif name == "piecewise":
            value = float(np.interp(t, knots[0], knots[1]))
        else:
            value = 1.0
        if step < warmup:
            value *= (step + 1) / warmup
        return value

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
