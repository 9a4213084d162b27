"""Surgery on any model: put an SR block after a named submodule, find the SR blocks, take them out again.

Where the block goes (the checkpoint keys of the existing modules never change, so plain weights still load):

* the target is an ``nn.Sequential`` (a torchvision/timm ResNet stage such as ``layer3``): the block is appended to
  it as the child ``sr``, so it is visible in ``print(model)`` and runs as the stage's last step (after a stage
  regularizer added earlier, PAPER.md §2);
* any other module (a residual block, a pooling layer, a user's own module): the block becomes the child ``sr`` of
  that module and a forward hook passes the module's output through it.

Either way the block's parameters are ``<after>.sr.*`` in the state dict.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from ..layers.modes import eval_mode
from ..layers.sr import SRBlock1d, SRBlock2d, SRBlock3d, SRBlockNd

__all__ = ["count_sr_params", "find_sr_blocks", "insert_sr", "remove_sr"]

# The paper's CIFAR setting (P from 2, U = 8); create_model uses the same defaults.
DEFAULT_NUM_MEMORIES = 2
DEFAULT_HIDDEN = 8

_SR_BY_DIMS: dict[int, type[SRBlockNd]] = {1: SRBlock1d, 2: SRBlock2d, 3: SRBlock3d}


def _apply_child(module: nn.Module, _inputs: tuple, output: torch.Tensor, *, child: str) -> torch.Tensor:
    # Module-level (not a lambda) so models with an inserted block still pickle and deepcopy.
    return getattr(module, child)(output)


def _candidates_message(model: nn.Module, after: str) -> str:
    names = [n for n, _ in model.named_modules() if n]
    close = difflib.get_close_matches(after, names, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    shallow = [n for n in names if n.count(".") <= 1]
    return (
        f"no submodule named {after!r} in {type(model).__name__}.{hint} Candidates: {', '.join(shallow)} "
        "(any name from model.named_modules() works)"
    )


def _first_float_param(module: nn.Module) -> torch.Tensor | None:
    for t in chain(module.parameters(), module.buffers()):
        if t.is_floating_point():
            return t
    return None


def _trace_output(model: nn.Module, target: nn.Module, input_size: Sequence[int]) -> list[Any]:
    """Outputs of ``target`` (shapes) in one eval-mode forward of a batch of one zero input of ``input_size``.

    Tries the meta device first (no compute, no memory: parameters and buffers are swapped for meta tensors with
    ``torch.func.functional_call``); falls back to a real zero input for models that cannot run on meta.
    """
    seen: list[Any] = []

    def record(_m: nn.Module, _i: tuple, out: Any) -> None:
        seen.append(tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__)

    ref = _first_float_param(model)
    device, dtype = (ref.device, ref.dtype) if ref is not None else (None, None)
    handle = target.register_forward_hook(record)
    try:
        with eval_mode(model), torch.no_grad():
            try:
                state = {
                    n: torch.empty_like(t, device="meta")
                    for n, t in chain(model.named_parameters(), model.named_buffers())
                }
                functional_call(model, state, (torch.zeros(1, *input_size, device="meta", dtype=dtype),))
            except Exception:  # data-dependent code (.item(), numpy, ...) cannot run on meta: use a real input
                seen.clear()
                try:
                    model(torch.zeros(1, *input_size, device=device, dtype=dtype))
                except Exception as err:
                    raise ValueError(
                        f"a dry run of {type(model).__name__} on a zero input of shape {(1, *input_size)} failed "
                        f"({type(err).__name__}: {err}); pass the input_size (C, H, W) the model takes"
                    ) from err
    finally:
        handle.remove()
    return seen


@contextmanager
def _own_rng_stream(device: torch.device | None) -> Iterator[None]:
    """Initialise the block from a stream seeded by the current global RNG state, then restore that state.

    The block's init stays a function of the run's seed, while everything drawn after it (dropout masks, the next
    layers' init) is the same as in the model without SR: seed k of a baseline and of its SR twin stay paired.
    """
    cuda = device is not None and torch.device(device).type == "cuda"
    index = torch.device(device).index if cuda and torch.device(device).index is not None else 0
    with torch.random.fork_rng(devices=[index] if cuda else []):
        digest = hashlib.blake2b(torch.get_rng_state().numpy().tobytes(), digest_size=8).digest()
        seed = int.from_bytes(digest, "little") >> 1
        torch.default_generator.manual_seed(seed)
        if cuda:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


def insert_sr(
    model: nn.Module,
    after: str,
    input_size: Sequence[int] = (3, 224, 224),
    *,
    num_memories: int = DEFAULT_NUM_MEMORIES,
    hidden: int = DEFAULT_HIDDEN,
    **sr_kwargs: Any,
) -> SRBlockNd:
    """Insert an SR block after the submodule ``after`` of any model, in place, and return the block.

    C and the spatial size are read from one dry-run forward pass of a ``(1, *input_size)`` zero input (on the
    meta device when the model allows). A 1-d, 2-d or 3-d block is chosen from the output's rank. The block's
    memory starts at zero, so the model's output is unchanged until it trains. ``sr_kwargs`` go to the block
    (``act_layer``, ``memory_init``, ``size_policy``, ...); it is made on the model's device and dtype.

    >>> import torchvision
    >>> model = torchvision.models.resnet18()
    >>> block = insert_sr(model, "layer3", num_memories=10, hidden=16)
    >>> block.memory.shape, model.layer3.sr is block
    (torch.Size([10, 256, 14, 14]), True)
    """
    if isinstance(input_size, (int, str)) or not all(isinstance(s, int) and s > 0 for s in input_size):
        raise ValueError(
            f"input_size must be the input's shape without the batch, e.g. (3, 224, 224); got {input_size!r}"
        )
    modules = dict(model.named_modules())
    if not isinstance(after, str) or not after or after not in modules:
        raise ValueError(_candidates_message(model, str(after)))
    target = modules[after]
    if isinstance(target, SRBlockNd):
        raise ValueError(f"{after!r} is an SR block already; insert after the module it follows")
    if hasattr(target, "sr") and not isinstance(target.sr, nn.Identity):  # an Identity is a block remove_sr took out
        raise ValueError(f"{after!r} already has an attribute 'sr'; remove it first or pick another module")
    outputs = _trace_output(model, target, input_size)
    if len(outputs) != 1:
        why = "never runs" if not outputs else f"runs {len(outputs)} times (it is shared)"
        raise ValueError(
            f"{after!r} {why} in a forward pass of a {tuple(input_size)} input; an SR block after it "
            "needs a module that runs exactly once, e.g. a stage or a residual block"
        )
    shape = outputs[0]
    if not isinstance(shape, tuple) or len(shape) - 2 not in _SR_BY_DIMS:
        raise ValueError(f"the output of {after!r} must be a B x C x (1 to 3 spatial axes) tensor, got {shape}")
    ref = _first_float_param(target)
    ref = ref if ref is not None else _first_float_param(model)
    dd = {"device": ref.device, "dtype": ref.dtype} if ref is not None else {}
    with _own_rng_stream(dd.get("device")):
        block = _SR_BY_DIMS[len(shape) - 2](
            shape[1], shape[2:], num_memories=num_memories, hidden=hidden, **{**dd, **sr_kwargs}
        )
    target.add_module("sr", block)
    hooked = any(getattr(h, "func", None) is _apply_child for h in target._forward_hooks.values())
    if not isinstance(target, nn.Sequential) and not hooked:
        target.register_forward_hook(functools.partial(_apply_child, child="sr"))
    return block


def find_sr_blocks(model: nn.Module) -> dict[str, SRBlockNd]:
    """Every SR block of ``model`` by qualified name, e.g. ``{"layer3.sr": SRBlock2d(...)}``."""
    return {name: m for name, m in model.named_modules() if isinstance(m, SRBlockNd)}


def count_sr_params(model: nn.Module) -> int:
    """Parameters of all SR blocks of ``model``: its overhead over the plain network (Eq. (1) per block)."""
    return sum(p.numel() for block in find_sr_blocks(model).values() for p in block.parameters())


def remove_sr(model: nn.Module) -> nn.Module:
    """Replace every SR block of ``model`` by ``nn.Identity`` in place (the paper's ablation, §5) and return it.

    The rest of the network and its weights are untouched; a model that is itself an SR block becomes an Identity.
    """
    for name in find_sr_blocks(model):
        if not name:
            return nn.Identity()
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, nn.Identity())
    return model
