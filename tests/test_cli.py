"""The train/eval verbs: override syntax, a tiny run and its evaluation."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from srblock.cli import build_parser, main

RECIPE = """\
# a tiny test recipe
seed: 0
data: {{dataset: npz, root: {root}, val_fraction: 0.25, crop_padding: 1}}
model: {{name: cifar_resnet18, num_classes: 4, width: 0.0625, input_size: [3, 8, 8], sr_stage: 2, num_memories: 3,
         hidden: 4}}
optim: {{lr: 0.05, momentum: 0.9}}
schedule: {{milestones: [1]}}
train: {{epochs: 3, batch_size: 24, device: cpu}}
"""


def test_dotted_and_set_overrides_are_collected() -> None:
    args = build_parser().parse_args(
        [
            "train",
            "-c",
            "r.yaml",
            "--model.num_memories",
            "4",
            "--set",
            "data.root=/d",
            "--optim.lr=0.2",
            "--epochs",
            "3",
        ]
    )
    assert args.dotted_overrides == ["model.num_memories=4", "optim.lr=0.2"]
    assert args.overrides == ["data.root=/d"] and args.epochs == 3 and args.config == "r.yaml"


def test_unknown_plain_option_is_still_an_error() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "-c", "r.yaml", "--bogus", "3"])


def test_train_then_eval_with_and_without_sr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    for name, n in (("train", 48), ("test", 16)):
        y = np.arange(n) % 4
        np.savez(tmp_path / f"{name}.npz", x=rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8), y=y)
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(RECIPE.format(root=tmp_path))
    out = tmp_path / "run"
    assert main(["train", "-c", str(recipe), "--output", str(out), "--epochs", "1", "--model.num_memories", "2"]) == 0
    captured = capsys.readouterr()
    assert "epoch 1 (iteration" in captured.err, "progress goes through logging to stderr"
    printed = captured.out
    summary = json.loads(printed[printed.index("{") : printed.rindex("}") + 1])
    assert summary["epochs"] == 1.0 and "config" not in summary
    assert json.loads((out / "summary.json").read_text())["config"]["model"]["num_memories"] == 2

    assert main(["eval", "--checkpoint", str(out / "checkpoint_best.pt"), "--no-sr"]) == 0
    printed = capsys.readouterr().out
    result = json.loads(printed[printed.index("{") :])
    assert result["no_sr"] is True and result["count"] == 16 and 0 <= result["acc1"] <= 100

    assert main(["train", "-c", str(recipe), "--output", str(tmp_path / "quiet"), "--epochs", "1", "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and json.loads(captured.out[captured.out.index("{") : captured.out.rindex("}") + 1])


def test_every_verbs_help_renders_its_text_as_written():
    """argparse %-formats help strings but prints descriptions as they are: a '%%' meant as an escape shows up."""
    parser = build_parser()
    (verbs,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(verbs.choices) >= 10
    for name, sub in verbs.choices.items():
        text = sub.format_help()  # raises on a help string whose % is not escaped
        assert "%%" not in text, name
