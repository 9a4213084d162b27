"""The SR routing's load-balancing loss (``train.sr_balance``): its value, its gradient, and the engine wiring."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from torch import nn

from srblock.engine import train
from srblock.engine.config import resolve_config
from srblock.engine.sr_balance import RoutingBalance
from srblock.layers import SRBlock, capture_memory_weights

from .conftest import tiny_config


def _collapsed_block(logit: float = 60.0, num_memories: int = 4) -> SRBlock:
    """A block whose routing sends every positive input to memory 0 with a first logit of about ``logit``."""
    torch.manual_seed(0)
    block = SRBlock(6, 3, num_memories=num_memories, hidden=5, memory_init="normal")
    with torch.no_grad():
        block.squeeze.weight.fill_(1 / 6)  # z = the channel mean, 1 for the inputs below
        block.fc1.weight.fill_(1 / 9)  # every hidden unit = the mean of z
        block.fc2.weight.zero_()
        block.fc2.weight[0] = logit / 5
    return block


def _inputs(batch: int) -> torch.Tensor:
    return 1 + 0.01 * torch.randn(batch, 6, 3, 3)


def _minimise(
    block: nn.Module, balance: RoutingBalance, opt: torch.optim.Optimizer, x: torch.Tensor, *, steps: int, others=()
) -> None:
    """Gradient steps on ``balance``'s term alone (``others`` only consume what each forward recorded for them)."""
    for _ in range(steps):
        block(x)
        loss = balance.loss()
        for other in others:
            other.loss()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_balance_is_zero_for_equal_usage_and_p_minus_1_for_one_memory():
    block = _collapsed_block()
    balance = RoutingBalance(block, weight=1.0)
    block(_inputs(8))
    assert balance.loss().item() == pytest.approx(3.0, abs=1e-4)  # P - 1 with P = 4

    with torch.no_grad():  # equal logits: every memory recalled equally
        block.fc2.weight.zero_()
    block(_inputs(8))
    assert balance.loss().item() == pytest.approx(0.0, abs=1e-6)


def test_balance_matches_the_cv_squared_of_the_mean_weights_over_blocks():
    torch.manual_seed(1)
    model = nn.Sequential(
        SRBlock(4, 2, num_memories=3, hidden=2, logit_scale=8.0), SRBlock(4, 2, num_memories=5, hidden=3)
    )
    balance = RoutingBalance(model, weight=0.5)
    x = torch.randn(6, 4, 2, 2)
    with capture_memory_weights(model) as captured:
        model(x)
    expected = []
    for weights in (captured["0"][0], captured["1"][0]):
        usage = weights.flatten(1).mean(0)
        expected.append(usage.var(unbiased=False) / usage.mean() ** 2)  # CV² of the usage
    assert balance.loss().item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-5)


def test_minimising_balance_alone_spreads_a_collapsed_routing():
    block = _collapsed_block(logit=4.0)
    balance = RoutingBalance(block, weight=1.0)
    opt = torch.optim.SGD(block.parameters(), lr=0.02)
    x = _inputs(32)
    block(x)
    assert balance.loss().item() > 2
    _minimise(block, balance, opt, x, steps=100)
    block(x)
    assert balance.loss().item() < 0.1  # from 2.6 (P - 1 = 3 at most)
    assert block.memory.grad is None or float(block.memory.grad.abs().max()) == 0  # the term trains the routing only


def test_mutual_info_is_minus_one_for_decisive_balanced_routing_and_zero_for_uniform_or_collapsed():
    balance = RoutingBalance(nn.Sequential(SRBlock(6, 3, num_memories=4, hidden=5)), weight=1.0, kind="mutual_info")
    record = balance._record  # feed it softmax outputs directly (a training forward's)
    block = nn.Module()  # any training-mode module
    record(block, (), torch.eye(4).repeat(2, 1))  # 8 images, each on one memory, each memory used twice
    assert balance.loss().item() == pytest.approx(-1.0, abs=1e-5)
    record(block, (), torch.full((8, 4), 0.25))  # every image uniform
    assert balance.loss().item() == pytest.approx(0.0, abs=1e-6)
    record(block, (), torch.eye(4)[[0] * 8])  # every image on memory 0
    assert balance.loss().item() == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match=r"must be one of \('importance', 'mutual_info'\), got 'entropy'"):
        RoutingBalance(block, weight=1.0, kind="entropy")


def test_minimising_mutual_info_makes_routing_decisive_and_balanced():
    torch.manual_seed(0)
    block = SRBlock(6, 3, num_memories=4, hidden=5, memory_init="normal")
    balance = RoutingBalance(block, weight=1.0, kind="mutual_info")
    importance = RoutingBalance(block, weight=1.0)
    opt = torch.optim.Adam(block.parameters(), lr=0.05)
    x = torch.randn(64, 6, 3, 3)
    block(x)
    start = balance.loss().item()
    importance.loss()
    _minimise(block, balance, opt, x, steps=200, others=(importance,))
    with capture_memory_weights(block) as captured:
        block(x)
    weights = captured[""][0]
    assert start > -0.1 and balance.loss().item() < -0.8  # from near uniform to decisive and balanced
    assert importance.loss().item() < 0.2  # the memories stay in use (P - 1 = 3 if one took all)
    assert (weights.max(dim=1).values > 0.9).float().mean() > 0.9  # most images pick one memory


@pytest.mark.parametrize("kind", ["importance", "mutual_info"])
def test_detach_keeps_the_terms_gradient_on_the_routing_and_off_the_block_input(kind):
    torch.manual_seed(0)
    block = SRBlock(6, 3, num_memories=4, hidden=5, memory_init="normal", logit_scale=8.0)
    terms, grads = {}, {}
    inputs = torch.randn(16, 6, 3, 3)
    for detach in (False, True):
        balance = RoutingBalance(block, weight=1.0, kind=kind, detach=detach)
        x = inputs.clone().requires_grad_()
        block.zero_grad()
        block(x)
        term = balance.loss()
        term.backward()
        terms[detach], grads[detach] = term.item(), (x.grad, block.fc2.weight.grad.clone())
        balance.remove()
    assert terms[True] == pytest.approx(terms[False], abs=1e-6)  # the same weights, computed again
    assert grads[False][0].abs().sum() > 0  # by default the term also pushes on the features the block reads
    assert grads[True][0] is None  # detached: nothing reaches the input ...
    assert torch.allclose(grads[True][1], grads[False][1], atol=1e-6) and grads[True][1].abs().sum() > 0  # ... same


def test_eval_and_no_grad_forwards_record_nothing_and_remove_detaches():
    block = _collapsed_block()
    balance = RoutingBalance(block, weight=1.0)
    with torch.no_grad():
        block(_inputs(2))
    block.eval()
    block(_inputs(2))
    with pytest.raises(RuntimeError, match="no SR routing weights"):
        balance.loss()
    block.train()
    balance.remove()
    block(_inputs(2))
    with pytest.raises(RuntimeError, match="no SR routing weights"):
        balance.loss()
    with pytest.raises(ValueError, match="needs a model with SR blocks"):
        RoutingBalance(nn.Linear(2, 2), weight=1.0)


def test_engine_adds_the_weighted_term_and_logs_it(tiny_data: Path, tmp_path: Path):
    config = tiny_config(tiny_data, epochs=1, sr_balance=0.1)
    config["model"]["sr"] = {"memory_init": "normal", "logit_scale": 8.0}
    summary = train(config, tmp_path / "run", quiet=True)
    assert summary["config"]["train"]["sr_balance"] == 0.1
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    logged = [float(r["train_sr_balance"]) for r in rows if r.get("train_sr_balance")]
    assert logged and all(0 <= v <= 2 for v in logged)  # P - 1 = 2 at most (P = 3)

    mi = tiny_config(tiny_data, epochs=1, sr_balance=0.1, sr_balance_loss="mutual_info")
    train({**mi, "model": config["model"]}, tmp_path / "mi", quiet=True)
    rows = list(csv.DictReader((tmp_path / "mi" / "metrics.csv").open()))
    logged = [float(r["train_sr_balance"]) for r in rows if r.get("train_sr_balance")]
    assert logged and all(-1 <= v <= 0 for v in logged)  # −I(image; memory) / log P: the chosen loss was used

    plain = train(tiny_config(tiny_data, epochs=1), tmp_path / "plain", quiet=True)
    assert plain["config"]["train"]["sr_balance"] == 0.0
    assert "train_sr_balance" not in next(csv.DictReader((tmp_path / "plain" / "metrics.csv").open()))


@pytest.mark.parametrize("bad", [-0.1, "x", True])
def test_config_rejects_a_bad_balance_weight_or_loss(tiny_data: Path, bad):
    with pytest.raises(ValueError, match=r"train.sr_balance must be a number"):
        resolve_config(tiny_config(tiny_data, sr_balance=bad))
    with pytest.raises(ValueError, match=r"train.sr_balance_loss must be one of \('importance', 'mutual_info'\)"):
        resolve_config(tiny_config(tiny_data, sr_balance=0.1, sr_balance_loss=str(bad)))
    with pytest.raises(ValueError, match=r"train.sr_balance_detach must be"):
        resolve_config(tiny_config(tiny_data, sr_balance=0.1, sr_balance_detach=str(bad)))


@pytest.mark.slow
def test_the_term_is_the_same_under_torch_compile(tiny_data: Path, tmp_path: Path):
    logged = {}
    for mode in (False, True):  # the hooks on the blocks' softmax are traced into the compiled graph
        config = tiny_config(tiny_data, epochs=1, compile=mode, sr_balance=0.1, sr_balance_loss="mutual_info")
        train(config, tmp_path / str(mode), quiet=True)
        rows = csv.DictReader((tmp_path / str(mode) / "metrics.csv").open())
        logged[mode] = [float(r["train_sr_balance"]) for r in rows if r.get("train_sr_balance")]
    assert logged[True] and logged[True] == pytest.approx(logged[False], rel=1e-5)
