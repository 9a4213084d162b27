"""Surgery on any model: put an SR block after a named submodule, take SR blocks out again.

Where the block goes (the checkpoint keys of the existing modules never change, so plain weights still load):

* the target is an ``nn.Sequential`` (a torchvision/timm ResNet stage such as ``layer3``): the block is appended to
  it as the child ``sr``, so it is visible in ``print(model)`` and runs as the stage's last step (after a stage
  regularizer added earlier, PAPER.md §2);
* any other module (a residual block, a pooling layer, a user's own module): the block becomes the child ``sr`` of
  that module and a forward hook passes the module's output through it.

Either way the block's parameters are ``<after>.sr.*`` in the state dict.

Token-shaped outputs (a transformer block's B x N x C, timm Swin's B x H x W x C) carry their channels on the last
axis; read as B x C x L they would give a block whose "channels" are tokens. ``insert_sr`` refuses them unless
``layout`` says how to read them: ``"channels_last"`` sizes the block for C channels over the N (or H x W) positions
and the hook moves the channel axis to 1 and back around it.
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
from ..layers.sr import SRBlock1d, SRBlock2d, SRBlock3d, SRBlockNd, _to_size, find_sr_blocks

__all__ = ["insert_sr", "remove_sr"]

# The paper's CIFAR setting (P from 2, U = 8); create_model uses the same defaults.
DEFAULT_NUM_MEMORIES = 2
DEFAULT_HIDDEN = 8

_SR_BY_DIMS: dict[int, type[SRBlockNd]] = {1: SRBlock1d, 2: SRBlock2d, 3: SRBlock3d}
LAYOUTS = ("channels_first", "channels_last")


def _apply_child(module: nn.Module, _inputs: tuple, output: torch.Tensor, *, child: str) -> torch.Tensor:
    # Module-level (not a lambda) so models with an inserted block still pickle and deepcopy.
    return getattr(module, child)(output)


def _apply_child_channels_last(module: nn.Module, _inputs: tuple, output: torch.Tensor, *, child: str) -> torch.Tensor:
    return getattr(module, child)(output.movedim(-1, 1)).movedim(1, -1)


_HOOKS = {"channels_first": _apply_child, "channels_last": _apply_child_channels_last}


def _layout_evidence(target: nn.Module, shape: tuple[int, ...]) -> tuple[str | None, str | None]:
    """A layer inside ``target`` whose width is the output's axis 1 (channels first) or only its last axis (tokens).

    Convolutions and batch/group/instance norms act on axis 1 of the tensors they see; linear layers and layer norms
    on the last axis. Returns a description of one layer of each kind that matches, or ``None``.
    """
    first = last = None
    for m in target.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            widths = {"first": m.out_channels, "last": m.out_channels}
        elif isinstance(m, (nn.modules.batchnorm._NormBase, nn.GroupNorm)):
            widths = {"first": m.num_channels if isinstance(m, nn.GroupNorm) else m.num_features}
        elif isinstance(m, nn.Linear):
            widths = {"last": m.out_features}
        elif isinstance(m, nn.LayerNorm) and len(m.normalized_shape) == 1:
            widths = {"last": m.normalized_shape[0]}
        else:
            continue
        if first is None and widths.get("first") == shape[1]:
            first = f"{type(m).__name__}({widths['first']})"
        if last is None and widths.get("last") == shape[-1] != shape[1]:
            last = f"{type(m).__name__}({widths['last']})"
    return first, last


def _resolve_layout(target: nn.Module, after: str, shape: tuple[int, ...], layout: str | None) -> str:
    if layout is not None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS} or None (detect), got {layout!r}")
        return layout
    first, last = _layout_evidence(target, shape)
    if last is not None and first is None:
        raise ValueError(
            f"the output of {after!r} looks token-shaped, {shape} with its features on the last axis (a {last} "
            f"inside it), but an SR block reads axis 1 as channels; pass layout='channels_last' for a block with "
            f"{shape[-1]} channels over {shape[1:-1]} positions, or layout='channels_first' if axis 1 is channels"
        )
    return "channels_first"


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
    layout: str | None = None,
    feat_size: int | Sequence[int] | None = None,
    **sr_kwargs: Any,
) -> SRBlockNd:
    """Insert an SR block after the submodule ``after`` of any model, in place, and return the block.

    C and the spatial size (unless ``feat_size`` is given) are read from one dry-run forward pass of a
    ``(1, *input_size)`` zero input (on the meta device when the model allows). A 1-d, 2-d or 3-d block is chosen
    from the output's rank. The block's memory starts at zero, so the model's output is unchanged until it trains.
    ``sr_kwargs`` go to the block (``act_layer``, ``memory_init``, ``size_policy``, ...); it is made on the model's
    device and dtype.

    ``feat_size`` (beyond the paper): build the block for this spatial size, at most the traced one on each axis,
    instead of the traced one: a coarser memory (``P x C x feat_size``) that the block resizes to the input
    (``size_policy="interpolate"``, required when the sizes differ) and a routing that reads the squeezed map pooled
    to ``feat_size``; e.g. ``feat_size=16`` on a 1460-step series holds 16 values per channel and memory, not 1,460.

    ``layout``: ``"channels_first"`` (B x C x *S, CNN feature maps) or ``"channels_last"`` (B x *S x C, e.g. the
    B x N x C tokens of a ViT block). ``None`` reads the output as channels first, and refuses an output that looks
    token-shaped (a linear layer or layer norm inside ``after`` is as wide as its last axis, no convolution or batch
    norm as wide as its axis 1), so tokens are never silently read as channels.

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
    layout = _resolve_layout(target, after, shape, layout)
    if layout == "channels_last" and isinstance(target, nn.Sequential):
        last = f"{after}.{len(target) - 1}" if len(target) else after
        raise ValueError(
            f"{after!r} is an nn.Sequential, which would run a child 'sr' on its channels-last output as is; "
            f"insert after its last module ({last!r}) instead"
        )
    channels, spatial = (shape[-1], shape[1:-1]) if layout == "channels_last" else (shape[1], shape[2:])
    dims = len(spatial)
    if feat_size is not None and (size := _to_size(feat_size, dims)) != tuple(spatial):
        if any(s > t for s, t in zip(size, spatial, strict=True)):
            raise ValueError(
                f"feat_size={feat_size!r} is larger than the output of {after!r} ({tuple(spatial)}) on some axis; "
                "feat_size builds a coarser block, at most the output's size on each axis"
            )
        if sr_kwargs.get("size_policy") != "interpolate":
            raise ValueError(
                f"feat_size={feat_size!r} builds the block for another size than the output of {after!r} "
                f"({tuple(spatial)}); pass size_policy='interpolate' so it resizes its memory to the input"
            )
        spatial = size
    ref = _first_float_param(target)
    ref = ref if ref is not None else _first_float_param(model)
    dd = {"device": ref.device, "dtype": ref.dtype} if ref is not None else {}
    with _own_rng_stream(dd.get("device")):
        block = _SR_BY_DIMS[dims](channels, spatial, num_memories=num_memories, hidden=hidden, **{**dd, **sr_kwargs})
    target.add_module("sr", block)
    # A hook left by an earlier insert (remove_sr keeps it, around an Identity) must match this block's layout.
    for key, hook in list(target._forward_hooks.items()):
        if getattr(hook, "func", None) in _HOOKS.values() and hook.func is not _HOOKS[layout]:
            del target._forward_hooks[key]
    hooked = any(getattr(h, "func", None) is _HOOKS[layout] for h in target._forward_hooks.values())
    if not (isinstance(target, nn.Sequential) or hooked):
        target.register_forward_hook(functools.partial(_HOOKS[layout], child="sr"))
    return block


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
