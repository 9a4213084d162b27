"""Train srblock models with PyTorch Lightning: the DropBlock ramp of PAPER.md §2 as a callback.

srblock's own engine ramps DropBlock's drop probability linearly from 0 to its target over training; in a
Lightning loop :class:`DropBlockRamp` does the same. Needs the ``lightning`` extra (``pip install
'srblock[lightning]'``); the older ``pytorch_lightning`` package works too::

    import lightning as L
    import torch
    import torch.nn.functional as F
    from srblock import create_model
    from srblock.engine.lightning import DropBlockRamp

    class Classifier(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = create_model("cifar_resnet18", num_classes=10, regularizer="dropblock", sr_stage=3)

        def training_step(self, batch, batch_idx):
            images, labels = batch
            return F.cross_entropy(self.net(images), labels)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)

    L.Trainer(max_epochs=200, callbacks=[DropBlockRamp()]).fit(Classifier(), train_loader)
"""

from __future__ import annotations

import math
from typing import Any

from ..models.regularizers import set_dropblock_progress

try:
    from lightning.pytorch.callbacks import Callback
except ModuleNotFoundError:
    try:
        from pytorch_lightning.callbacks import Callback
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "srblock.engine.lightning needs Lightning, which is not installed: pip install 'srblock[lightning]'",
            name="lightning",
        ) from err

__all__ = ["DropBlockRamp"]


class DropBlockRamp(Callback):
    """Before every training batch, set each DropBlock of the LightningModule to ``target_p * step / total``.

    ``step`` is ``trainer.global_step`` (optimizer steps taken, so gradient accumulation and resumed runs count
    right) and ``total`` is ``total_steps`` or, by default, ``trainer.estimated_stepping_batches`` (from
    ``max_epochs``/``max_steps``). The ramp reaches the target at the end of training, as in srblock's engine.
    """

    def __init__(self, total_steps: int | None = None) -> None:
        if total_steps is not None and (not isinstance(total_steps, int) or total_steps < 1):
            raise ValueError(f"total_steps must be a positive int or None, got {total_steps!r}")
        self.total_steps = total_steps

    def _total(self, trainer: Any) -> float:
        total = self.total_steps if self.total_steps is not None else trainer.estimated_stepping_batches
        if not math.isfinite(total) or total < 1:
            raise ValueError(
                f"DropBlockRamp cannot tell the length of training (estimated_stepping_batches={total}); set "
                "max_epochs or max_steps on the Trainer, or pass DropBlockRamp(total_steps=...)"
            )
        return total

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        set_dropblock_progress(pl_module, trainer.global_step / self._total(trainer))
