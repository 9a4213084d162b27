"""Regularizers at the places of PAPER.md §2 and the DropBlock ramp."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from srblock.models import DropBlock, create_model, set_dropblock_progress


def test_dropout2d_on_stages_3_and_4_before_sr() -> None:
    model = create_model("cifar_resnet18", num_classes=10, regularizer="dropout2d", sr_stage=3)
    assert list(dict(model.layer3.named_children()))[-2:] == ["drop", "sr"]
    for stage in (model.layer3, model.layer4):
        assert isinstance(stage.drop, nn.Dropout2d) and stage.drop.p == 0.1
    assert not any(isinstance(m, nn.Dropout2d) for m in (*model.layer1.modules(), *model.layer2.modules()))


def test_dropout_before_classifier_keeps_keys() -> None:
    model = create_model("resnet18", num_classes=10, regularizer="dropout")
    assert isinstance(model.avgpool.drop, nn.Dropout) and model.avgpool.drop.p == 0.2
    assert set(model.state_dict()) == set(create_model("resnet18", num_classes=10).state_dict())
    small = create_model("cifar_resnet18", num_classes=10, regularizer="dropout", width=0.25).eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(small(x), small(x))
    small.train()
    assert not torch.allclose(small(x), small(x))


def test_drop_rate_overrides_default() -> None:
    model = create_model("cifar_resnet18", num_classes=10, regularizer="dropout2d", drop_rate=0.3)
    assert model.layer4.drop.p == 0.3


@pytest.mark.parametrize(("name", "block_size"), [("cifar_resnet18", 3), ("resnet18", 7)])
def test_dropblock_size_per_dataset(name: str, block_size: int) -> None:
    model = create_model(name, num_classes=10, regularizer="dropblock")
    blocks = [m for m in model.modules() if isinstance(m, DropBlock)]
    assert [b.block_size for b in blocks] == [block_size] * 2
    assert [b.p for b in blocks] == [0.1, 0.1]


def test_dropblock_ramp() -> None:
    model = create_model("cifar_resnet18", num_classes=10, regularizer="dropblock", drop_rate=0.2, width=0.25)
    drops = [model.layer3.drop, model.layer4.drop]
    for progress, expected in [(0.0, 0.0), (0.25, 0.05), (1.0, 0.2), (3.0, 0.2), (-1.0, 0.0)]:
        assert set_dropblock_progress(model, progress) == 2
        assert [d.p for d in drops] == pytest.approx([expected] * 2)
    assert set_dropblock_progress(create_model("cifar_resnet18", num_classes=10, width=0.25), 0.5) == 0


def test_dropblock_drops_in_training_only() -> None:
    drop = DropBlock(p=0.5, block_size=3)
    x = torch.ones(4, 8, 8, 8)
    assert (drop.train()(x) == 0).any()
    torch.testing.assert_close(drop.eval()(x), x)
    set_dropblock_progress(drop, 0.0)
    torch.testing.assert_close(drop.train()(x), x)


def test_classification_task_ramps_dropblock_and_base_task_does_not() -> None:
    from srblock.engine.classification import ClassificationTask
    from srblock.engine.distributed import DistInfo
    from srblock.engine.task import Task

    config = {"train": {}, "data": {}, "seed": 0}
    model = create_model("cifar_resnet18", num_classes=10, width=0.25, regularizer="dropblock")
    blocks = [m for m in model.modules() if isinstance(m, DropBlock)]
    Task(config, DistInfo(), "cpu").on_train_step(model, 0.25)
    assert [b.p for b in blocks] == [b.target_p for b in blocks], "the base Task knows nothing of DropBlock"
    task = ClassificationTask(config, DistInfo(), "cpu")
    for progress in (0.0, 0.25, 0.75):
        task.on_train_step(model, progress)
        assert [b.p for b in blocks] == pytest.approx([b.target_p * progress for b in blocks])
