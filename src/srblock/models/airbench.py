"""The airbench94 network: K. Jordan, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU", arXiv 2404.00498
(https://github.com/KellerJordan/cifar10-airbench). Written for srblock from the paper's and the public code's
description, as a zoo model whose stages take the SR block.

At a 32² input::

    whiten   2×2 conv, no padding, 3 → 24 channels, then GELU                       24×31×31
    block1   conv3×3 → max-pool 2 → BN → GELU → conv3×3 → BN → GELU                  64×15×15
    block2   the same                                                               256×7×7
    block3   the same                                                               256×3×3
    head     global max-pool, linear (no bias), logits × 1/9                        classes

Details that make it train to 94 % in ten epochs (all from airbench94):

* ``whiten`` is frozen at the patch-whitening transform of the training images (:meth:`AirbenchNet.init_from_data`,
  which the classification task calls with 5,000 training images before training, see its ``init_sample``): the 12
  eigenvectors of the 2×2×3 patch covariance scaled by 1/√(λ + 5e-4), and their negatives. Its bias trains for the first
  ``whiten_bias_until`` (0.3) of training and is then frozen (:meth:`AirbenchNet.set_train_progress`).
* Every 3×3 conv starts from PyTorch's default init with its first ``in_channels`` filters replaced by the identity
  (``nn.init.dirac_``): a residual path at init without residual connections.
* BatchNorm: weight frozen at 1, only the bias trains; eps 1e-12, momentum 0.4 (airbench's 0.6 in the
  "fraction kept" convention).

Stages (the SR block's integration points M): ``block1``, ``block2``, ``block3``. No stage of this network has an
8×8 output; ``block2`` (256×7×7) is the counterpart of the CIFAR ResNet18's ``layer3`` (256×8×8, the paper's M=3):
the second-to-last stage, same width. Regularizers (PAPER.md §2, applied as on the ResNets' last two stages):
``dropout2d``/``dropblock`` on the outputs of ``block2`` and ``block3``, ``dropout`` before the classifier.
Attention (``attention="se"``, ``"cbam"`` or ``"eca"``, :mod:`srblock.models.attention`; not in airbench94): the
network has no residual blocks, so the module goes where SENet puts it in non-residual networks (Hu et al., Fig. 2,
SE-Inception), on the output of each of its blocks: the child ``attn`` after ``act2`` of every ``ConvGroup``, before
a stage regularizer and an SR block on the same output.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .attention import make_attention
from .registry import register_model
from .regularizers import add_regularizer

__all__ = ["AIRBENCH_STAGES", "AirbenchNet", "ConvGroup", "PatchWhitening", "cifar_airbench"]

AIRBENCH_STAGES = ("block1", "block2", "block3")


class PatchWhitening(nn.Module):
    """A frozen k×k convolution that whitens image patches, with a trainable bias (airbench's first layer).

    The weight is a buffer (never trained) holding, after :meth:`init_from_data`, the eigenvectors of the
    uncentred k×k patch covariance of the data divided by √(eigenvalue + eps), and their negatives, so the output
    has ``2·C·k²`` channels. Before that it is zero.

    Args:
        in_channels: C of the images. kernel_size: k (2 in airbench94). eps: added to the eigenvalues.
    """

    def __init__(self, in_channels: int = 3, kernel_size: int = 2, *, eps: float = 5e-4) -> None:
        super().__init__()
        self.in_channels, self.kernel_size, self.eps = in_channels, kernel_size, eps
        out = 2 * in_channels * kernel_size**2
        self.register_buffer("weight", torch.zeros(out, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out))
        self.train_bias = True  # airbench freezes the bias after the first epochs (AirbenchNet.set_train_progress)

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor, *, chunk: int = 500) -> None:
        """Set the weight from the k×k patches of ``images`` (normalised float ``N x C x H x W``), all positions.

        The covariance is accumulated in float64 over chunks of ``chunk`` images, so memory stays small on CPU.
        """
        if images.dim() != 4 or images.shape[1] != self.in_channels or not images.is_floating_point():
            raise ValueError(
                f"whitening needs float images N x {self.in_channels} x H x W, got {images.dtype} {tuple(images.shape)}"
            )
        k, dim = self.kernel_size, self.in_channels * self.kernel_size**2
        cov = torch.zeros(dim, dim, dtype=torch.float64, device=images.device)
        count = 0
        for part in images.split(chunk):
            # F.unfold orders a patch as (channel, row, col), the layout of a conv weight's C x k x k
            patches = F.unfold(part.double(), k).transpose(1, 2).reshape(-1, dim)
            cov += patches.T @ patches
            count += len(patches)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov / count)
        order = eigenvalues.argsort(descending=True)
        filters = (eigenvectors[:, order] / (eigenvalues[order] + self.eps).sqrt()).T
        filters = filters.reshape(dim, self.in_channels, k, k)
        self.weight.copy_(torch.cat([filters, -filters]).to(self.weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias if self.train_bias else self.bias.detach())

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, eps={self.eps}"


def _identity_init(conv: nn.Conv2d) -> nn.Conv2d:
    """The first ``in_channels`` filters of ``conv`` pass their input channel through (airbench's partial dirac)."""
    with torch.no_grad():
        nn.init.dirac_(conv.weight[: conv.in_channels])
    return conv


def _batch_norm(channels: int, momentum: float) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, eps=1e-12, momentum=momentum)
    bn.weight.requires_grad_(False)  # airbench trains only the BN bias; the scale stays 1
    return bn


class ConvGroup(nn.Sequential):
    """conv3×3 → max-pool 2 → BN → GELU → conv3×3 → BN → GELU (a ``Sequential``, so a stage regularizer and an SR
    block can be appended to it)."""

    def __init__(self, in_channels: int, out_channels: int, *, bn_momentum: float = 0.4) -> None:
        super().__init__(
            OrderedDict(
                conv1=_identity_init(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)),
                pool=nn.MaxPool2d(2),
                norm1=_batch_norm(out_channels, bn_momentum),
                act1=nn.GELU(),
                conv2=_identity_init(nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)),
                norm2=_batch_norm(out_channels, bn_momentum),
                act2=nn.GELU(),
            )
        )


class AirbenchNet(nn.Module):
    """airbench94's network (see the module docstring).

    Args:
        num_classes: outputs of the classifier.
        width: multiplies the block widths 64, 256, 256 (1 = airbench94; e.g. 0.25 for quick CPU runs).
        whiten_kernel: k of the whitening conv (2).
        bn_momentum: PyTorch's BatchNorm momentum (0.4).
        logit_scale: multiplies the logits (1/9).
        whiten_bias_until: fraction of training after which the whitening bias is frozen (0.3 = airbench94's 3 of
            its 10 epochs; 1 = train it throughout, 0 = never).
    """

    def __init__(
        self,
        num_classes: int = 10,
        *,
        width: float = 1.0,
        whiten_kernel: int = 2,
        bn_momentum: float = 0.4,
        logit_scale: float = 1 / 9,
        whiten_bias_until: float = 0.3,
    ) -> None:
        super().__init__()
        if not width > 0:
            raise ValueError(f"width must be positive, got {width!r}")
        if not 0.0 <= whiten_bias_until <= 1.0:
            raise ValueError(f"whiten_bias_until must be a fraction of training in [0, 1], got {whiten_bias_until!r}")
        widths = [max(1, round(base * width)) for base in (64, 256, 256)]
        self.logit_scale, self.whiten_bias_until = logit_scale, whiten_bias_until
        self.whiten = PatchWhitening(3, whiten_kernel)
        self.act = nn.GELU()
        self.block1 = ConvGroup(self.whiten.out_channels, widths[0], bn_momentum=bn_momentum)
        self.block2 = ConvGroup(widths[0], widths[1], bn_momentum=bn_momentum)
        self.block3 = ConvGroup(widths[1], widths[2], bn_momentum=bn_momentum)
        self.pool = nn.AdaptiveMaxPool2d(1)  # airbench's MaxPool2d(3) on the 3×3 map, for any input size
        self.fc = nn.Linear(widths[2], num_classes, bias=False)

    def init_from_data(self, images: torch.Tensor) -> None:
        """Initialise the whitening layer from normalised training images (see :class:`PatchWhitening`)."""
        self.whiten.init_from_data(images)

    def set_train_progress(self, progress: float) -> None:
        """Called by the trainer before every step (``progress`` in [0, 1)): freezes the whitening bias on time."""
        self.whiten.train_bias = progress < self.whiten_bias_until

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.whiten(x))
        x = self.block3(self.block2(self.block1(x)))
        return self.fc(torch.flatten(self.pool(x), 1)) * self.logit_scale


@register_model(input_size=(3, 32, 32), stages=AIRBENCH_STAGES, num_classes=10)
def cifar_airbench(
    *,
    num_classes: int = 10,
    regularizer: str | None = None,
    drop_rate: float | None = None,
    attention: str | None = None,
    dropblock_size: int = 3,
    **kwargs: Any,
) -> AirbenchNet:
    """airbench94's network (Jordan 2024), CIFAR (32² input); SR block after block2 (256×7×7) is the paper's M=3."""
    model = AirbenchNet(num_classes, **kwargs)
    if attention is not None:  # on each block's output (see the module docstring)
        for name in AIRBENCH_STAGES:
            group = model.get_submodule(name)
            group.add_module("attn", make_attention(attention, group.conv2.out_channels))
    return add_regularizer(
        model, regularizer, p=drop_rate, stages=AIRBENCH_STAGES[1:], pool="pool", dropblock_size=dropblock_size
    )
