"""benchmarks/gpu_sweep.sh: its packing of the runs a GPU window finished, the merge back home, a CPU smoke run."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from .conftest import write_jpeg_tar

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "benchmarks" / "gpu_sweep.sh"
SWEEP = Path("results/cifar10-gpu-fast/fake")


def _script(cwd: Path, *stages: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """Run the script in ``cwd`` (a stand-in for the repository root) with this interpreter as ``python3``."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    full_env = {**os.environ, "PATH": path, "OUT": str(cwd / "out"), **env}
    return subprocess.run(
        ["bash", str(SCRIPT), *stages], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def _merge(home: Path, archive: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> str:
    """``srblock sweep --merge ARCHIVE`` run in ``home``; returns what it printed."""
    from srblock.cli import main

    monkeypatch.chdir(home)
    assert main(["sweep", "--merge", str(archive)]) == 0
    return capsys.readouterr().out


def _fake_run(root: Path, arm: str, seed: int, acc: float, *, finished: bool = True) -> Path:
    run = root / SWEEP / arm / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"seed": seed}))
    (run / "metrics.csv").write_text(f"epoch,test_acc1\n1,{acc}\n")
    (run / "checkpoint_last.pt").write_bytes(b"weights")
    if finished:
        summary = {"test_acc1": acc, "test_acc1_last": acc - 0.5, "seed": seed, "wall_time_s": 9.5, "gpu": "fake"}
        summary["torch_version"] = "x"
        (run / "summary.json").write_text(json.dumps(summary))
    return run


def _sweep_copy(root: Path) -> None:
    doc = {"name": "fake", "output": str(SWEEP), "metric": "test_acc1", "baseline": "a", "seeds": [0, 1, 2]}
    doc["arms"] = {"a": {"recipe": "r.yaml", "overrides": []}, "b": {"recipe": "r.yaml", "overrides": []}}
    doc["trends"] = {"ab": {"a": 0, "b": 1}}
    doc["report_metrics"] = ["test_acc1_last"]
    (root / SWEEP).mkdir(parents=True, exist_ok=True)
    (root / SWEEP / "sweep.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def test_pack_takes_only_the_runs_finished_in_this_window_and_merge_adds_them_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    device, home = tmp_path / "device", tmp_path / "home"
    for root in (device, home):  # both start from the committed state: seed 0 of both arms
        _sweep_copy(root)
        for arm, acc in (("a", 94.0), ("b", 94.2)):
            _fake_run(root, arm, 0, acc).joinpath("checkpoint_last.pt").unlink()
    stamp = device / "stamp"
    stamp.touch()
    old = time.time() - 60
    for arm in ("a", "b"):
        summary = device / SWEEP / arm / "seed0" / "summary.json"
        os.utime(summary, (old, old))
    os.utime(stamp, (old + 30, old + 30))
    _fake_run(device, "a", 1, 94.1)  # finished in this window
    _fake_run(device, "b", 1, 94.4)
    _fake_run(device, "a", 2, 0.0, finished=False)  # cut off: never packed

    result = _script(device, "pack", STAMP=str(stamp))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pack: 2 new runs" in result.stdout
    with tarfile.open(device / "out" / "gpu_runs.tar.gz") as tar:
        names = sorted(tar.getnames())
    assert names == sorted(
        [str(SWEEP / "sweep.yaml")]
        + [str(SWEEP / a / "seed1" / f) for a in "ab" for f in ("config.yaml", "metrics.csv", "summary.json")]
    )
    assert (device / "out" / "gpu_sweep.log").read_text().count("pack: 2 new runs") == 1

    archive = device / "out" / "gpu_runs.tar.gz"
    assert "merged 2 new run(s)" in _merge(home, archive, monkeypatch, capsys)
    for arm in "ab":
        here, there = (root / SWEEP / arm / "seed1" / "summary.json" for root in (home, device))
        assert here.read_bytes() == there.read_bytes()
    table = (home / SWEEP / "table.md").read_text()
    assert "| `b` (screen) | 2 |" in table and "4 finished runs" in table
    trend = (home / SWEEP / "trend-ab.md").read_text()  # the sweep file's trend, refreshed with the table
    assert "over the 2 seed(s) that ran every level and its control: +0.250" in trend
    last = (home / SWEEP / "table-test_acc1_last.md").read_text()  # the sweep's report metric, refreshed too
    assert "| `b` (screen) | 2 | 93.80 ± 0.14 |" in last and "4 finished runs" in last
    assert "2 seed(s) that ran every level" in (home / SWEEP / "trend-ab-test_acc1_last.md").read_text()
    assert "merged 0 new run(s)" in _merge(home, archive, monkeypatch, capsys)  # twice changes nothing

    other = home / SWEEP / "b" / "seed1" / "summary.json"
    other.write_text(json.dumps({"test_acc1": 10.0, "seed": 1}))
    from srblock.cli import main

    assert main(["sweep", "--merge", str(archive)]) == 2  # a user error: one line, nothing merged
    err = capsys.readouterr().err
    assert "1 file(s) differ" in err and "nothing was merged" in err
    assert json.loads(other.read_text())["test_acc1"] == 10.0


def test_the_latency_stage_times_the_arms_once_and_pack_and_merge_bring_latency_json_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    device, home = tmp_path / "device", tmp_path / "home"
    sweep = {"name": "blocks", "output": "results/cifar10-gpu-fast/blocks", "baseline": "none", "seeds": [0]}
    sweep["arms"] = {"none": {"recipe": "cifar10/r18_d2d"}, "se": {"recipe": "cifar10/r18_d2d", "overrides": {}}}
    sweep["arms"]["se"]["overrides"] = {"model.attention": "se"}
    device.mkdir()
    (device / "blocks.yaml").write_text(yaml.safe_dump(sweep))
    tiny = "--set model.width=0.0625 --set train.batch_size=4"
    stamp = device / "stamp"
    stamp.touch()
    old = time.time() - 60
    os.utime(stamp, (old, old))
    result = _script(device, "latency", "pack", LATENCY_SWEEPS="blocks.yaml", SWEEP_SET=tiny, STAMP=str(stamp))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = device / "results/cifar10-gpu-fast/blocks"
    timed = json.loads((output / "latency.json").read_text())
    assert set(timed["arms"]) == {"none", "se"} and timed["batch"] == 4 and timed["arms"]["none"]["train"] == 1.0
    with tarfile.open(device / "out" / "gpu_runs.tar.gz") as tar:
        assert sorted(tar.getnames()) == [f"{sweep['output']}/latency.json", f"{sweep['output']}/sweep.yaml"]
    again = _script(device, "latency", LATENCY_SWEEPS="blocks.yaml", SWEEP_SET=tiny)
    assert "latency.json exists (move it away to measure again)" in again.stdout
    assert json.loads((output / "latency.json").read_text()) == timed  # measured once

    home.mkdir()
    _merge(home, device / "out" / "gpu_runs.tar.gz", monkeypatch, capsys)
    here = home / "results/cifar10-gpu-fast/blocks"
    assert (here / "latency.json").read_bytes() == (output / "latency.json").read_bytes()
    assert "latency.json" in (here / ".srblock-owned.json").read_text()
    se_row = next(line for line in (here / "table.md").read_text().splitlines() if line.startswith("| `se`"))
    assert se_row.endswith(f"| {timed['arms']['se']['train']:.2f} | {timed['arms']['se']['eval']:.2f} |")


@pytest.mark.slow
def test_cpu_smoke_run_of_the_whole_script(tmp_path: Path) -> None:
    """The default stages: data (a tiny JPEG archive) -> two sweep phases, two runs at a time under a time budget ->
    pack -> merge; the GPU checks and benchmarks run only when named, so the window is the sweeps'."""
    device, home = tmp_path / "device", tmp_path / "home"
    archive = write_jpeg_tar(device / ".device" / "cifar10" / "cifar10-jpeg.tar.xz", per_class=3)
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    archive.with_name(archive.name + ".sha256").write_text(sha)
    sweep = {
        "name": "smoke",
        "output": "results/cifar10-gpu-fast/smoke",
        "baseline": "base",
        "seeds": [0, 1],
        "arms": {
            "base": {"recipe": "cifar10/r18_d2d"},
            "sr": {"recipe": "cifar10/r18_d2d_sr"},
            "sr2": {"recipe": "cifar10/r18_d2d_sr"},
        },
    }
    (device / "smoke.yaml").write_text(yaml.safe_dump(sweep))
    tiny = "--set train.epochs=1 --set model.width=0.0625 --set train.batch_size=16 --set train.device=cpu"
    result = _script(
        device,
        timeout=400,
        TIME_BUDGET="240",
        WORKERS="2",
        OMP_NUM_THREADS="1",
        PHASES="smoke.yaml@base,sr:15 smoke.yaml:15",
        SWEEP_SET=tiny,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "cifar10 in .device/cifar10: 30 train and 30 test images" in result.stdout
    assert "== check" not in result.stdout and "== bench" not in result.stdout
    assert "(local launcher, 2 at a time)" in result.stdout
    assert {p.name for p in (device / ".device" / "cifar10").iterdir()} >= {"train.npz", "test.npz"}
    with tarfile.open(device / "out" / "gpu_runs.tar.gz") as tar:
        packed = {Path(n).parent.relative_to("results/cifar10-gpu-fast/smoke").as_posix() for n in tar.getnames()}
    done = {
        p.parent.relative_to(device / "results/cifar10-gpu-fast/smoke").as_posix()
        for p in device.glob("results/cifar10-gpu-fast/smoke/*/*/summary.json")
    }
    assert packed == done | {"."} and {"base/seed0", "sr/seed0"} <= done  # the pair phase ran first
    summary = json.loads((device / "results/cifar10-gpu-fast/smoke/sr/seed0/summary.json").read_text())
    assert summary["gpu"] is None and summary["torch_version"] and summary["wall_time_s"] > 0
    from srblock.experiments import merge_runs

    merge_runs(device / "out" / "gpu_runs.tar.gz", home, log=lambda _: None)
    assert (home / "results/cifar10-gpu-fast/smoke/table.md").is_file()


def _default_phases() -> list[str]:
    match = re.search(r'^PHASES="\$\{PHASES:-([^}]*)\}"$', SCRIPT.read_text(), re.MULTILINE)
    assert match, "gpu_sweep.sh sets a default PHASES"
    return match.group(1).split()


def test_default_phases_are_issue_21s_questions_in_priority_order() -> None:
    from srblock.experiments import load_sweep

    phases = _default_phases()
    sweeps = [p.rpartition(":")[0].partition("@")[0] for p in phases]
    assert sweeps == [
        "cifar10_gpu_fast_airbench_plain",
        "cifar10_gpu_fast_r18",
        "cifar10_gpu_fast_airbench_placement",
        "cifar10_gpu_fast_airbench_capacity",
        "cifar10_gpu_fast_airbench_robustness",
        "cifar10_gpu_fast_airbench_regularizers",
        "cifar10_gpu_fast_airbench_blocks",
    ]
    for phase in phases:
        spec, _, seconds = phase.rpartition(":")
        sweep, _, arms = spec.partition("@")
        names = {arm.name for arm in load_sweep(sweep).arms}
        assert int(seconds) > 0 and set(filter(None, arms.split(","))) <= names, phase
        assert str(load_sweep(sweep).output).startswith("results/cifar10-gpu-fast/"), "pack looks there"


@pytest.mark.slow
def test_default_phases_in_a_short_cpu_window(tmp_path: Path) -> None:
    """The real sweep files of the default phases, shrunk to CPU size, in a two-minute window: the first phase's pair
    runs first, every later phase is started or reported as out of time, and what finished is packed. (The phases' run
    estimates are GPU seconds; here the first run of an arm starts whenever a second is left, the next ones when the
    first's length fits. One minute is enough on an idle machine; checking the 192 configs of the first phase takes
    ~30 s on two loaded cores.)"""
    device = tmp_path / "device"
    archive = write_jpeg_tar(device / ".device" / "cifar10" / "cifar10-jpeg.tar.xz", per_class=3)
    archive.with_name(archive.name + ".sha256").write_text(hashlib.sha256(archive.read_bytes()).hexdigest())
    tiny = (
        "--set train.epochs=1 --set model.width=0.0625 --set train.batch_size=16 --set train.eval_batch_size=32 "
        "--set train.device=cpu --set data.init_images=16"
    )
    result = _script(
        device,
        "data",
        "sweep",
        "pack",
        timeout=200,
        TIME_BUDGET="120",
        WORKERS="2",
        OMP_NUM_THREADS="1",
        SWEEP_SET=tiny,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    log = result.stdout
    order = [log.index(f"== sweep {phase.rpartition(':')[0]}") for phase in _default_phases()]
    assert order == sorted(order), "phases in priority order"
    done = {
        p.parent.relative_to(device / "results/cifar10-gpu-fast").as_posix()
        for p in device.glob("results/cifar10-gpu-fast/*/*/*/summary.json")
    }
    assert {"airbench-plain/airbench/seed0", "airbench-plain/airbench-sr/seed0"} <= done, log[-3000:]
    with tarfile.open(device / "out" / "gpu_runs.tar.gz") as tar:
        packed = {Path(n).parent.relative_to("results/cifar10-gpu-fast").as_posix() for n in tar.getnames()}
    assert done <= packed
