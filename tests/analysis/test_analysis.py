"""The analyses of PAPER.md §5 on a tiny trained model: files, weight sums, per-class statistics, ablation."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import pytest
import torch
from PIL import Image

from srblock.analysis.ablation import ablation, evaluate_accuracy
from srblock.analysis.features import feature_effect
from srblock.analysis.maps import memory_maps
from srblock.analysis.plots import is_png
from srblock.analysis.report import analyze_model, resolve_classes, write_report
from srblock.analysis.usage import collect_memory_weights, summarize_usage
from srblock.layers import SRBlock

from .conftest import CLASS_NAMES, TinySRNet


def test_weights_per_image_sum_to_one(trained, batches):
    record = collect_memory_weights(trained, batches)
    weights = record.weights["sr"]
    assert weights.shape == (60, 3)
    torch.testing.assert_close(weights.sum(1), torch.ones(60))
    assert record.num_images == 60
    assert 0.0 <= record.accuracy <= 100.0


def test_usage_per_class_is_mean_and_std_of_first_n_images(trained, batches):
    record = collect_memory_weights(trained, batches)
    weights, labels = record.weights["sr"], record.labels
    usage = summarize_usage(weights, labels, classes=[1, 2], per_class=7, class_names=CLASS_NAMES)
    rows = weights[labels == 1][:7]
    assert usage["classes"]["green"]["count"] == 7
    assert usage["classes"]["green"]["mean"] == pytest.approx(rows.mean(0).tolist(), abs=1e-6)
    assert usage["classes"]["green"]["std"] == pytest.approx(rows.std(0).tolist(), abs=1e-6)
    assert usage["overall"]["count"] == 60
    assert sum(usage["overall"]["mean"]) == pytest.approx(1.0, abs=1e-5)
    assert list(usage["classes"]) == ["green", "blue"]


def test_max_images_stops_early_and_keeps_samples(trained, batches):
    record = collect_memory_weights(trained, batches, max_images=20, keep_classes=[0, 2])
    assert record.num_images == 20
    assert sorted(record.samples) == [0, 2]
    assert record.samples[0].shape == (3, 8, 8)


def test_ablation_equals_model_built_without_sr(trained, batches):
    result = ablation(trained, batches)
    plain = TinySRNet(sr=False)
    plain.load_state_dict({k: v for k, v in trained.state_dict().items() if not k.startswith("sr.")}, strict=True)
    expected = evaluate_accuracy(plain, batches)
    assert result["acc_no_sr"] == expected["acc1"]
    assert result["acc_sr"] == evaluate_accuracy(trained, batches)["acc1"]
    assert result["num_images"] == 60
    assert isinstance(trained.sr, SRBlock), "the caller's model must keep its SR block"


def test_memory_maps_are_channel_means(trained):
    maps = memory_maps(trained)
    torch.testing.assert_close(maps["sr"], trained.sr.memory.detach().mean(1))
    assert maps["sr"].shape == (3, 4, 4)


def test_feature_effect_difference_is_the_recalled_memory(trained, batches):
    images = batches[0][0][:4]
    effect = feature_effect(trained, images)
    with torch.no_grad():
        x = trained.stem(images)
        recalled = trained.sr(x) - x
    torch.testing.assert_close(effect["abs_diff"], recalled.abs().mean(1))
    torch.testing.assert_close(effect["after"] - effect["before"], recalled.mean(1), atol=1e-5, rtol=1e-5)
    expected = 100 * recalled.abs().sum((1, 2, 3)) / x.abs().sum((1, 2, 3))
    assert effect["relative_change_pct"] == pytest.approx(expected.tolist(), rel=1e-4)


def test_feature_effect_is_zero_for_untrained_block():
    net = TinySRNet().eval()
    effect = feature_effect(net, torch.randn(2, 3, 8, 8))
    assert effect["relative_change_pct"] == [0.0, 0.0]


def test_resolve_classes_accepts_names_and_indices():
    assert resolve_classes(["blue", "0", 1], CLASS_NAMES) == [2, 0, 1]
    assert resolve_classes(None, CLASS_NAMES) is None
    with pytest.raises(ValueError, match="known class names: red, green, blue"):
        resolve_classes(["cliff"], CLASS_NAMES)


def _assert_valid_png(path):
    assert is_png(path), f"{path} lacks the PNG signature"
    with Image.open(path) as img:
        img.verify()
    assert mpimg.imread(path).ndim == 3


def test_analyze_model_writes_every_file(trained, batches, tmp_path):
    result = analyze_model(trained, batches, tmp_path, per_class=5, class_names=CLASS_NAMES, classes=["red", "blue"])
    expected = {"report.md", "analysis.json", "usage_sr.png", "memory_maps_sr.png", "features_sr.png"}
    assert expected <= {p.name for p in tmp_path.iterdir()}
    for png in tmp_path.glob("*.png"):
        _assert_valid_png(png)
    report = (tmp_path / "report.md").read_text()
    for name in ("usage_sr.png", "memory_maps_sr.png", "features_sr.png"):
        assert f"]({name})" in report
    saved = json.loads((tmp_path / "analysis.json").read_text())
    assert saved["num_images"] == 60 and saved["inputs"] == "images"
    assert saved["blocks"]["sr"]["usage"]["max_abs_row_sum_error"] < 1e-5
    assert list(saved["blocks"]["sr"]["usage"]["classes"]) == ["red", "blue"]
    assert saved["blocks"]["sr"]["features"]["classes"] == ["red", "blue"]
    assert saved["ablation"]["acc_sr"] == pytest.approx(result["accuracy"]["acc1_sr"])
    assert f"{saved['ablation']['acc_no_sr']:.2f} %" in report
    # the fixed-routing control: the block recalling its mean mix over this split for every image
    mean = {"sr": collect_memory_weights(trained, batches).weights["sr"].mean(0)}
    assert saved["ablation"]["acc_fixed_routing"] == pytest.approx(
        ablation(trained, batches, mean_weights=mean)["acc_fixed_routing"]
    )
    assert f"| SR, routing fixed to its mean weights | {saved['ablation']['acc_fixed_routing']:.2f} % |" in report
    assert f"The per-input routing adds {saved['ablation']['routing_pp']:+.2f} points" in report


def test_ablation_on_a_zoo_model_equals_the_model_built_without_sr():
    from srblock.models import create_model

    sr = create_model(
        "cifar_resnet18",
        num_classes=4,
        sr_stage=3,
        num_memories=3,
        hidden=4,
        width=0.125,
        sr_kwargs={"memory_init": "normal", "memory_std": 1.0},
    ).eval()
    plain = create_model("cifar_resnet18", num_classes=4, width=0.125).eval()
    plain.load_state_dict({k: v for k, v in sr.state_dict().items() if ".sr." not in k})
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 4, (8,), generator=g)) for _ in range(2)]
    result = ablation(sr, data)
    assert result["acc_no_sr"] == evaluate_accuracy(plain, data)["acc1"]
    with torch.no_grad():  # the memory is large enough to matter, so the comparison is not vacuous
        assert not torch.allclose(sr(data[0][0]), plain(data[0][0]))


def test_imagenet_class_names_come_from_torchvision_and_default_to_the_papers():
    from types import SimpleNamespace

    from srblock.analysis.report import PAPER_IMAGENET_CLASSES, _class_names

    folder = SimpleNamespace(classes=[f"n{i:08d}" for i in range(1000)])
    loader = SimpleNamespace(loader=SimpleNamespace(dataset=SimpleNamespace(dataset=folder)))
    names = _class_names("imagenet", loader)
    assert resolve_classes(list(PAPER_IMAGENET_CLASSES), names) == [972, 254, 497, 1, 404]
    assert _class_names("npz", SimpleNamespace(dataset=SimpleNamespace(classes=["a", "b"]))) == ["a", "b"]
    assert _class_names("cifar10", None)[0] == "airplane"


def test_analyze_model_handles_a_1d_block(tmp_path):
    from torch import nn

    from srblock.layers import SRBlock1d

    net = nn.Sequential(SRBlock1d(4, 6, num_memories=2, hidden=3, memory_init="normal"), nn.Flatten(), nn.Linear(24, 2))
    data = [(torch.randn(10, 4, 6), torch.arange(10) % 2)]
    result = analyze_model(net, data, tmp_path, per_class=3)
    assert result["blocks"]["0"]["num_memories"] == 2
    assert result["inputs"] == "series"
    report = write_report(result, tmp_path / "report.md").read_text()
    assert "Split: 10 series;" in report and "images" not in report
    for png in tmp_path.glob("*.png"):
        _assert_valid_png(png)
    assert len(list(tmp_path.glob("*.png"))) == 3


def test_plots_return_figures_and_leave_the_matplotlib_backend_alone(tmp_path):
    """In a fresh interpreter with a chosen backend: figures come back, PNGs are saved, pyplot is never imported."""
    import os
    import subprocess
    import sys

    code = """
import sys, matplotlib, torch
from matplotlib.figure import Figure
from srblock.analysis import plot_memory_maps, plot_usage
from srblock.analysis.report import analyze_model
from srblock.layers import SRBlock1d
net = torch.nn.Sequential(SRBlock1d(4, 6, num_memories=2, hidden=3), torch.nn.Flatten(), torch.nn.Linear(24, 2))
analyze_model(net, [(torch.randn(10, 4, 6), torch.arange(10) % 2)], sys.argv[1], per_class=3)
usage = {"overall": {"count": 4, "mean": [0.5, 0.5], "std": [0.1, 0.1]}, "classes": {}}
figures = [plot_usage(usage), plot_memory_maps(torch.randn(2, 3, 4, 4))]
print(all(isinstance(f, Figure) for f in figures), "matplotlib.pyplot" in sys.modules, matplotlib.rcParams["backend"])
"""
    env = {**os.environ, "MPLBACKEND": "svg"}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "svg"]
    assert len(list(tmp_path.glob("*.png"))) == 3
    for png in tmp_path.glob("*.png"):
        _assert_valid_png(png)


def test_a_1d_blocks_memories_are_drawn_as_curves_over_the_steps(tmp_path):
    from srblock.analysis import plot_memory_maps

    maps = torch.randn(4, 24)  # P x L: the channel-mean memories of a 1-D block
    fig = plot_memory_maps(maps, tmp_path / "maps.png")
    (ax,) = [a for a in fig.axes if a.get_visible()]
    assert [line.get_label() for line in ax.get_lines()][:4] == ["M1", "M2", "M3", "M4"]
    assert list(ax.get_lines()[2].get_ydata()) == pytest.approx(maps[2].tolist())
    _assert_valid_png(tmp_path / "maps.png")
    fig2d = plot_memory_maps(torch.randn(4, 5, 6))  # a 2-D block: a heat map per memory, and a colour bar
    assert sum(a.get_visible() for a in fig2d.axes) == 5
