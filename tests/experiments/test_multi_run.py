"""Many runs in one process (a sweep's sequential launcher, each local worker): every run trains as it would alone.

A sweep process shares the decoded dataset between its runs (:mod:`srblock.data.shared`) and puts torch's global
switches back after each run (:func:`~srblock.experiments.launchers.torch_settings_restored`); a run that fails or
diverges is recorded and changes no other run; a killed sweep resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from srblock.data import shared
from srblock.engine import load_config, train
from srblock.engine.checkpoint import load_checkpoint
from srblock.experiments import load_sweep, run_sweep
from srblock.experiments.launchers import LocalLauncher, torch_settings_restored
from srblock.experiments.sweep import _engine_train

from ..engine.conftest import write_npz

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = "cifar10/airbench_d2d_sr"  # whitening init from data, Lookahead, Dropout2d masks, an SR block, TTA


def _overrides(data: Path) -> list[str]:
    return [
        f"data.root={data}",
        "data.dataset=npz",
        "data.init_images=32",
        "model.num_classes=4",
        "model.width=0.125",
        "train.batch_size=16",
        "train.epochs=2",
        "train.eval_every=1",  # two checkpoints per run: a killed run has one to resume from
        "train.device=cpu",
        f"optim.lr={1.5 * 16 / 1024}",
    ]


def _sweep_file(tmp_path: Path, output: Path, seeds: list[int]) -> Path:
    data = tmp_path / "data"
    if not data.is_dir():
        write_npz(data, num_train=64, num_test=16, size=32)
    doc = {
        "name": "multi",
        "output": str(output),
        "seeds": seeds,
        "keep_checkpoints": True,  # the final weights are compared
        "overrides": _overrides(data),
        "arms": {"airbench": {"recipe": RECIPE}},
    }
    path = tmp_path / f"{output.name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoint_last.pt")["model"]


def _assert_same_run(a: Path, b: Path) -> None:
    """Bit for bit the same final weights (BatchNorm statistics included), metrics and summary numbers."""
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    sa, sb = (json.loads((r / "summary.json").read_text()) for r in (a, b))
    assert (sa["test_acc1"], sa["test"], sa["sr_dynamics"]) == (sb["test_acc1"], sb["test"], sb["sr_dynamics"])
    assert _history(a) == _history(b)


def _history(run: Path) -> list[dict]:
    """The run's metrics rows, without their clock."""
    return [
        {k: v for k, v in row.items() if k != "time_s"}
        for row in load_checkpoint(run / "checkpoint_last.pt")["history"]
    ]


# --------------------------------------------------------------------------------------------- shared datasets


def test_a_dataset_is_read_once_per_sharing_block_and_anew_when_its_files_change(tmp_path):
    reads = []

    def read(tag: str) -> list[str]:
        reads.append(tag)
        return [tag]

    assert shared.shared_or_read("k", lambda: read("a")) is not shared.shared_or_read("k", lambda: read("b"))
    assert reads == ["a", "b"]  # outside a block: every call reads
    (tmp_path / "train.npz").write_bytes(b"1")
    with shared.sharing_datasets():
        first = shared.shared_or_read(shared.file_signature(tmp_path), lambda: read("c"))
        with shared.sharing_datasets():  # nests
            assert shared.shared_or_read(shared.file_signature(tmp_path), lambda: read("d")) is first
        assert shared.shared_or_read(shared.file_signature(tmp_path), lambda: read("e")) is first
        (tmp_path / "train.npz").write_bytes(b"22")  # replaced: another size
        assert shared.shared_or_read(shared.file_signature(tmp_path), lambda: read("f")) == ["f"]
    assert reads == ["a", "b", "c", "f"]
    assert shared.shared_or_read(shared.file_signature(tmp_path), lambda: read("g")) == ["g"]  # the block let go


@pytest.mark.slow
def test_runs_in_one_sharing_block_read_the_npz_files_once(tmp_path, monkeypatch):
    from srblock.data import cifar

    calls = []
    real = cifar.load_npz_split
    monkeypatch.setattr(cifar, "load_npz_split", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    data = write_npz(tmp_path / "data", num_train=64, num_test=16, size=32)
    config = load_config(RECIPE, [*_overrides(data), "train.epochs=1"])
    with shared.sharing_datasets():
        for seed in (0, 1):
            train({**config, "seed": seed}, tmp_path / f"seed{seed}", quiet=True)
    assert [Path(p).name for p in calls] == ["train.npz", "test.npz"]


def test_torch_switches_a_run_sets_are_put_back():
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    with torch_settings_restored():
        torch.use_deterministic_algorithms(not before[0])
        torch.backends.cudnn.benchmark = not before[1]
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before


# ------------------------------------------------------------------------------------ a group of runs, one process


@pytest.fixture
def one_thread():
    """This process trains on one thread, as the run it is compared with (bitwise equality holds per thread count;
    `make test` sets OMP_NUM_THREADS, a bare `pytest` may not)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_a_run_trained_after_others_in_one_process_equals_the_run_trained_alone(tmp_path, one_thread):
    """Seeds 0, 1, 2 of one sweep in this process (shared data; seed 0 turns on deterministic algorithms) against
    seed 2 trained alone by `srblock train` in its own process: the same init, data order, augmentation, dropout
    masks, hence bit for bit the same final weights and metrics on the CPU."""
    sweep = load_sweep(_sweep_file(tmp_path, tmp_path / "group", seeds=[0, 1, 2]))
    run_sweep(sweep, run_fn=deterministic_on_seed0, log=lambda _: None)
    alone = tmp_path / "alone"
    sets = [a for o in [*_overrides(tmp_path / "data"), "seed=2"] for a in ("--set", o)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "srblock", "train", "-c", RECIPE, *sets, "--output", str(alone), "-q"]
    subprocess.run(cmd, check=True, env=env, cwd=tmp_path)
    _assert_same_run(tmp_path / "group" / "airbench" / "seed2", alone)


def deterministic_on_seed0(config: dict, output_dir: Path) -> dict:
    """The engine's run, with seed 0 under torch's deterministic algorithms (a process-wide switch)."""
    if config["seed"] == 0:
        config = {**config, "train": {**config["train"], "deterministic": True}}
    return _engine_train(config, output_dir)


def diverge_or_raise_on_seed1(config: dict, output_dir: Path) -> dict:
    """The engine's run; seed 1 diverges (a huge lr: NaN loss), seed 3 raises before it trains."""
    if config["seed"] == 3:
        raise RuntimeError("a broken run")
    if config["seed"] == 1:
        config = {**config, "optim": {**config["optim"], "lr": 1e30}}
    return _engine_train(config, output_dir)


@pytest.mark.slow
def test_a_failing_or_diverging_run_in_a_group_stops_and_changes_no_other(tmp_path):
    group = load_sweep(_sweep_file(tmp_path, tmp_path / "group", seeds=[0, 1, 2, 3]))
    run_sweep(group, run_fn=diverge_or_raise_on_seed1, keep_going=True, log=lambda _: None)
    failed = {s: json.loads((group.output / "airbench" / f"seed{s}" / "failed.json").read_text()) for s in (1, 3)}
    assert failed[1]["type"] == "NonFiniteLossError" and failed[3]["type"] == "RuntimeError"
    clean = load_sweep(_sweep_file(tmp_path, tmp_path / "clean", seeds=[0, 2]))
    run_sweep(clean, log=lambda _: None)
    for seed in (0, 2):
        _assert_same_run(group.output / "airbench" / f"seed{seed}", clean.output / "airbench" / f"seed{seed}")


def killed_after_a_period_of_seed1(config: dict, output_dir: Path) -> dict:
    """The engine's run; seed 1 trains one evaluation period (a checkpoint) and then the whole process is killed."""
    if config["seed"] != 1:
        return _engine_train(config, output_dir)
    train(config, output_dir, resume=True, stop_after=1, quiet=True)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def _sweep_then_die(path: str) -> None:
    run_sweep(load_sweep(path), run_fn=killed_after_a_period_of_seed1, log=lambda _: None)


@pytest.mark.slow
def test_a_killed_group_resumes_to_the_same_runs(tmp_path):
    """The group process dies in seed 1's second period (its lock left behind); the same sweep again skips seed 0,
    resumes seed 1 from its checkpoint_last.pt and trains seed 2: all bit for bit as an uninterrupted sweep."""
    path = _sweep_file(tmp_path, tmp_path / "killed", seeds=[0, 1, 2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "src")])}
    script = f"from tests.experiments.test_multi_run import _sweep_then_die; _sweep_then_die({str(path)!r})"
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO_ROOT)
    assert done.returncode == -signal.SIGKILL
    runs = tmp_path / "killed" / "airbench"
    assert (runs / "seed0" / "summary.json").is_file()
    assert (runs / "seed1" / "checkpoint_last.pt").is_file() and not (runs / "seed1" / "summary.json").exists()
    assert (runs / "seed1" / ".sweep.lock").is_file() and not (runs / "seed2").exists()
    seed0 = (runs / "seed0" / "summary.json").stat().st_mtime_ns

    started_from_checkpoint = {}

    def recording(config: dict, output_dir: Path) -> dict:
        started_from_checkpoint[config["seed"]] = (output_dir / "checkpoint_last.pt").is_file()
        return _engine_train(config, output_dir)

    executed = run_sweep(load_sweep(path), run_fn=recording, log=lambda _: None)
    assert [r.seed for r in executed] == [1, 2] and started_from_checkpoint == {1: True, 2: False}
    assert (runs / "seed0" / "summary.json").stat().st_mtime_ns == seed0  # not trained again
    reference = load_sweep(_sweep_file(tmp_path, tmp_path / "reference", seeds=[0, 1, 2]))
    run_sweep(reference, log=lambda _: None)
    for seed in (0, 1, 2):
        _assert_same_run(runs / f"seed{seed}", reference.output / "airbench" / f"seed{seed}")


def test_a_sweep_reads_each_runs_config_once_however_often_it_refreshes_its_tables(tmp_path, monkeypatch):
    import srblock.engine

    calls = []
    real = srblock.engine.load_config
    monkeypatch.setattr(srblock.engine, "load_config", lambda *a, **k: calls.append(a) or real(*a, **k))
    sweep = load_sweep(_sweep_file(tmp_path, tmp_path / "group", seeds=[0, 1, 2]))
    run_sweep(sweep, run_fn=lambda config, out: {"test_acc1": float(config["seed"])}, log=lambda _: None)
    assert sorted(overrides[-1] for _, overrides in calls) == ["seed=0", "seed=1", "seed=2"]
    assert len(calls) == 3  # the plan, each run and the 4 table refreshes share them


def noting_held_data(config: dict, output_dir: Path) -> dict:
    """The engine's run, after noting its process and whether that process holds a dataset read by an earlier run."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "held.json").write_text(json.dumps([os.getpid(), shared._last is not None]))
    return _engine_train(config, output_dir)


@pytest.mark.slow
def test_a_local_worker_reads_the_dataset_once_for_all_its_runs(tmp_path, monkeypatch, one_thread):
    monkeypatch.syspath_prepend(str(REPO_ROOT))  # the spawned worker unpickles noting_held_data by module name
    sweep = load_sweep(_sweep_file(tmp_path, tmp_path / "worker", seeds=[0, 1]))
    run_sweep(sweep, run_fn=noting_held_data, launcher=LocalLauncher(1, threads=1, gpus=[]), log=lambda _: None)
    held = [json.loads((sweep.output / "airbench" / f"seed{s}" / "held.json").read_text()) for s in (0, 1)]
    assert held[0][0] == held[1][0] != os.getpid()  # one worker process trained both
    assert [h[1] for h in held] == [False, True]
    clean = load_sweep(_sweep_file(tmp_path, tmp_path / "clean", seeds=[1]))
    run_sweep(clean, log=lambda _: None)
    _assert_same_run(sweep.output / "airbench" / "seed1", clean.output / "airbench" / "seed1")
