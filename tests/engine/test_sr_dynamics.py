"""Issue 10: the SR learning-dynamics columns, parameter groups, the frozen controls and paired RNG streams."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from srblock.engine import train
from srblock.engine.config import resolve_config
from srblock.engine.optim import build_optimizer, freeze_groups, group_parameters
from srblock.layers import SRBlock
from srblock.models import create_model
from srblock.models.surgery import find_sr_blocks

from .conftest import tiny_config

COLUMNS = ("memory_ratio", "routing_change", "routing_turn", "routing_entropy", "memory_spread")


def _rows(out: Path) -> list[dict[str, float]]:
    return [{k: float(v) for k, v in row.items()} for row in csv.DictReader((out / "metrics.csv").open())]


def test_every_column_is_written_and_in_range(finished_run) -> None:
    out, summary = finished_run
    rows = _rows(out)
    for row in rows:
        for col in COLUMNS:
            assert f"layer2.sr.{col}" in row
        assert 0 < row["layer2.sr.memory_ratio"] < 1  # the memory trained away from zero, but stays small
        assert 0 < row["layer2.sr.routing_change"] < 1
        assert 0 <= row["layer2.sr.routing_turn"] < row["layer2.sr.routing_change"]
        assert 0 < row["layer2.sr.routing_entropy"] <= 1
        assert row["layer2.sr.memory_spread"] >= 0
    assert summary["sr_dynamics"] == {f"layer2.sr.{c}": pytest.approx(rows[-1][f"layer2.sr.{c}"]) for c in COLUMNS}


def test_memory_ratio_matches_the_recalled_features() -> None:
    """RMS(Σ wᵢMᵢ) / RMS(X) from the Gram-matrix shortcut equals the directly computed ratio."""
    from srblock.engine.sr_dynamics import SRDynamics

    torch.manual_seed(0)
    block = SRBlock(6, (3, 4), num_memories=5, hidden=3, memory_init="normal", memory_std=0.3)
    dynamics = SRDynamics(block)
    batches = [torch.randn(7, 6, 3, 4), torch.randn(4, 6, 3, 4)]
    with dynamics.track(), torch.no_grad():
        outs = [block(x) for x in batches]
    recalled = torch.cat([o - x for o, x in zip(outs, batches, strict=True)])
    expected = recalled.pow(2).mean().sqrt() / torch.cat(batches).pow(2).mean().sqrt()
    cols = dynamics.columns()
    assert cols[".memory_ratio"] == pytest.approx(float(expected), rel=1e-5)
    with torch.no_grad():
        weights = torch.cat([block.softmax(block.fc2(block.fc1(block.squeeze(x).flatten(1)))) for x in batches])
    entropy = -(weights * weights.log()).sum(1).mean() / math.log(5)
    assert cols[".routing_entropy"] == pytest.approx(float(entropy), rel=1e-5)
    assert cols[".memory_spread"] > 0


def test_memory_ratio_of_a_coarse_block_is_what_it_adds_at_the_input_size() -> None:
    """A block built for 5 steps (size_policy interpolate) on 23-step inputs: the ratio is the RMS of the recalled map
    at 23 steps, as the block adds it, not of the 5-step memory."""
    from srblock import SRBlock1d
    from srblock.engine.sr_dynamics import SRDynamics

    torch.manual_seed(0)
    block = SRBlock1d(4, 5, num_memories=3, hidden=2, memory_init="normal", size_policy="interpolate")
    with torch.no_grad():
        block.memory[:, :, 0] += 3.0  # a spike at one end: resizing changes the RMS a lot
    dynamics = SRDynamics(block)
    x = torch.randn(6, 4, 23)
    with dynamics.track(), torch.no_grad():
        recalled = block(x) - x
    expected = recalled.pow(2).mean().sqrt() / x.pow(2).mean().sqrt()
    assert dynamics.columns()[".memory_ratio"] == pytest.approx(float(expected), rel=1e-5)
    assert block.resized_memory((23,)).shape == (3, 4, 23) and block.resized_memory((5,)) is block.memory


def test_zero_memory_control_moves_routing_by_weight_decay_only(tiny_data: Path, tmp_path: Path) -> None:
    """Memory frozen at zero: the block is an exact identity, memory_ratio is 0 and the routing weights only
    shrink by weight decay: θ_T = θ₀ · Π(1 − lr_t·wd) with momentum, i.e. routing_change = 1 − that product."""
    config = tiny_config(tiny_data, epochs=1)
    config["optim"] = {**config["optim"], "groups": {"sr_memory": {"frozen": True}}}
    out = tmp_path / "frozen-memory"
    train(config, out, quiet=True)
    (row,) = _rows(out)
    assert row["layer2.sr.memory_ratio"] == 0.0 and row["layer2.sr.memory_spread"] == 0.0
    # SGD with momentum on g = wd·θ alone: θ is scaled by the same factor in every coordinate.
    steps, lr, wd, mom = 3, 0.05, 1e-4, 0.9  # 72 training samples / batch 24
    theta, velocity = 1.0, 0.0
    for _ in range(steps):
        velocity = mom * velocity + wd * theta
        theta -= lr * velocity
    assert row["layer2.sr.routing_change"] == pytest.approx(1 - theta, rel=1e-3)
    assert row["layer2.sr.routing_turn"] == pytest.approx(0.0, abs=1e-6)  # a pure shrink does not turn θ


def test_frozen_memory_run_equals_the_baseline_bit_for_bit(tiny_data: Path, tmp_path: Path) -> None:
    """The SR model with its memory frozen at zero trains exactly like the same network without SR (CPU)."""
    config = tiny_config(tiny_data, epochs=1)
    sr = {**config, "optim": {**config["optim"], "groups": {"sr_memory": {"frozen": True}}}}
    base = {**config, "model": {k: v for k, v in config["model"].items() if k not in ("sr_stage",)}}
    sr_summary = train(sr, tmp_path / "sr", quiet=True)
    base_summary = train(base, tmp_path / "base", quiet=True)
    assert sr_summary["test"] == base_summary["test"] and sr_summary["val"] == base_summary["val"]
    sr_weights = torch.load(tmp_path / "sr" / "checkpoint_last.pt", weights_only=True)["model"]
    base_weights = torch.load(tmp_path / "base" / "checkpoint_last.pt", weights_only=True)["model"]
    assert set(base_weights) < set(sr_weights)
    for key, value in base_weights.items():
        assert torch.equal(value, sr_weights[key]), key


def test_create_model_with_sr_leaves_the_global_rng_where_the_plain_model_does() -> None:
    torch.manual_seed(3)
    create_model("cifar_resnet18", num_classes=10, width=0.125, regularizer="dropout2d")
    plain = torch.get_rng_state()
    torch.manual_seed(3)
    model = create_model("cifar_resnet18", num_classes=10, width=0.125, regularizer="dropout2d", sr_stage=3)
    assert torch.equal(torch.get_rng_state(), plain)
    first = model.layer3.sr.fc1.weight.clone()
    torch.manual_seed(3)
    again = create_model("cifar_resnet18", num_classes=10, width=0.125, regularizer="dropout2d", sr_stage=3)
    torch.manual_seed(4)
    other = create_model("cifar_resnet18", num_classes=10, width=0.125, regularizer="dropout2d", sr_stage=3)
    assert torch.equal(again.layer3.sr.fc1.weight, first)  # the block's init is still seeded ...
    assert not torch.equal(other.layer3.sr.fc1.weight, first)  # ... by the run's seed


def test_parameter_groups_reach_the_optimizer() -> None:
    model = create_model("cifar_resnet18", num_classes=10, width=0.125, sr_stage=3)
    optim = resolve_config(
        {
            "optim": {
                "lr": 0.1,
                "weight_decay": 1e-4,
                "groups": {"sr_memory": {"lr_mult": 10, "weight_decay": 0}, "sr_routing": {"frozen": True}},
            },
            "model": {"name": "cifar_resnet18", "num_classes": 10},  # resolve_config checks the model section
            "train": {"epochs": 1},
        }
    )["optim"]
    frozen = freeze_groups(model, optim["groups"])
    optimizer = build_optimizer(model, optim)
    (block,) = find_sr_blocks(model).values()
    assert frozen == 3 and not block.fc1.weight.requires_grad and block.memory.requires_grad
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert list(groups) == ["default", "sr_memory"]  # the default group first (the progress line's lr), frozen absent
    assert groups["sr_memory"]["params"] == [block.memory]
    assert (groups["sr_memory"]["lr"], groups["sr_memory"]["weight_decay"]) == (1.0, 0)
    assert (groups["default"]["lr"], groups["default"]["weight_decay"]) == (0.1, 1e-4)
    sr_ids = {id(p) for p in block.parameters()}
    assert not any(id(p) in sr_ids for p in groups["default"]["params"])
    norm_bias = group_parameters(model, {"norm_bias": {}})["norm_bias"]
    assert norm_bias and all(p.ndim == 1 for p in norm_bias)


def test_norm_group_takes_normalisation_layers_only() -> None:
    model = create_model("cifar_airbench", num_classes=10, width=0.25)
    norm = group_parameters(model, {"norm": {}})["norm"]
    assert {id(p) for p in norm} == {
        id(p) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in (m.weight, m.bias)
    }
    both = group_parameters(model, {"norm": {}, "norm_bias": {}})
    assert both["norm_bias"] == [model.whiten.bias]  # the whitening conv's bias is a bias, not a norm parameter


@pytest.mark.parametrize(
    ("groups", "match"),
    [
        ({"sr_memroy": {}}, "unknown parameter group optim.groups.sr_memroy"),
        ({"sr_memory": {"lr": 2}}, r"unknown option\(s\) \['lr'\]"),
        ({"sr_memory": {"lr_mult": -1}}, "lr_mult must be a number >= 0"),
        ({"sr_memory": {"frozen": "yes"}}, "frozen must be true or false"),
    ],
)
def test_bad_parameter_groups_are_named(groups: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        resolve_config({"optim": {"lr": 0.1, "groups": groups}, "model": {"name": "x"}, "train": {"epochs": 1}})


def test_initial_routing_rebuilds_the_engines_init(tiny_data: Path) -> None:
    """The analysis rebuilds θ₀ from the recipe's seed; it equals what the engine's run recorded at its start."""
    from srblock.analysis.dynamics import initial_routing
    from srblock.engine.distributed import DistInfo
    from srblock.engine.trainer import _Run

    config = resolve_config(tiny_config(tiny_data))
    run = _Run(config, tiny_data.parent / "unused", DistInfo(), torch.device("cpu"), quiet=True)
    rebuilt = initial_routing(config)
    (name,) = rebuilt
    flat = torch.cat([t.flatten() for n, t in run.dynamics.blocks[name].named_parameters() if n != "memory"])
    assert torch.equal(torch.cat([t.flatten() for t in rebuilt[name].values()]), run.dynamics.init[name])
    assert torch.equal(flat, run.dynamics.init[name])


def test_load_dynamics_reads_the_columns_of_a_run(finished_run) -> None:
    from srblock.analysis.dynamics import load_dynamics

    out, _ = finished_run
    curves = load_dynamics(out)
    assert list(curves) == ["layer2.sr"] and curves["layer2.sr"]["epoch"] == [1.0, 2.0]
    assert set(curves["layer2.sr"]) == {"epoch", *COLUMNS}


def test_dynamics_cover_every_block_of_a_multi_block_model() -> None:
    from srblock.engine.sr_dynamics import SRDynamics

    model = create_model("cifar_resnet18", sr_stage=[2, 3, 4], width=0.125).eval()
    dynamics = SRDynamics(model)
    with dynamics.track(), torch.no_grad():
        model(torch.randn(3, 3, 32, 32))
    cols = dynamics.columns()
    assert set(cols) == {f"layer{i}.sr.{c}" for i in (2, 3, 4) for c in COLUMNS}
    assert all(0 < cols[f"layer{i}.sr.routing_entropy"] <= 1 for i in (2, 3, 4))
    assert all(cols[f"layer{i}.sr.memory_ratio"] == 0 for i in (2, 3, 4))  # zero memory at init


@pytest.mark.slow
def test_several_sr_blocks_each_get_their_dynamics_and_analysis(tiny_data: Path, tmp_path: Path) -> None:
    """model.sr_stage as a list: a recipe trains one block per stage, and the dynamics columns, the summary, the
    parameter count and the checkpoint analysis cover every block."""
    from srblock.analysis.report import analyze_checkpoint

    config = resolve_config(tiny_config(tiny_data, epochs=1), ["model.sr_stage=[1, 2]"])
    assert config["model"]["sr_stage"] == [1, 2]
    summary = train(config, tmp_path / "run", quiet=True)
    blocks = ("layer1.sr", "layer2.sr")
    assert set(summary["sr_dynamics"]) == {f"{b}.{c}" for b in blocks for c in COLUMNS}
    assert all(0 < summary["sr_dynamics"][f"{b}.routing_entropy"] <= 1 for b in blocks)
    model = create_model(
        "cifar_resnet18", num_classes=4, width=0.0625, input_size=[3, 8, 8], sr_stage=[1, 2], num_memories=3, hidden=4
    )
    assert summary["sr_params"] == sum(p.numel() for b in find_sr_blocks(model).values() for p in b.parameters())
    analysis = analyze_checkpoint(tmp_path / "run" / "checkpoint_best.pt", split="test", output_dir=tmp_path / "a")
    assert set(analysis["blocks"]) == set(blocks)


def test_model_sr_stage_must_be_a_stage_or_a_list_of_them(tiny_data: Path) -> None:
    with pytest.raises(ValueError, match=r"model.sr_stage must be"):
        resolve_config(tiny_config(tiny_data), ["model.sr_stage=[2, 'x']"])
