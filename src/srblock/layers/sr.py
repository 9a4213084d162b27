"""Squeeze-and-Remember (SR) block.

Paper: `Squeeze-and-Remember Block` - https://arxiv.org/abs/2410.00823
(R. Cakaj, J. Mehnert, B. Yang, ICMLA 2024). No official code was published; this is the reference implementation.

A 1x1 convolution squeezes the feature map X (C x *S) to one channel, a two-layer fully connected net turns the
flattened map into softmax weights over P learned memory tensors (each C x *S), and their weighted sum is added to X:

    a = W2 (W1 flatten(conv1x1(X)))    w = softmax(a)    X_hat = X + sum_i w_i M_i

How it runs: the 1x1 conv is one batched matmul on the flattened map; without an activation between them the two FCN
layers are one P x S matrix W2 W1 (kept in eval mode without autograd until fc1/fc2 change); the recall and the
residual add are one ``addmm``. That is 4 kernels per eval forward (5 in training) instead of 6-14, with the
parameters, state dict and fp32 results (within 1e-6 relative) of the step-by-step block. Inputs of another size
(``size_policy="interpolate"``) or memory layout (channels_last) take the step-by-step path. The block traces with
torch.fx, torch.jit.trace, torch.export and ONNX; its input checks stay active in eager mode and in fx graphs.

Mixed precision: the block computes in its input's dtype, so under bf16 autocast ``X + recalled`` is a bf16 add that
rounds away whatever part of the recall lies below bf16's resolution of X. An fp32 add would not keep it: the next
convolution multiplies bf16 operands all the same. On a CIFAR ResNet18 with SR at M=3 (benchmarks/
sr_bf16_contribution.py) the contribution reaching layer4 keeps a cosine of 0.61 / 0.76 / 0.91 / 0.99 to its fp32
value at memory_ratio = RMS(sum_i w_i M_i) / RMS(X) of 1e-4 / 1e-3 / 3e-3 / 1e-2 (>= 0.998 from 3e-2), and below
~3e-3 it is lost in bf16 noise by the logits. Zero-initialised memory starts in that regime: run SR in fp32 (as the
paper did) or TF32 (emulated: cosine 0.96 at 1e-3, >= 0.995 from 3e-3), or keep the stage after the block out of
autocast, at least until the memory_ratio the training logs report passes ~1e-2.

This file imports nothing but torch, so it can be copied into any project on its own.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "SRBlock",
    "SRBlock1d",
    "SRBlock2d",
    "SRBlock3d",
    "SRBlockNd",
    "capture_memory_weights",
    "count_sr_params",
    "find_sr_blocks",
    "sr_param_count",
]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_POOL = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}
_INTERP_MODE = {1: "linear", 2: "bilinear", 3: "trilinear"}
MEMORY_INITS = ("zeros", "normal", "uniform")
SIZE_POLICIES = ("strict", "interpolate")


def _as_int(value: object) -> int | None:
    """``value`` as an int if it is an integer as torch's layers take one (a Python int, a numpy or 0-d integer
    tensor, via ``__index__``), else ``None``: a bool or a float (``7.5``, or ``8.0``) is never silently truncated."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _positive_int(name: str, value: object) -> int:
    number = _as_int(value)
    if number is None or number <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return number


def _to_size(feat_size: int | Sequence[int], spatial_dims: int) -> tuple[int, ...]:
    if _as_int(feat_size) is not None:
        size = (_as_int(feat_size),) * spatial_dims
    elif isinstance(feat_size, (str, bytes)) or not isinstance(feat_size, Iterable):
        raise ValueError(f"feat_size must be a positive int or {spatial_dims} of them, got {feat_size!r}")
    else:
        size = tuple(_as_int(s) for s in feat_size)
    if len(size) != spatial_dims:
        raise ValueError(f"feat_size must have {spatial_dims} entries for a {spatial_dims}-d block, got {feat_size!r}")
    if any(s is None or s <= 0 for s in size):
        raise ValueError(f"feat_size entries must be positive ints, got {feat_size!r}")
    return size


def sr_param_count(
    channels: int, feat_size: int | Sequence[int], hidden: int, num_memories: int, spatial_dims: int = 2
) -> int:
    """Parameters of one SR block, Eq. (1) of the paper: ``C + S*U + U*P + P*C*S`` with S the number of positions.

    An int ``feat_size`` means the same length on each of ``spatial_dims`` axes (a square map by default).

    >>> sr_param_count(256, (8, 8), hidden=8, num_memories=10)
    164688
    """
    positions = math.prod(_to_size(feat_size, spatial_dims))
    return channels + positions * hidden + hidden * num_memories + num_memories * channels * positions


@torch.fx.wrap  # a leaf of torch.fx graphs: the checks run when the traced graph runs, as in eager mode
def _check_input(x: torch.Tensor, name: str, channels: int, feat_size: tuple[int, ...], strict: bool) -> torch.Tensor:
    spatial_dims = len(feat_size)
    if x.dim() != spatial_dims + 2:
        raise ValueError(
            f"{name} expects a {spatial_dims + 2}-d input (B, C, {spatial_dims} spatial axes), "
            f"got shape {tuple(x.shape)}"
        )
    if x.shape[1] != channels:
        raise ValueError(f"{name} was built for {channels} channels, got {x.shape[1]}")
    if not x.is_floating_point():
        raise ValueError(f"{name} expects a floating-point input, got dtype {x.dtype}")
    if strict and tuple(x.shape[2:]) != feat_size:
        raise ValueError(
            f"{name} was built for spatial size {feat_size}, got {tuple(x.shape[2:])}; "
            "build it for this size or use size_policy='interpolate'"
        )
    return x


@torch.fx.wrap  # keeps its autocast handling in torch.fx graphs
def _add_recalled(flat: torch.Tensor, weights: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """``flat + weights @ memory`` (B x C*S) as one addmm, in the input's dtype.

    Autocast would run an addmm in its low precision even for an fp32 input; the block keeps its input's dtype, as
    the separate ``x + recalled`` did.
    """
    device_type = flat.device.type
    keep = torch.autocast(device_type, enabled=False) if _autocast_dtype(device_type) else nullcontext()
    with keep:
        return torch.addmm(flat, weights.to(flat.dtype), memory.to(flat.dtype))


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype autocast runs matmuls in on ``device_type``, ``None`` when it is off (or the device has none)."""
    if not torch.amp.is_autocast_available(device_type) or not torch.is_autocast_enabled(device_type):
        return None
    return torch.get_autocast_dtype(device_type)


def _tracing(t: torch.Tensor) -> bool:
    """Whether ``t`` is seen by a tracer, a compiler or a CUDA-graph capture (no eager-only shortcuts then)."""
    return (
        isinstance(t, torch.fx.Proxy)
        or torch.jit.is_tracing()
        or torch.compiler.is_compiling()
        or (t.is_cuda and torch.cuda.is_current_stream_capturing())
    )


def _fusable(x: torch.Tensor, feat_size: tuple[int, ...], interpolate: bool) -> bool:
    """Whether the fused path (flattened views of x, one addmm) applies: a contiguous input of the trained size.

    Under torch.fx the size is unknown, so an ``interpolate`` block traces the general path.
    """
    if isinstance(x, torch.fx.Proxy):
        return not interpolate
    return x.is_contiguous() and (not interpolate or tuple(x.shape[2:]) == feat_size)


class SRBlockNd(nn.Module):
    """Squeeze-and-Remember block for feature maps with ``spatial_dims`` spatial axes (1-d, 2-d or 3-d).

    Beyond the paper (each off by default, so the defaults are the paper's block):
      * ``act_layer``: an activation between the two FCN layers (the paper has none).
      * ``memory_init``: ``"normal"`` / ``"uniform"`` (std/bound ``memory_std``) or a callable ``init(tensor)``
        break the symmetry of the paper's zero init, under which only the memory gets gradient at the first step
        and the paper's conclusion names the initialisation a limitation.
      * ``size_policy="interpolate"``: accepts inputs of another spatial size by pooling the squeezed map to the
        trained size before the FCN and resizing the weighted memory to the input size. ``"strict"`` (the paper's
        fixed-size block) raises a ``ValueError`` naming both sizes.
      * ``logit_scale``: multiplies the routing logits before the softmax (an inverse temperature). With PyTorch's
        default init the paper's logits are so small that the softmax starts within 1 % of uniform entropy and (in
        our CIFAR runs, 7 seeds) ends at 0.996-0.999 of it, so every image recalls about the mean memory; weight
        decay shrinks the three routing layers' product further. A scale > 1 starts the routing selective and
        multiplies its gradient alike, so under SGD the logits move about scale² times as far per step: pair a
        large scale with a smaller routing lr (``optim.groups.sr_routing.lr_mult``). On CIFAR at width 0.25 the
        scale 8 saturated the softmax within the first epoch; 4, or 8 with the routing lr ×0.1, did not.

    The softmax weights go through ``self.softmax`` (an ``nn.Softmax`` module), so they can be read with a forward
    hook, e.g. via :func:`capture_memory_weights`, without touching the forward's return value.

    Args:
        channels: C, channels of the input feature map.
        feat_size: spatial size the block is built for (an int means the same on every axis).
        num_memories: P, number of memory tensors.
        hidden: U, hidden width of the two-layer FCN.
        act_layer: activation class between the FCN layers, ``None`` for none (paper).
        memory_init: ``"zeros"`` (paper), ``"normal"``, ``"uniform"`` or a callable applied to the memory tensor.
        memory_std: scale of the ``"normal"`` (std) and ``"uniform"`` (bound) memory inits.
        size_policy: ``"strict"`` (paper) or ``"interpolate"``.
        logit_scale: factor on the routing logits, 1 (paper) or any positive number.
    """

    spatial_dims: int = 2

    def __init__(
        self,
        channels: int,
        feat_size: int | Sequence[int],
        *,
        num_memories: int,
        hidden: int,
        act_layer: type[nn.Module] | Callable[[], nn.Module] | None = None,
        memory_init: str | Callable[[torch.Tensor], object] = "zeros",
        memory_std: float = 0.02,
        size_policy: str = "strict",
        logit_scale: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self._routing_cache: tuple | None = None
        channels = _positive_int("channels", channels)
        num_memories = _positive_int("num_memories", num_memories)
        hidden = _positive_int("hidden", hidden)
        # finite: NaN passes every comparison, inf would make the memory or the softmax NaN
        if isinstance(memory_std, bool) or not isinstance(memory_std, (int, float)) or not 0 <= memory_std < math.inf:
            raise ValueError(f"memory_std must be a finite number >= 0, got {memory_std!r}")
        if isinstance(logit_scale, bool) or not isinstance(logit_scale, (int, float)) or not 0 < logit_scale < math.inf:
            raise ValueError(f"logit_scale must be a finite number > 0, got {logit_scale!r}")
        if isinstance(memory_init, str) and memory_init not in MEMORY_INITS:
            raise ValueError(f"memory_init must be one of {MEMORY_INITS} or a callable, got {memory_init!r}")
        if size_policy not in SIZE_POLICIES:
            raise ValueError(f"size_policy must be one of {SIZE_POLICIES}, got {size_policy!r}")
        dd = {"device": device, "dtype": dtype}
        self.channels = channels
        self.feat_size = _to_size(feat_size, self.spatial_dims)
        self.num_memories = num_memories
        self.hidden = hidden
        self.size_policy = size_policy
        self.memory_init = memory_init
        self.memory_std = memory_std
        self.logit_scale = float(logit_scale)
        positions = math.prod(self.feat_size)

        self.squeeze = _CONV[self.spatial_dims](channels, 1, kernel_size=1, bias=False, **dd)
        self.fc1 = nn.Linear(positions, hidden, bias=False, **dd)
        self.act = act_layer() if act_layer is not None else nn.Identity()
        self.fc2 = nn.Linear(hidden, num_memories, bias=False, **dd)
        self.softmax = nn.Softmax(dim=1)
        self.memory = nn.Parameter(torch.empty(num_memories, channels, *self.feat_size, **dd))
        self.reset_parameters()

    def named_routing_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """The routing's parameters (squeeze conv, FCN and any activation's): every one but the memory."""
        return ((name, p) for name, p in self.named_parameters() if name != "memory")

    def reset_parameters(self) -> None:
        """(Re-)initialise as the paper does: PyTorch's default conv/linear init and the chosen memory init."""
        self.squeeze.reset_parameters()
        self.fc1.reset_parameters()
        self.fc2.reset_parameters()
        if self.memory.is_meta:
            return
        if callable(self.memory_init):
            with torch.no_grad():
                self.memory_init(self.memory)
        elif self.memory_init == "zeros":
            nn.init.zeros_(self.memory)
        elif self.memory_init == "normal":
            nn.init.normal_(self.memory, std=self.memory_std)
        else:
            nn.init.uniform_(self.memory, -self.memory_std, self.memory_std)

    def train(self, mode: bool = True) -> SRBlockNd:
        if mode != self.training:  # a switch of mode drops the kept routing product (see _routing)
            self._routing_cache = None
        return super().train(mode)

    def _routing(self) -> torch.Tensor:
        """``logit_scale * W2 W1`` (P x S): without an activation between them the two FCN layers are one linear map.

        In eval mode without autograd the product is kept until ``fc1``/``fc2`` change: an optimizer step, a
        ``load_state_dict``, an in-place edit under ``torch.no_grad()``, ``.to()``, a new parameter all invalidate it
        (parameter identity, storage and version counter are the key). An edit through ``.data`` bypasses the version
        counter; a switch between train and eval mode drops the kept product too. Tracers, compilers and CUDA-graph
        captures always get the product computed in their graph. (Forming it costs ~3 us on a CPU, but one kernel
        launch per forward on a GPU.)
        """
        w1, w2 = self.fc1.weight, self.fc2.weight
        if self.training or torch.is_grad_enabled() or _tracing(w1):
            return self._scaled(w2 @ w1)
        try:
            key = (w1._version, w2._version, w1.data_ptr(), w2.data_ptr(), _autocast_dtype(w1.device.type))
        except RuntimeError:  # tensors without storage (vmap, functorch transforms): nothing to key on
            return self._scaled(w2 @ w1)
        key += (self.logit_scale,)
        cached = self._routing_cache
        if cached is None or cached[0] is not w1 or cached[1] is not w2 or cached[2] != key:
            cached = self._routing_cache = (w1, w2, key, self._scaled(w2 @ w1))
        return cached[3]

    def _scaled(self, logits: torch.Tensor) -> torch.Tensor:
        """``logit_scale * logits``; the paper's scale 1 adds no operation (the results stay bit-identical)."""
        return logits if self.logit_scale == 1.0 else logits * self.logit_scale

    def _memory_weights(self, z: torch.Tensor) -> torch.Tensor:
        """Softmax weights (B x P) of the squeezed map ``z`` (B x S): ``softmax(W2 act(W1 z))``."""
        if isinstance(self.act, nn.Identity):
            return self.softmax(F.linear(z, self._routing()))
        return self.softmax(self._scaled(self.fc2(self.act(self.fc1(z)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_input(x, type(self).__name__, self.channels, self.feat_size, self.size_policy == "strict")
        if not _fusable(x, self.feat_size, self.size_policy == "interpolate"):
            return self._forward_general(x)
        batch, positions = x.shape[0], math.prod(self.feat_size)  # sizes written out: an empty batch reshapes too
        flat = x.reshape(batch, self.channels * positions)  # B x C*S, a view of a contiguous input
        squeeze = self.squeeze.weight.view(1, 1, self.channels).expand(batch, 1, self.channels)
        z = torch.bmm(squeeze, flat.view(batch, self.channels, positions)).flatten(1)  # B x S: the 1x1 conv, one bmm
        weights = self._memory_weights(z)  # B x P
        # X + sum_i w_i M_i as one addmm on the flattened map
        return _add_recalled(flat, weights, self.memory.flatten(1)).view_as(x)

    def memory_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The softmax weights (B x P) with which the block recalls its memories for input ``x``, e.g. for a loss on
        the routing (``srblock.engine.sr_balance``); equal to what :meth:`forward` uses up to float rounding."""
        x = _check_input(x, type(self).__name__, self.channels, self.feat_size, self.size_policy == "strict")
        return self._memory_weights(self._squeezed(x))

    def resized_memory(self, size: Sequence[int]) -> torch.Tensor:
        """The P memories (P x C x *size) as the block adds them to an input of spatial ``size``: linearly resized
        from ``feat_size`` as :meth:`forward` resizes the recalled map (the same map, since resizing is linear)."""
        if tuple(size) == self.feat_size:
            return self.memory
        return F.interpolate(self.memory, size=tuple(size), mode=_INTERP_MODE[self.spatial_dims], align_corners=False)

    def _squeezed(self, x: torch.Tensor) -> torch.Tensor:
        """The squeezed map ``z`` (B x S) at the trained size: the 1x1 conv, then average-pooled to ``feat_size``."""
        return _POOL[self.spatial_dims](self.squeeze(x), self.feat_size).flatten(1)

    def _forward_general(self, x: torch.Tensor) -> torch.Tensor:
        """Any size (``interpolate``) or memory layout: squeeze, pool to the trained size, recall, resize, add."""
        z = self._squeezed(x)  # B x S (trained size)
        recalled = (self._memory_weights(z) @ self.memory.flatten(1)).view(-1, self.channels, *self.feat_size)
        recalled = F.interpolate(recalled, size=x.shape[2:], mode=_INTERP_MODE[self.spatial_dims], align_corners=False)
        return x + recalled.to(x.dtype)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, feat_size={self.feat_size}, num_memories={self.num_memories}, "
            f"hidden={self.hidden}, size_policy={self.size_policy!r}"
            + (f", logit_scale={self.logit_scale:g}" if self.logit_scale != 1.0 else "")
        )


class SRBlock1d(SRBlockNd):
    """SR block for sequences ``B x C x L`` (``feat_size`` = L)."""

    spatial_dims = 1


class SRBlock2d(SRBlockNd):
    """SR block for images ``B x C x H x W`` (``feat_size`` = (H, W) or an int for a square map); the paper's block."""

    spatial_dims = 2


class SRBlock3d(SRBlockNd):
    """SR block for volumes or clips ``B x C x D x H x W`` (``feat_size`` = (D, H, W))."""

    spatial_dims = 3


SRBlock = SRBlock2d


def find_sr_blocks(model: nn.Module) -> dict[str, SRBlockNd]:
    """Every SR block of ``model`` by qualified name, e.g. ``{"layer3.sr": SRBlock2d(...)}`` (``""``: the model).

    >>> model = nn.Sequential(nn.ReLU(), SRBlock(8, 4, num_memories=3, hidden=2))
    >>> list(find_sr_blocks(model)), count_sr_params(model) == sr_param_count(8, 4, hidden=2, num_memories=3)
    (['1'], True)
    """
    return {name: m for name, m in model.named_modules() if isinstance(m, SRBlockNd)}


def count_sr_params(model: nn.Module) -> int:
    """Parameters of all SR blocks of ``model``: its overhead over the plain network (Eq. (1) per block)."""
    return sum(p.numel() for block in find_sr_blocks(model).values() for p in block.parameters())


def _appender(store: list[torch.Tensor]) -> Callable[..., None]:
    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        store.append(output.detach())

    return hook


@contextmanager
def capture_memory_weights(model: nn.Module) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Record the softmax memory weights (B x P, detached) of every SR block in ``model`` while inside the context.

    Yields a dict from the block's qualified name to the list of weight tensors of each forward pass; the hooks are
    removed on exit, so the model is untouched afterwards.

    >>> block = SRBlock(8, 4, num_memories=3, hidden=2)
    >>> with capture_memory_weights(block) as weights:
    ...     _ = block(torch.randn(5, 8, 4, 4))
    >>> weights[""][0].shape
    torch.Size([5, 3])
    """
    captured: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, block in find_sr_blocks(model).items():
        store = captured.setdefault(name, [])
        handles.append(block.softmax.register_forward_hook(_appender(store)))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()
