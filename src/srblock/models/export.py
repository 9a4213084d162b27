"""ONNX export with a dynamic batch axis, for serving a network with an SR block outside PyTorch.

>>> from srblock.models import create_model, export_onnx
>>> model = create_model("cifar_resnet18", width=0.25, sr_stage=3)
>>> export_onnx(model, "model.onnx", (3, 32, 32))  # doctest: +SKIP
PosixPath('model.onnx')
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from .._extras import requires_extra
from ..io import atomic_path
from ..layers.modes import eval_mode

__all__ = ["export_onnx"]


def _output_names(outputs: object) -> list[str]:
    if isinstance(outputs, torch.Tensor):
        return ["logits"]
    if isinstance(outputs, Mapping):  # torchvision's segmentation models: {"out": ..., "aux": ...}
        return [str(k) for k in outputs]
    raise ValueError(f"export_onnx takes models returning a tensor or a dict of tensors, got {type(outputs).__name__}")


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    input_size: Sequence[int],
    *,
    opset_version: int | None = None,
    dynamic_batch: bool = True,
) -> Path:
    """Export ``model`` (in eval mode) to the ONNX file ``path`` with input ``images`` of shape B x ``input_size``.

    The batch axis ``B`` is dynamic (``dynamic_batch``); the spatial size is fixed, as the SR block's memory is
    (PAPER.md §1). Outputs are named ``logits`` (a tensor) or after the model's dict keys (``out``, ``aux``). The
    weights are stored inside the one file, written atomically with a plain ``open``'s mode (``io.atomic_path``).
    Uses ``torch.onnx.export``'s ``torch.export``-based exporter (the ``onnx`` extra: onnx, onnxscript).
    """
    with requires_extra("onnx", "export_onnx (torch.onnx's exporter)"):  # torch imports them itself: fail early
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    if isinstance(input_size, int) or len(input_size) < 2:
        raise ValueError(
            f"input_size must be the input's shape without the batch, e.g. (3, 224, 224); got {input_size}"
        )
    path = Path(path)
    ref = next(iter(model.parameters()), None)
    # batch 2: torch.export specialises a dimension it sees as 0 or 1, which would fix the batch
    example = torch.randn(2, *input_size, device=ref.device if ref is not None else None)
    with eval_mode(model):
        with torch.no_grad():
            names = _output_names(model(example))
        with atomic_path(path) as tmp:
            torch.onnx.export(
                model,
                (example,),
                tmp,
                input_names=["images"],
                output_names=names,
                opset_version=opset_version,
                dynamic_shapes=({0: torch.export.Dim("batch")},) if dynamic_batch else None,
                external_data=False,
                dynamo=True,
                verbose=False,
            )
    return path
