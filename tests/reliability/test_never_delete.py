"""Class 2: srblock never deletes or overwrites what it did not write. ``export --overwrite`` replaces only an export;
a sweep, ``sweep --merge`` and ``analyze`` refuse a file of the user's under a name they write, before writing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import signal
import tarfile
from pathlib import Path

import pytest
import yaml

from srblock.analysis import report
from srblock.cli import main
from srblock.experiments import aggregate, load_sweep, run_sweep

from ..analysis.conftest import TinySRNet, fake_robustness_run, make_batches
from .conftest import error_line, snapshot
from .test_sweep_arms import FakeTrain, sweep_file  # noqa: F401  (sweep_file is a fixture)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_ownership_digest_reads_the_whole_file(tmp_path: Path) -> None:
    """``file_sha256`` (ownership records, archive checksums) reads in 1 MiB chunks: it equals the digest of all the
    bytes at once, and a byte past the first chunk changes it."""
    from srblock.io import file_sha256

    data = bytearray(random.Random(0).randbytes(3 * (1 << 20) + 5))
    path = tmp_path / "blob"
    path.write_bytes(data)
    before = file_sha256(path)
    assert before == sha256(path)
    data[(1 << 20) + 7] ^= 1
    path.write_bytes(data)
    assert file_sha256(path) == sha256(path) != before


def test_export_overwrite_never_deletes_a_run_folder(run_copy: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("safetensors")
    before = snapshot(run_copy)
    ckpt = str(run_copy / "checkpoint_best.pt")
    assert main(["export", "--checkpoint", ckpt, "--output", str(run_copy), "--overwrite", "-q"]) == 2
    line = error_line(capsys)
    assert "is not an srblock export" in line and "checkpoint_last.pt" in line
    assert snapshot(run_copy) == before
    export = tmp_path / "export"
    assert main(["export", "--checkpoint", ckpt, "--output", str(export), "-q"]) == 0
    assert main(["export", "--checkpoint", ckpt, "--output", str(export), "--overwrite", "-q"]) == 0  # ours: replaced
    assert sorted(p.name for p in export.iterdir()) == ["README.md", "config.json", "model.safetensors"]


def test_exported_files_get_the_mode_of_a_plain_open(run_copy: Path, tmp_path: Path) -> None:
    pytest.importorskip("safetensors")
    import os

    old = os.umask(0o002)
    try:
        assert (
            main(["export", "--checkpoint", str(run_copy / "checkpoint_best.pt"), "--output", str(tmp_path / "e")]) == 0
        )
    finally:
        os.umask(old)
    assert (tmp_path / "e").stat().st_mode & 0o777 == 0o775
    assert (tmp_path / "e" / "model.safetensors").stat().st_mode & 0o777 == 0o664


def test_a_sweep_never_replaces_a_table_of_the_users(sweep_file: Path, capsys) -> None:  # noqa: F811
    out = load_sweep(sweep_file).output
    out.mkdir(parents=True)
    (out / "table.md").write_text("my own notes\n")
    before = snapshot(out)
    train = FakeTrain()
    assert main(["sweep", "-c", str(sweep_file), "-q"]) == 2
    assert "table.md was not written by srblock" in error_line(capsys)
    assert snapshot(out) == before and train.calls == []
    (out / "table.md").unlink()
    run_sweep(load_sweep(sweep_file), run_fn=train, log=lambda _: None)  # its own table it replaces at will
    assert aggregate(out, log=lambda _: None)
    (out / "table.md").write_text((out / "table.md").read_text() + "a line of mine\n")  # edited: now the user's
    with pytest.raises(FileExistsError, match=r"table\.md was not written by srblock \(or changed since\)"):
        aggregate(out, log=lambda _: None)


def test_a_sweep_folder_of_an_older_srblock_is_still_ours(sweep_file: Path) -> None:  # noqa: F811
    out = load_sweep(sweep_file).output
    run_sweep(load_sweep(sweep_file), run_fn=FakeTrain(), log=lambda _: None)
    (out / ".srblock-owned.json").unlink()  # as written before srblock listed its files
    assert "| `sr` (screen) | 2 |" in aggregate(out, log=lambda _: None)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_as_a_table_replaces_the_old_one_leaves_it_ours(
    sweep_file: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    sig: signal.Signals,
    code: int,
) -> None:
    out = load_sweep(sweep_file).output
    run_sweep(load_sweep(sweep_file), run_fn=FakeTrain(), log=lambda _: None)
    summary = out / "sr" / "seed1" / "summary.json"
    summary.write_text(summary.read_text().replace('"test_acc1": 55.0', '"test_acc1": 57.0'))  # a new table
    table = (out / "table.md").read_text()
    replace = os.replace

    def replace_then_interrupt(src: str | Path, dst: str | Path) -> None:
        replace(src, dst)
        if Path(dst).name == "table.md":  # the signal lands between the new table and its line in the list
            signal.raise_signal(sig)

    monkeypatch.setattr(os, "replace", replace_then_interrupt)
    assert main(["sweep", "--report", str(out), "-q"]) == code
    monkeypatch.undo()
    assert (out / "table.md").read_text() != table
    assert json.loads((out / ".srblock-owned.json").read_text())["table.md"] == sha256(out / "table.md")
    assert main(["sweep", "--report", str(out), "-q"]) == 0  # not refused as someone else's table


def _archive(tmp_path: Path, files: dict[str, bytes]) -> Path:
    path = tmp_path / "runs.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_merge_never_replaces_a_different_sweep_definition(
    sweep_file: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
) -> None:
    run_sweep(load_sweep(sweep_file), run_fn=FakeTrain(), log=lambda _: None)
    monkeypatch.chdir(tmp_path)
    out = Path("out")
    other = yaml.safe_load((out / "sweep.yaml").read_text())
    other["metric"] = "test_acc5"  # the same sweep folder, defined otherwise elsewhere
    seed = out / "base" / "seed0"
    archive = _archive(
        tmp_path,
        {
            "out/sweep.yaml": yaml.safe_dump(other, sort_keys=False).encode(),
            "out/base/seed9/summary.json": (seed / "summary.json").read_bytes(),
        },
    )
    before = snapshot(out)
    assert main(["sweep", "--merge", str(archive), "-q"]) == 2
    assert "out/sweep.yaml" in error_line(capsys)
    assert snapshot(out) == before


def test_analyze_never_writes_over_a_report_of_the_users(run_copy: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "report.md").write_text("my report\n")
    argv = ["analyze", "--checkpoint", str(run_copy / "checkpoint_best.pt"), "--output", str(folder)]
    assert main([*argv, "--max-images", "8", "-q"]) == 2
    assert "report.md was not written by srblock" in error_line(capsys)
    assert (folder / "report.md").read_text() == "my report\n"


def test_an_analysis_interrupted_after_its_pictures_runs_again(tmp_path: Path, monkeypatch) -> None:
    model, batches = TinySRNet().eval(), make_batches()

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "ablation", interrupted)  # the ablation comes after every picture is written
    with pytest.raises(KeyboardInterrupt):
        report.analyze_model(model, batches, tmp_path, per_class=5)
    pictures = {"usage_sr.png", "memory_maps_sr.png", "features_sr.png"}
    assert {p.name for p in tmp_path.iterdir()} == pictures | {".srblock-owned.json"}
    monkeypatch.undo()
    result = report.analyze_model(model, batches, tmp_path, per_class=5)  # not refused as someone else's pictures
    assert "acc_no_sr" in result["ablation"]
    assert set(json.loads((tmp_path / ".srblock-owned.json").read_text())) == pictures | {"analysis.json", "report.md"}


def test_robustness_never_replaces_a_table_of_the_users(tmp_path: Path, capsys) -> None:
    for arm in ("base", "sr"):
        fake_robustness_run(tmp_path / arm / "seed0", 0, clean=90.0, mca=70.0)
    (tmp_path / "robustness.md").write_text("my notes\n")
    before = snapshot(tmp_path)
    assert main(["robustness", str(tmp_path), "-q"]) == 2
    assert "robustness.md was not written by srblock" in error_line(capsys)
    assert snapshot(tmp_path) == before
    (tmp_path / "robustness.md").unlink()
    assert main(["robustness", str(tmp_path), "-q"]) == 0
    assert main(["robustness", str(tmp_path), "--baseline", "sr", "-q"]) == 0  # its own table it replaces
    assert "`sr` (baseline)" in (tmp_path / "robustness.md").read_text()


def test_robustness_never_replaces_one_result_with_another(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from srblock.analysis import robustness

    def scored(checkpoint: Path, *, seed: int, max_images: int | None, **_: object) -> dict:
        return {"checkpoint": str(checkpoint), "seed": seed, "max_images": max_images, "test_corruption_acc1": 60.0}

    monkeypatch.setattr(robustness, "benchmark_checkpoint", scored)  # the 76 passes are not what is tested here
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint_best.pt").write_bytes(b"kept")
    older = {"seed": 1, "max_images": 8, "test_corruption_acc1": 50.0}
    (run / "robustness.json").write_text(json.dumps(older))  # an srblock before per-result files kept each here
    standard = robustness.robustness_run(run)
    assert json.loads((run / "robustness.json").read_text()) == standard and standard["seed"] == 0
    assert json.loads((run / "robustness-seed1-n8.json").read_text()) == older, "the older result keeps its own name"
    assert robustness.robustness_run(run, seed=1, max_images=8) == older  # read, not scored again
    robustness.robustness_run(run, max_images=500)
    robustness.robustness_run(run, seed=2)
    assert sorted(p.name for p in run.glob("robustness*.json")) == [
        "robustness-n500.json",
        "robustness-seed1-n8.json",
        "robustness-seed2.json",
        "robustness.json",
    ]
    assert json.loads((run / "robustness.json").read_text()) == standard


@pytest.mark.slow
def test_analyze_replaces_its_own_report(run_copy: Path, tmp_path: Path) -> None:
    argv = ["analyze", "--checkpoint", str(run_copy / "checkpoint_best.pt"), "--output", str(tmp_path / "a")]
    assert main([*argv, "--max-images", "8", "-q"]) == 0
    assert main([*argv, "--max-images", "8", "-q"]) == 0
    assert "report.md" in (tmp_path / "a" / ".srblock-owned.json").read_text()
