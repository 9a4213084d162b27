"""DropBlockRamp in a real Lightning loop: the drop probability follows optimizer steps / total steps."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

L = pytest.importorskip("lightning")

from srblock.engine.lightning import DropBlockRamp  # noqa: E402
from srblock.models import DropBlock  # noqa: E402


class TinyModule(L.LightningModule):
    """A DropBlock then a linear head; records the DropBlock's p seen by every training batch."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = DropBlock(p=0.2, block_size=3)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 6 * 6, 2))
        self.seen: list[float] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(self.drop.p)
        images, labels = batch
        return F.cross_entropy(self.head(self.drop(images)), labels)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader() -> torch.utils.data.DataLoader:
    data = torch.utils.data.TensorDataset(torch.randn(16, 2, 6, 6), torch.arange(16) % 2)
    return torch.utils.data.DataLoader(data, batch_size=2)


def _trainer(**kwargs) -> L.Trainer:
    quiet = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    return L.Trainer(accelerator="cpu", devices=1, enable_model_summary=False, **quiet, **kwargs)


def test_ramp_follows_optimizer_steps_with_gradient_accumulation() -> None:
    module = TinyModule()
    _trainer(max_steps=4, accumulate_grad_batches=2, callbacks=[DropBlockRamp()]).fit(module, _loader())
    # 4 optimizer steps of 2 batches each: p = 0.2 * global_step / 4, the same for both batches of a step
    assert module.seen == pytest.approx([0.2 * s / 4 for s in (0, 0, 1, 1, 2, 2, 3, 3)])


def test_explicit_total_steps_and_epoch_counted_training() -> None:
    module = TinyModule()
    _trainer(max_epochs=1, callbacks=[DropBlockRamp(total_steps=16)]).fit(module, _loader())
    assert module.seen == pytest.approx([0.2 * s / 16 for s in range(8)])


def test_unknown_length_of_training_is_an_error() -> None:
    ramp = DropBlockRamp()
    endless = SimpleNamespace(estimated_stepping_batches=float("inf"), global_step=0)
    with pytest.raises(ValueError, match="set max_epochs or max_steps"):
        ramp.on_train_batch_start(endless, TinyModule(), None, 0)
    with pytest.raises(ValueError, match="positive int"):
        DropBlockRamp(total_steps=0)
