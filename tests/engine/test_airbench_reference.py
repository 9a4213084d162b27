"""srblock's airbench recipe against a re-statement of airbench94's training (Jordan 2024, arXiv 2404.00498).

The reference below is written from the facts of airbench94.py (KellerJordan/cifar10-airbench, legacy/airbench94.py),
in its own parametrisation: a loss *summed* over the batch, Nesterov SGD with lr = 11.5 / (1024·(1 + 1/(1 − 0.85)))
and decoupled weight decay 0.0153 · batch / (1024·(1 + 1/(1 − 0.85))) per step, BatchNorm biases at 64× the lr with
the same decay per step, the triangle schedule with its peak at ``int(0.23·T)``, the whitening bias trained in
epochs 0-2 only, Lookahead from epoch 3 (every 5 steps, ρ = 0.95⁵·(t/T)³, fast ← slow at every epoch end). srblock
trains the same network with a *mean* loss through its engine (recipe ``cifar10/airbench``); fed the same batches
from the same initial weights, both must end at the same weights. This pins the recipe's translation of
airbench's hyperparameters (lr, weight decay, BN-bias group, momentum, schedule, Lookahead, whitening freeze).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from srblock.engine import load_config, train
from srblock.engine.checkpoint import load_checkpoint
from srblock.engine.classification import ClassificationTask
from srblock.engine.distributed import DistInfo
from srblock.engine.trainer import seed_everything
from srblock.models.airbench import AirbenchNet

from .conftest import write_npz

MOMENTUM = 0.85
KILOSTEP = 1024 * (1 + 1 / (1 - MOMENTUM))  # airbench's step-size normaliser for Nesterov momentum 0.85


class _Scale(nn.Module):
    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def _group(cin: int, cout: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.MaxPool2d(2)]
    layers += [nn.BatchNorm2d(cout, eps=1e-12, momentum=0.4), nn.GELU()]
    layers += [nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout, eps=1e-12, momentum=0.4)]
    layers.append(nn.GELU())
    for bn in (layers[2], layers[5]):
        bn.weight.requires_grad_(False)
    return nn.Sequential(*layers)


def reference_net(widths: tuple[int, int, int], num_classes: int) -> nn.Sequential:
    """airbench94's network as one Sequential: whitening conv (bias), GELU, three groups, max-pool 3, linear, ×1/9."""
    whiten = nn.Conv2d(3, 24, 2, bias=True)
    whiten.weight.requires_grad_(False)
    return nn.Sequential(
        whiten,
        nn.GELU(),
        _group(24, widths[0]),
        _group(widths[0], widths[1]),
        _group(widths[1], widths[2]),
        nn.MaxPool2d(3),
        nn.Flatten(),
        nn.Linear(widths[2], num_classes, bias=False),
        _Scale(1 / 9),
    )


def _pairs(model: AirbenchNet, ref: nn.Sequential) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, srblock tensor, reference tensor) for every state entry, matched by position in the network."""
    pairs = [("whiten.weight", model.whiten.weight, ref[0].weight), ("whiten.bias", model.whiten.bias, ref[0].bias)]
    for b in (1, 2, 3):
        ours, theirs = getattr(model, f"block{b}"), ref[1 + b]
        for name, index in (("conv1", 0), ("norm1", 2), ("conv2", 4), ("norm2", 5)):
            for key, value in getattr(ours, name).state_dict(keep_vars=True).items():
                pairs.append((f"block{b}.{name}.{key}", value, theirs[index].state_dict(keep_vars=True)[key]))
    pairs.append(("fc.weight", model.fc.weight, ref[7].weight))
    return pairs


def train_reference(
    ref: nn.Sequential, epochs: list[list[tuple[torch.Tensor, torch.Tensor]]], *, batch_size: int
) -> None:
    """airbench94's training loop on the given batches (one list per epoch), in airbench's own parametrisation."""
    total = sum(len(e) for e in epochs)
    lr = 11.5 / KILOSTEP  # per example of a summed loss
    decay = 0.0153 * batch_size / KILOSTEP  # decoupled: lr x weight_decay per step
    norm_biases = [m.bias for m in ref.modules() if isinstance(m, nn.BatchNorm2d)]
    others = [p for p in ref.parameters() if p.requires_grad and all(p is not q for q in norm_biases)]
    optimizer = torch.optim.SGD(
        [
            {"params": norm_biases, "lr": 64 * lr, "weight_decay": decay / (64 * lr)},
            {"params": others, "lr": lr, "weight_decay": decay / lr},
        ],
        momentum=MOMENTUM,
        nesterov=True,
    )
    peak = int(0.23 * total)

    def factor(step: int) -> float:
        if step < peak:
            return 0.2 + 0.8 * step / peak
        return 1.0 - 0.93 * (step - peak) / (total - peak)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    slow: dict[str, torch.Tensor] | None = None
    step = 0
    for epoch, batches in enumerate(epochs):
        ref[0].bias.requires_grad_(epoch < 3)
        for images, labels in batches:
            loss = F.cross_entropy(ref(images), labels, label_smoothing=0.2, reduction="sum")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if epoch >= 3 and step % 5 == 0:
                fast = {k: v for k, v in ref.state_dict().items() if v.is_floating_point()}
                if slow is None:
                    slow = {k: v.clone() for k, v in fast.items()}
                else:
                    rho = 0.95**5 * (step / total) ** 3
                    for k, v in fast.items():
                        slow[k].lerp_(v, 1 - rho)
                        v.copy_(slow[k])
        if slow is not None:
            with torch.no_grad():
                for k, v in ref.state_dict().items():
                    if k in slow:
                        v.copy_(slow[k])


def test_recipe_trains_like_airbench94_step_for_step(tmp_path: Path) -> None:
    # 10 epochs of 10 steps: T = 100 puts airbench's integer peak int(0.23 T) on the recipe's 0.23 exactly
    batch, num_train, width = 16, 160, 0.25
    root = write_npz(tmp_path / "data", num_train=num_train, num_test=16, size=32)
    overrides = [
        f"data.root={root}",
        "data.dataset=npz",
        "data.init_images=64",
        # the first 64: on these toy images a run from the random sample's whitening is chaotic (float32 and float64
        # references end 30 % apart), from this one it is not (2e-5); the sample itself is not what is tested here
        "data.init_sample=first",
        "model.num_classes=4",
        f"model.width={width}",
        f"train.batch_size={batch}",
        "train.device=cpu",
        # airbench's lr is per 1024 examples of a summed loss: the mean-loss lr scales with the batch
        f"optim.lr={1.5 * batch / 1024}",
    ]
    config = load_config("cifar10/airbench", overrides)
    summary = train(config, tmp_path / "run", quiet=True)
    assert summary["steps"] == 100
    trained = load_checkpoint(tmp_path / "run" / "checkpoint_last.pt")["model"]

    # the run's initial weights and batches, rebuilt as the trainer builds them
    seed_everything(config["seed"])
    task = ClassificationTask(config, DistInfo(), torch.device("cpu"))
    model = task.build_model()
    loader = task.build_loaders().train
    epochs = []
    for epoch in range(10):
        loader.set_epoch(epoch)
        epochs.append([(x.clone(), y.clone()) for x, y in loader])
    ref = reference_net((16, 64, 64), 4)
    pairs = _pairs(model, ref)
    assert len(pairs) == len(ref.state_dict())  # every entry, BN statistics and counters included
    with torch.no_grad():
        for _, ours, theirs in pairs:
            theirs.copy_(ours)
    train_reference(ref, epochs, batch_size=batch)

    for name, _, theirs in pairs:
        ours = trained[name]
        assert torch.allclose(ours.double(), theirs.double(), rtol=1e-4, atol=1e-5), (name, (ours - theirs).abs().max())
    # the run moved the weights far from their init: the match is not the trivial one
    assert (trained["block3.conv2.weight"] - model.block3.conv2.weight).abs().max() > 1e-2
