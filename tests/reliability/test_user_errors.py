"""Bad input arrives as one line naming what was expected and what came (exit 2), before anything is built;
``--traceback`` shows the full trace; values are parsed the way a user writes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from srblock.cli import main
from srblock.engine import load_config, resolve_config

from .conftest import error_line, tiny_config


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--model.widht", "0.5"], "unknown key model.widht; did you mean 'width'?"),
        (["--model.num_memories", "four"], "model.num_memories must be int, got 'four'"),
        (["--model.sr.size_polcy", "strict"], "unknown key model.sr.size_polcy; did you mean 'size_policy'?"),
        (["--model.name", "cifar_resnet81"], "unknown model 'cifar_resnet81'; did you mean 'cifar_resnet18'"),
        (["--data.val_fractoin", "0.2"], "unknown key data.val_fractoin; did you mean 'val_fraction'?"),
        (["--data.download", "maybe"], "data.download must be true or false, got 'maybe'"),
        (["--optim.lr", "-1"], "optim.lr must be a positive number, got -1"),
        (["--train.batch_size", "2.5"], "train.batch_size must be an int, got 2.5"),
        (["--train.epoch", "3"], "unknown key train.epoch; did you mean 'epochs'?"),
    ],
)
def test_bad_recipe_values_are_one_line_errors(recipe_file: Path, tmp_path: Path, options, message, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "-c", str(recipe_file), "--output", str(out), *options]) == 2
    assert message in error_line(capsys)
    assert not out.exists()  # refused before anything was built or written


def test_missing_data_and_recipe_are_one_line_errors(recipe_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "-c", str(recipe_file), "--output", str(out), "--data-dir", str(tmp_path / "nope")]) == 2
    assert "nope" in error_line(capsys)
    assert main(["train", "-c", "cifar10/r18_d2d_sx"]) == 2
    assert "did you mean 'cifar10/r18_d2d_sr'" in error_line(capsys)
    assert main(["train", "--output", str(out), "--resume"]) == 2
    assert "holds no config.yaml" in error_line(capsys)


def test_traceback_flag_and_variable_show_the_trace(recipe_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = ["-c", str(recipe_file), "--model.widht", "0.5"]
    with pytest.raises(ValueError, match="widht"):
        main(["--traceback", "train", *bad])
    with pytest.raises(ValueError, match="widht"):
        main(["train", *bad, "--traceback"])
    monkeypatch.setenv("SRBLOCK_TRACEBACK", "1")
    with pytest.raises(ValueError, match="widht"):
        main(["train", *bad])


def test_an_unexpected_error_says_how_to_report_it(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import srblock.analysis.overhead as overhead

    def broken(*args, **kwargs):
        raise KeyError("oops")

    monkeypatch.setattr(overhead, "overhead_report", broken)
    args = ["overhead", "--model", "cifar_resnet18", "--sr-stage", "3", "--num-memories", "2", "--hidden", "4"]
    assert main(args) == 1
    assert "KeyError: 'oops' (unexpected: rerun with --traceback and report it)" in error_line(capsys)


def test_values_are_parsed_as_a_user_writes_them(tiny_data: Path) -> None:
    config = resolve_config(tiny_config(tiny_data), ["optim.lr=1e-3", "optim.weight_decay=5E-4", "train.epochs=3"])
    assert config["optim"]["lr"] == 0.001 and config["optim"]["weight_decay"] == 0.0005
    assert isinstance(config["train"]["epochs"], int)


def test_recipe_file_values_are_parsed_alike(tmp_path: Path, tiny_data: Path) -> None:
    import yaml

    text = yaml.safe_dump(tiny_config(tiny_data)).replace("lr: 0.05", "lr: 5e-2")
    (tmp_path / "r.yaml").write_text(text)
    assert load_config(tmp_path / "r.yaml")["optim"]["lr"] == 0.05


def test_analysis_options_are_checked_before_anything_is_written(finished_run, tmp_path: Path, capsys) -> None:
    checkpoint = finished_run[0] / "checkpoint_best.pt"
    for option, value in (("--per-class", "0"), ("--max-images", "-5")):
        out = tmp_path / option.strip("-")
        assert main(["analyze", "--checkpoint", str(checkpoint), option, value, "--output", str(out)]) == 2
        assert f"{option.strip('-').replace('-', '_')} must be a positive int" in error_line(capsys)
        assert not out.exists()
