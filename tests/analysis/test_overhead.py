"""The overhead report: parameter bookkeeping against Eq. (1), MACs, the JSON of `srblock overhead`, timing."""

from __future__ import annotations

import json

import pytest
import torch

from srblock.analysis.overhead import count_macs, format_overhead, overhead_report
from srblock.analysis.timing import interleaved_timings, ratios
from srblock.cli import main
from srblock.layers import SRBlock, find_sr_blocks, sr_param_count
from srblock.models import create_model

REQUIRED_KEYS = {
    "params_base",
    "params_sr",
    "sr_params",
    "overhead_pct",
    "sr_params_formula",
    "gmacs_base",
    "gmacs_sr",
    "latency_ratio_eval",
    "latency_ratio_train",
}


def test_small_cifar_model_params_match_eq1():
    report = overhead_report("cifar_resnet18", sr_stage=3, num_memories=4, hidden=8, width=0.25, timing=False)
    assert set(report) >= REQUIRED_KEYS
    assert report["sr_params"] == report["sr_params_formula"]
    assert report["params_sr"] - report["params_base"] == report["sr_params"]
    assert report["overhead_pct"] == pytest.approx(100 * report["sr_params"] / report["params_base"])
    # width 0.25: stage 3 outputs 64 channels at 8x8
    assert report["sr_params_formula"] == sr_param_count(64, 8, hidden=8, num_memories=4)
    assert report["gmacs_sr"] > report["gmacs_base"] > 0
    assert report["latency_ratio_eval"] is None and report["latency_ratio_train"] is None


def test_a_coarse_block_is_counted_at_its_own_size():
    """A block built for 4x4 on an 8x8 stage (size_policy interpolate): Eq. (1) at 4x4, no false warning."""
    coarse = {"feat_size": 4, "size_policy": "interpolate"}
    report = overhead_report(
        "cifar_resnet18", sr_stage=3, num_memories=4, hidden=8, width=0.25, sr_kwargs=coarse, timing=False
    )
    assert report["sr_params"] == report["sr_params_formula"] == sr_param_count(64, 4, hidden=8, num_memories=4)
    assert "WARNING" not in format_overhead(report)


def test_macs_count_the_memory_recall():
    block = SRBlock(16, 4, num_memories=3, hidden=2)
    # squeeze 16 per position, routing (W2 W1) z 16*3 (W2 W1 is kept between eval passes), recall 3 * 16*16;
    # the residual add is element-wise
    assert count_macs(block, torch.randn(1, 16, 4, 4)) == 16 * 16 + 16 * 3 + 3 * 16 * 16


def test_cli_overhead_json_parses(capsys):
    argv = ["overhead", "--model", "cifar_resnet18", "--sr-stage", "4", "--num-memories", "2", "--hidden", "8"]
    assert main([*argv, "--width", "0.25", "--num-classes", "100", "--no-timing", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= REQUIRED_KEYS
    assert report["sr_params"] == report["sr_params_formula"] == sr_param_count(128, 4, hidden=8, num_memories=2)
    assert report["latency_ratio_eval"] is None
    assert report["input_size"] == [3, 32, 32]


def test_cli_overhead_prints_a_table(capsys):
    argv = ["overhead", "--model", "cifar_resnet18", "--sr-stage", "3", "--num-memories", "2", "--hidden", "8"]
    assert main([*argv, "--width", "0.25", "--no-timing"]) == 0
    out = capsys.readouterr().out
    assert "parameter overhead (OH)" in out and "SR params (Eq. 1)" in out


def test_timing_gives_ratios_close_to_one_for_equal_steps():
    samples = interleaved_timings({"a": lambda: sum(range(2000)), "b": lambda: sum(range(2000))}, repeats=5)
    assert all(len(v) == 5 for v in samples.values())
    r = ratios(samples, "a")
    assert r["a"] == 1.0 and 0.2 < r["b"] < 5.0
    with pytest.raises(ValueError, match="baseline 'c'"):
        ratios(samples, "c")


def test_overhead_with_timing_on_a_tiny_model():
    report = overhead_report(
        "cifar_resnet18", sr_stage=4, num_memories=2, hidden=4, width=0.125, repeats=2, warmup=1, input_size=16
    )
    assert report["latency_ratio_eval"] > 0 and report["latency_ratio_train"] > 0
    assert report["timing"]["eval"]["block_share_pct"] > 0 and report["timing"]["train"]["block_ms"] > 0
    assert report["input_size"] == [3, 16, 16]
    assert report["sr_input_shapes"]["layer4.sr"] == [64, 2, 2]
    assert "latency ratio eval" in format_overhead(report)


def test_overhead_of_several_sr_blocks_counts_every_block() -> None:
    from srblock.analysis.overhead import format_overhead, overhead_report

    one = {
        s: overhead_report("cifar_resnet18", sr_stage=s, num_memories=4, hidden=8, width=0.25, timing=False)
        for s in (3, 4)
    }
    both = overhead_report("cifar_resnet18", sr_stage=[3, 4], num_memories=4, hidden=8, width=0.25, timing=False)
    assert both["sr_params"] == both["sr_params_formula"] == one[3]["sr_params"] + one[4]["sr_params"]
    assert both["after"] == "layer3, layer4" and set(both["sr_input_shapes"]) == {"layer3.sr", "layer4.sr"}
    assert "SR at stage M=3,4 (layer3, layer4)" in format_overhead(both)


def test_cli_overhead_takes_several_stages_and_eca(capsys):
    argv = ["overhead", "--model", "cifar_resnet18", "--sr-stage", "3", "4", "--num-memories", "2", "--hidden", "8"]
    assert main([*argv, "--width", "0.25", "--attention", "eca", "--no-timing", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    expected = sr_param_count(64, 8, hidden=8, num_memories=2) + sr_param_count(128, 4, hidden=8, num_memories=2)
    assert report["sr_stage"] == [3, 4] and report["attention"] == "eca" and report["sr_params"] == expected


def test_block_timing_runs_every_sr_block():
    from srblock.analysis.timing import sr_block_step

    model = create_model("cifar_resnet18", sr_stage=[3, 4], num_memories=2, width=0.125)
    images = torch.randn(2, 3, 32, 32)
    calls = []
    for block in find_sr_blocks(model).values():
        block.register_forward_hook(lambda m, _i, _o: calls.append(m))
    for mode in ("eval", "train"):
        step = sr_block_step(model, images, mode)
        calls.clear()
        step()
        assert calls == list(find_sr_blocks(model).values()), mode
    assert model.layer4.sr.memory.grad is not None  # the train step reached the second block's parameters
