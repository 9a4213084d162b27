"""The overhead report for any model: timm and torchvision models by name, or a module, with SR after a named module."""

from __future__ import annotations

import json

import pytest
from torch import nn

from srblock.analysis.overhead import format_overhead, overhead_report
from srblock.cli import main
from srblock.layers import sr_param_count

BLOCK = {"num_memories": 3, "hidden": 4}


def _check_bookkeeping(report: dict) -> None:
    assert report["sr_params"] == report["sr_params_formula"] > 0
    assert report["params_sr"] - report["params_base"] == report["sr_params"]
    assert report["gmacs_sr"] > report["gmacs_base"] > 0


def test_timm_model_by_name() -> None:
    pytest.importorskip("timm")
    report = overhead_report("timm:convnext_atto", after="stages.2", input_size=64, timing=False, **BLOCK)
    _check_bookkeeping(report)
    # convnext_atto: stage 3 has 160 channels at stride 16
    assert report["sr_input_shapes"] == {"stages.2.sr": [160, 4, 4]}
    assert report["sr_params"] == sr_param_count(160, 4, **BLOCK)
    assert report["model"] == "timm:convnext_atto" and report["after"] == "stages.2" and report["sr_stage"] is None
    assert "SR after stages.2" in format_overhead(report)


def test_cli_torchvision_model_by_name(capsys) -> None:
    argv = ["overhead", "--model", "torchvision:resnet18", "--after", "layer3", "--num-memories", "3", "--hidden", "4"]
    assert main([*argv, "--input-size", "64", "--num-classes", "10", "--no-timing", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    _check_bookkeeping(report)
    assert report["sr_input_shapes"] == {"layer3.sr": [256, 4, 4]} and report["num_classes"] == 10
    assert report["input_size"] == [3, 64, 64]


def test_zoo_model_after_a_named_module() -> None:
    report = overhead_report("cifar_resnet18", after="layer3.0", width=0.25, timing=False, **BLOCK)
    _check_bookkeeping(report)
    assert report["sr_input_shapes"] == {"layer3.0.sr": [64, 8, 8]}
    staged = overhead_report("cifar_resnet18", sr_stage=3, width=0.25, timing=False, **BLOCK)
    assert staged["after"] == "layer3" and "SR at stage M=3 (layer3)" in format_overhead(staged)


def test_a_module_is_measured_on_a_copy_with_timing() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 5))
    report = overhead_report(model, after="1", input_size=16, repeats=2, warmup=1, **BLOCK)
    _check_bookkeeping(report)
    assert report["model"] == "Sequential" and report["num_classes"] == 5  # read from the model's output
    assert report["latency_ratio_eval"] > 0 and report["latency_ratio_train"] > 0
    assert not hasattr(model[1], "sr") and model.training  # the caller's model is untouched


def test_where_the_block_goes_is_checked() -> None:
    with pytest.raises(ValueError, match=r"exactly one of sr_stage .* and after"):
        overhead_report("cifar_resnet18", timing=False, **BLOCK)
    with pytest.raises(ValueError, match="exactly one of sr_stage"):
        overhead_report("cifar_resnet18", sr_stage=3, after="layer3", timing=False, **BLOCK)
    with pytest.raises(ValueError, match="sr_stage counts the stages of zoo models"):
        overhead_report("torchvision:resnet18", sr_stage=3, timing=False, **BLOCK)
    with pytest.raises(ValueError, match="options of the zoo models"):
        overhead_report("torchvision:resnet18", after="layer3", regularizer="dropout2d", timing=False, **BLOCK)
    with pytest.raises(ValueError, match=r"timm:NAME, torchvision:NAME or an nn\.Module, got .keras:resnet."):
        overhead_report("keras:resnet", after="layer3", timing=False, **BLOCK)
    with pytest.raises(ValueError, match="no submodule named 'layer9'"):
        overhead_report("torchvision:resnet18", after="layer9", input_size=32, timing=False, **BLOCK)


def test_cli_takes_one_placement(capsys) -> None:
    argv = ["overhead", "--model", "cifar_resnet18", "--num-memories", "2", "--hidden", "8", "--no-timing"]
    with pytest.raises(SystemExit):
        main([*argv, "--sr-stage", "3", "--after", "layer3"])
    assert "not allowed with argument" in capsys.readouterr().err
