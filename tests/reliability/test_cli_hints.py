"""Class 10: hints that work when pasted, no abbreviated options, a KEY=VALUE hint for ``--set KEY VALUE``."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

import srblock.engine
from srblock.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epoch", "3"], "unrecognized arguments: --epoch 3"),  # not taken for --epochs
        (["--out", "x"], "unrecognized arguments: --out x"),
        (["--set", "optim.lr", "0.01"], "--set takes one KEY=VALUE argument, got 'optim.lr': write --set optim.lr="),
    ],
)
def test_no_abbreviations_and_a_key_value_hint(recipe_file: Path, argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["train", "-c", str(recipe_file), *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("saved", [True, False])
def test_the_resume_hint_works_when_pasted(
    recipe_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, saved: bool, capsys
) -> None:
    out = tmp_path / "my runs" / "it's here"

    def interrupted(config, output_dir, **kwargs):
        if saved:
            Path(output_dir).mkdir(parents=True)
            (Path(output_dir) / "checkpoint_last.pt").write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr(srblock.engine, "train", interrupted, raising=False)
    assert main(["train", "-c", str(recipe_file), "--output", str(out)]) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    if saved:
        command = shlex.split(err.partition("continue with: ")[2])
        assert command == ["srblock", "train", "--output", str(out), "--resume"]
    else:  # no folder to resume: the hint says so instead of naming one that does not exist
        assert "nothing was saved yet: run the same command again" in err and not out.exists()


def _folder_name(item) -> str:
    return Path(item.output_dir).name


@pytest.mark.slow
def test_a_local_launcher_of_any_size_starts_no_more_workers_than_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--launcher local:N`` for any N ends: a worker per run at most (N = 10**9 once built a list of a billion
    device slots before starting anything)."""
    from types import SimpleNamespace

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))  # spawned workers import this module

    from srblock.experiments.launchers import make_launcher

    launcher = make_launcher("local:1000000000")
    items = [SimpleNamespace(output_dir=tmp_path / f"run{i}") for i in range(2)]
    done = sorted(future.result() for _, future in launcher.launch(_folder_name, items))
    assert done == ["run0", "run1"]
