"""Class 5 (inputs are bounded, keys unique: one YAML loader for recipes and sweep files), class 6 (names that
become paths are checked) and class 7 (damaged inputs are named, never "unexpected", never an unsafe load)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from srblock.cli import main
from srblock.engine import load_config

from .conftest import error_line, tiny_config

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
)  # 10**9 values once expanded, in 400 bytes


@pytest.mark.parametrize("verb", ["train", "sweep"])
def test_nested_aliases_are_refused_in_one_short_line(tmp_path: Path, verb: str, capsys) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(LAUGHS)
    assert main([verb, "-c", str(path), "--output", str(tmp_path / "out"), "-q"][: 3 if verb == "sweep" else 5]) == 2
    line = error_line(capsys)
    assert "expands to more than 10,000 values through aliases" in line and str(path) in line
    assert len(line) < 400 and not (tmp_path / "out").exists()


def test_merge_keys_are_not_duplicates(tmp_path: Path, tiny_data: Path) -> None:
    config = tiny_config(tiny_data)
    del config["schedule"]
    path = tmp_path / "r.yaml"  # a merged key given again after '<<' overrides it, as YAML says
    path.write_text(yaml.safe_dump(config) + "schedule:\n  <<: {gamma: 0.1, milestones: [1]}\n  gamma: 0.2\n")
    schedule = load_config(path)["schedule"]
    assert schedule["gamma"] == 0.2 and schedule["milestones"] == [1]


@pytest.mark.parametrize("kind", ["recipe", "sweep"])
def test_a_key_written_twice_is_refused(tmp_path: Path, recipe_file: Path, kind: str, capsys) -> None:
    if kind == "recipe":
        text = recipe_file.read_text().replace("optim:\n", "optim:\n  lr: 100.0\n", 1)  # lr twice in optim
        argv = ["train", "-c", str(tmp_path / "dup.yaml"), "--output", str(tmp_path / "out"), "-q"]
    else:
        text = f"output: {tmp_path / 'out'}\nseeds: [0]\narms:\n  a: {{recipe: {recipe_file}}}\nseeds: [0, 1, 2]\n"
        argv = ["sweep", "-c", str(tmp_path / "dup.yaml"), "--dry-run", "-q"]
    (tmp_path / "dup.yaml").write_text(text)
    assert main(argv) == 2
    line = error_line(capsys)
    assert "duplicate key" in line and "write each once" in line and str(tmp_path / "dup.yaml") in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["..", "../escape", "/tmp/abs", "a/b", ".hidden", ""])
def test_an_arm_name_that_is_not_a_folder_name_is_refused(tmp_path: Path, recipe_file: Path, name: str, capsys) -> None:
    doc = {"output": str(tmp_path / "sweep" / "out"), "seeds": [0], "arms": {name: {"recipe": str(recipe_file)}}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["sweep", "-c", str(tmp_path / "s.yaml"), "-q"]) == 2
    assert f"arm name {name!r} must be a plain folder name" in error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfeo\x00p\x00", "is not UTF-8 text"),
        (b"arms: [unclosed\n", "is not valid YAML"),
        (b"- just\n- a list\n", "a sweep file is a YAML mapping"),
    ],
)
def test_a_damaged_sweep_file_or_recipe_is_named(tmp_path: Path, content: bytes, message: str, capsys) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    assert main(["sweep", "-c", str(path), "--dry-run", "-q"]) == 2
    line = error_line(capsys)
    assert message in line and str(path) in line and "unexpected" not in line
    if "UTF-8" in message:
        assert main(["train", "-c", str(path), "--output", str(tmp_path / "o"), "-q"]) == 2
        assert message in error_line(capsys)


@pytest.mark.parametrize("damage", ["truncated", "random", "objects"])
def test_a_damaged_npz_is_named_without_advising_an_unsafe_load(
    tmp_path: Path, tiny_data: Path, damage: str, capsys
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "test.npz").write_bytes((tiny_data / "test.npz").read_bytes())
    good = (tiny_data / "train.npz").read_bytes()
    if damage == "truncated":
        (root / "train.npz").write_bytes(good[: len(good) // 2])
    elif damage == "random":
        (root / "train.npz").write_bytes(os.urandom(4096))
    else:
        np.savez(root / "train.npz", x=np.array([{"a": 1}], dtype=object), y=np.zeros(1, int))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_config(root)))
    assert main(["train", "-c", str(recipe), "--output", str(tmp_path / "out"), "-q"]) == 2
    line = error_line(capsys)
    assert str(root / "train.npz") in line and "unexpected" not in line
    assert "allow_pickle" not in line and "weights_only" not in line
    assert not (tmp_path / "out").exists()


def test_an_error_about_a_huge_value_stays_one_short_line(recipe_file: Path, tmp_path: Path, capsys) -> None:
    config = yaml.safe_load(recipe_file.read_text())
    config["optim"]["lr"] = list(range(5000))
    path = tmp_path / "huge.yaml"
    path.write_text(yaml.safe_dump(config, default_flow_style=True))
    assert main(["train", "-c", str(path), "--output", str(tmp_path / "out"), "-q"]) == 2
    line = error_line(capsys)
    assert "optim.lr must be" in line and "characters left out" in line and len(line) < 2100
