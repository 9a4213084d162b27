"""SE, CBAM and ECA inside torchvision's residual blocks, for the paper's SR + attention table (PAPER.md §2) and
the comparison of cheap plug-in blocks.

The attention module sits in every residual block after the residual branch's last BN and before the residual add
(timm's placement), with reduction 16 for SE and CBAM. We use the maintained implementations: torchvision's
``ops.SqueezeExcitation`` (Hu et al., arXiv 1709.01507), timm's ``CbamModule`` (Woo et al., arXiv 1807.06521) and
timm's ``EcaModule`` (Wang et al., CVPR 2020, arXiv 1910.03151: a 1-d convolution across the pooled channels, its
kernel size k = |log2(C)/2 + 1/2| rounded up to odd, so no reduction and a handful of weights per block).
The blocks below are torchvision's ``BasicBlock``/``Bottleneck`` with one extra child ``attn``; all other keys match.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.ops import SqueezeExcitation

from .._extras import requires_extra

__all__ = [
    "ATTENTIONS",
    "CBAMBasicBlock",
    "CBAMBottleneck",
    "ECABasicBlock",
    "ECABottleneck",
    "SEBasicBlock",
    "SEBottleneck",
    "attention_block",
    "make_attention",
]

ATTENTIONS = (None, "se", "cbam", "eca")
REDUCTION = 16


def make_attention(kind: str, channels: int, reduction: int = REDUCTION) -> nn.Module:
    """An SE, CBAM or ECA module for ``channels`` channels (SE and CBAM with the given channel ``reduction``; ECA has
    none, its kernel size follows from ``channels``)."""
    if kind == "se":
        return SqueezeExcitation(channels, max(1, channels // reduction))
    if kind == "cbam":
        with requires_extra("timm", "CBAM attention (timm's CbamModule)"):
            from timm.layers.cbam import CbamModule

        return CbamModule(channels, rd_ratio=1.0 / reduction)
    if kind == "eca":
        with requires_extra("timm", "ECA attention (timm's EcaModule)"):
            from timm.layers.eca import EcaModule

        return EcaModule(channels)
    raise ValueError(f"attention must be one of {ATTENTIONS}, got {kind!r}")


class _AttentionBasicBlock(BasicBlock):
    attention = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.attn = make_attention(self.attention, self.bn2.num_features)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.attn(self.bn2(self.conv2(out)))
        return self.relu(out + identity)


class _AttentionBottleneck(Bottleneck):
    attention = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.attn = make_attention(self.attention, self.bn3.num_features)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.attn(self.bn3(self.conv3(out)))
        return self.relu(out + identity)


class SEBasicBlock(_AttentionBasicBlock):
    """torchvision ``BasicBlock`` with squeeze-and-excitation before the residual add."""

    attention = "se"


class CBAMBasicBlock(_AttentionBasicBlock):
    """torchvision ``BasicBlock`` with CBAM before the residual add."""

    attention = "cbam"


class ECABasicBlock(_AttentionBasicBlock):
    """torchvision ``BasicBlock`` with efficient channel attention (ECA) before the residual add."""

    attention = "eca"


class SEBottleneck(_AttentionBottleneck):
    """torchvision ``Bottleneck`` with squeeze-and-excitation before the residual add."""

    attention = "se"


class CBAMBottleneck(_AttentionBottleneck):
    """torchvision ``Bottleneck`` with CBAM before the residual add."""

    attention = "cbam"


class ECABottleneck(_AttentionBottleneck):
    """torchvision ``Bottleneck`` with efficient channel attention (ECA) before the residual add."""

    attention = "eca"


_BLOCKS: dict[tuple[type[nn.Module], str], type[nn.Module]] = {
    (BasicBlock, "se"): SEBasicBlock,
    (BasicBlock, "cbam"): CBAMBasicBlock,
    (BasicBlock, "eca"): ECABasicBlock,
    (Bottleneck, "se"): SEBottleneck,
    (Bottleneck, "cbam"): CBAMBottleneck,
    (Bottleneck, "eca"): ECABottleneck,
}


def attention_block(block: type[BasicBlock | Bottleneck], attention: str | None) -> type[BasicBlock | Bottleneck]:
    """The residual block class to build a ResNet with: ``block`` itself, or its SE/CBAM variant."""
    if attention not in ATTENTIONS:
        raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
    if attention is None:
        return block
    return _BLOCKS[(block, attention)]  # type: ignore[return-value]
