"""``srblock demo``: the whole pipeline in fast mode, and an output folder policy that never loses anything."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from srblock.cli import main
from srblock.demo import demo_output_dir


def test_demo_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--fast", "--output", str(out)]) == 0
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    progress = [line for line in printed.err.splitlines() if line.startswith("[")]  # on stderr, before each stage
    assert progress[0] == f"[1/3] training baseline (digits/r18_d2d, 1 epochs) into {out / 'baseline'} ..."
    assert progress[-1] == f"[3/3] analysing the SR model on the test split into {out / 'analysis'} ..."
    header = lines.index("srblock demo: scikit-learn digits (16x16), ResNet18 x0.25 + Dropout2d, 1 epochs, seed 0")
    assert lines[header + 1].startswith("  baseline                 test acc ")
    assert lines[header + 2].startswith("  + SR (M=3, P=10, U=8)    test acc ")
    assert lines[header + 2].endswith("params 711,978 (+10,512 = +1.50 %)")
    assert lines[header + 3].startswith("  SR model, block removed  test acc ")
    assert lines[header + 4].startswith("  test set: 64 images, so one image is 1.56 pp; one seed per arm")
    assert lines[header + 6] == f"  runs and checkpoints: {out / 'baseline'}, {out / 'sr'}"
    numbers = json.loads((out / "demo.json").read_text())  # strict JSON: no bare NaN
    assert numbers["sr_params"] == numbers["params_sr"] - numbers["params_baseline"] == 10_512
    assert len(numbers["memory_weights_mean"]) == 10
    for row in numbers["memory_weights_mean"]:  # classes absent from the 64-image fast test subset are null
        assert all(w is None for w in row) or math.isclose(sum(row), 1.0, rel_tol=1e-5)
    assert (out / "memory_weights.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "sr" / "summary.json").is_file()
    assert (out / "analysis" / "report.md").read_text().startswith("# SR analysis: cifar_resnet18 on digits (")
    assert (
        numbers["sr_removed_test_acc1"]
        == json.loads((out / "analysis" / "analysis.json").read_text())["ablation"]["acc_no_sr"]
    )


def test_explicit_output_holding_files_is_refused_untouched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    previous = tmp_path / "demo"
    (previous / "sr").mkdir(parents=True)
    (previous / "sr" / "config.yaml").write_text("a previous demo's run\n")
    assert main(["demo", "--fast", "--output", str(previous)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"srblock: error: demo output {previous} already holds files (sr/)") and "never" in error
    assert (previous / "sr" / "config.yaml").read_text() == "a previous demo's run\n"
    assert [p.name for p in previous.iterdir()] == ["sr"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        demo_output_dir(tmp_path / "file")


def test_default_output_is_the_next_free_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert demo_output_dir() == Path("runs/demo")
    Path("runs/demo").mkdir(parents=True)  # an empty folder is free
    assert demo_output_dir() == Path("runs/demo")
    (tmp_path / "runs/demo/demo.json").write_text("{}")
    (tmp_path / "runs/demo-2").mkdir()
    (tmp_path / "runs/demo-2/x").write_text("")
    assert demo_output_dir() == Path("runs/demo-3")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert demo_output_dir(empty) == empty


def test_missing_extras_are_named_once_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    import srblock.demo

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in ("sklearn", "scipy") else find_spec(name, *a)
    )
    monkeypatch.setattr(srblock.demo, "train", lambda *a, **k: pytest.fail("trained before checking the extras"))
    out = tmp_path / "demo"
    assert main(["demo", "--fast", "--output", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == "srblock: error: the demo needs scikit-learn and scipy, not installed: pip install 'srblock[demo]'"
    assert not out.exists()
