"""Launchers: local worker processes and submitit's local executor give the sequential sweep's table."""

from __future__ import annotations

import csv
import functools
import json
import logging
import os
from pathlib import Path

import pytest
import yaml

from srblock.experiments import expand_grid, load_sweep, run_sweep, sweep_command
from srblock.experiments.launchers import (
    LocalLauncher,
    SlurmLauncher,
    make_launcher,
    parse_launcher_options,
    run_in_worker,
)
from srblock.experiments.sweep import execute_run

from .conftest import write_fake_recipe, write_two_arm_sweep
from .test_sweep import METRIC, _fake_load

REPO_ROOT = Path(__file__).resolve().parents[2]


def env_recording_train(config, output_dir: Path) -> dict:
    """Like test_sweep's FakeTrain, and notes which process ran it with what devices/threads; summary.json is
    written atomically, as the engine writes it (the sweep reads finished runs while others are being written)."""
    p = config["model"].get("num_memories", 0) if config["model"].get("sr_stage") else 0
    summary = {
        "test_acc1": METRIC[(p, config["seed"])],
        "params": 1000 + 10 * p,
        "sr_params": 10 * p,
        "wall_time_s": 1.5,
        "seed": config["seed"],
        "config": config,
        "worker": {
            "pid": os.getpid(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        },
    }
    tmp = output_dir / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary))
    os.replace(tmp, output_dir / "summary.json")
    return summary


def fail_on_sr_seed1(config, output_dir: Path) -> dict:
    if config["model"].get("sr_stage") and config["seed"] == 1:
        raise RuntimeError("this run diverged")
    return env_recording_train(config, output_dir)


@pytest.fixture
def importable_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes unpickle the fakes above by module name (tests.experiments.*): make it importable there."""
    monkeypatch.syspath_prepend(str(REPO_ROOT))  # spawned pool workers start with this process's sys.path
    paths = [str(REPO_ROOT), str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))  # submitit's job processes


def _sweep_file(tmp_path: Path, seeds: list[int]) -> Path:
    recipe = write_fake_recipe(tmp_path / "recipe.yaml")
    return write_two_arm_sweep(tmp_path / "tiny.yaml", recipe, output=tmp_path / "sequential", seeds=seeds)


def _results(root: Path) -> tuple[list[dict], list[str]]:
    """results.csv rows and table.md lines, without the line that names the output folder."""
    with open(root / "results.csv") as f:
        rows = list(csv.DictReader(f))
    table = [line for line in (root / "table.md").read_text().splitlines() if "finished runs under" not in line]
    return rows, table


def _run_both(sweep_file: Path, tmp_path: Path, launcher) -> tuple[Path, Path]:
    sweep = load_sweep(sweep_file)
    run_sweep(sweep, run_fn=env_recording_train, load_fn=_fake_load, log=lambda _: None)
    sequential = sweep.output
    sweep.output = tmp_path / "launched"
    executed = run_sweep(sweep, run_fn=env_recording_train, load_fn=_fake_load, log=lambda _: None, launcher=launcher)
    assert sorted((r.arm, r.seed) for r in executed) == sorted((r.arm, r.seed) for r in expand_grid(sweep))
    return sequential, sweep.output


def _workers(root: Path) -> list[dict]:
    return [json.loads(p.read_text())["worker"] for p in sorted(root.glob("*/*/summary.json"))]


def test_local_launcher_two_workers_gives_the_sequential_table(tmp_path, importable_tests):
    """Two spawned workers, pinned to (fake) GPUs 5 and 7: GPU pinning is an environment variable, so it is checked
    without GPUs; the table and results.csv equal the sequential sweep's."""
    sweep_file = _sweep_file(tmp_path, seeds=[0, 1])
    sequential, launched = _run_both(sweep_file, tmp_path, LocalLauncher(2, threads=1, gpus=["5", "7"]))
    assert _results(launched) == _results(sequential)
    assert len(_results(launched)[0]) == 4
    workers = _workers(launched)
    assert os.getpid() not in {w["pid"] for w in workers}, "runs must execute in worker processes"
    assert {w["omp_num_threads"] for w in workers} == {"1"}
    device_of = {}
    for w in workers:  # a worker keeps its GPU for every run it takes; two workers never share one
        assert device_of.setdefault(w["pid"], w["cuda_visible_devices"]) == w["cuda_visible_devices"]
    assert set(device_of.values()) <= {"5", "7"} and len(set(device_of.values())) == len(device_of)
    assert all((launched / arm / f"seed{s}" / "train.log").is_file() for arm in ("base", "sr") for s in (0, 1))


def test_submitit_local_executor_gives_the_sequential_table(tmp_path, importable_tests):
    pytest.importorskip("submitit")
    sweep_file = _sweep_file(tmp_path, seeds=[0])  # 2 runs: two jobs at once on submitit's local executor
    launcher = make_launcher("slurm", {"cluster": "local", "time": 5, "poll_s": 0.2}, output=tmp_path / "launched")
    sequential, launched = _run_both(sweep_file, tmp_path, launcher)
    assert _results(launched) == _results(sequential)
    assert len(_results(launched)[0]) == 2
    assert list((launched / ".submitit").glob("*_log.out")), "submitit keeps its job logs under <output>/.submitit"


def test_a_worker_logs_to_its_run_folder_and_a_failure_keeps_its_traceback(tmp_path):
    sweep = load_sweep(_sweep_file(tmp_path, seeds=[1]))
    run = expand_grid(sweep)[1]  # sr, seed 1: fail_on_sr_seed1 fails it
    job = functools.partial(execute_run, sweep=sweep, run_fn=fail_on_sr_seed1, load_fn=_fake_load)
    handlers = list(logging.getLogger("srblock").handlers)
    with pytest.raises(RuntimeError, match="this run diverged"):
        run_in_worker(job, run)
    log = (run.output_dir / "train.log").read_text()
    assert "sr seed=1 ->" in log and "Traceback" in log and "this run diverged" in log
    assert not (run.output_dir / "summary.json").exists() and not (run.output_dir / ".sweep.lock").exists()
    assert logging.getLogger("srblock").handlers == handlers, "the worker's log file handler is removed afterwards"


def test_a_worker_skips_a_run_that_another_process_holds(tmp_path):
    """The claim (<run>/.sweep.lock) is taken where the run trains: launcher workers and other sweeps share a grid."""
    import socket

    sweep = load_sweep(_sweep_file(tmp_path, seeds=[0]))
    run = expand_grid(sweep)[0]
    run.output_dir.mkdir(parents=True)
    (run.output_dir / ".sweep.lock").write_text(f"{socket.gethostname()}:{os.getppid()}")  # a live process
    assert execute_run(run, sweep=sweep, run_fn=env_recording_train, load_fn=_fake_load) is None
    assert not (run.output_dir / "summary.json").exists()


def test_a_failed_run_stops_the_sweep(tmp_path):
    sweep = load_sweep(_sweep_file(tmp_path, seeds=[1, 2]))
    with pytest.raises(RuntimeError, match="this run diverged"):
        run_sweep(sweep, run_fn=fail_on_sr_seed1, load_fn=_fake_load, log=lambda _: None)
    assert (sweep.output / "base" / "seed1" / "summary.json").is_file()
    assert not (sweep.output / "base" / "seed2").exists(), "no run starts after a failure"


def test_launcher_names_and_options_are_checked():
    assert make_launcher().name == make_launcher("sequential").name == "sequential"
    local = make_launcher("local:3", {"threads": 2})
    assert (local.name, local.workers, local.threads) == ("local", 3, 2)
    assert make_launcher({"name": "local", "workers": 2}).workers == 2
    for spec, options, message in [
        ("local:0", {}, "local:N with N >= 1"),
        ("slurm:2", {}, "only local takes a worker count"),
        ("gpu", {}, "unknown launcher 'gpu'"),
        ("local:2", {"partition": "gpu"}, r"unknown option\(s\) \['partition'\]"),
        ("sequential", {"workers": 2}, "takes no options"),
    ]:
        with pytest.raises(ValueError, match=message):
            make_launcher(spec, options)
    assert parse_launcher_options(["time=240", "partition=gpu", "exclusive=true"]) == {
        "time": 240,
        "partition": "gpu",
        "exclusive": True,
    }
    with pytest.raises(ValueError, match="key=value"):
        parse_launcher_options(["partition"])


def test_local_without_a_count_needs_gpus_and_shares_them_round_robin():
    with pytest.raises(ValueError, match="needs a worker count on a machine without GPUs"):
        LocalLauncher(gpus=[])
    assert LocalLauncher(gpus=["0", "1"]).workers == 2
    assert LocalLauncher(3, gpus=["0", "1"]).slots() == ["0", "1", "0"]
    assert LocalLauncher(2, gpus=[]).slots() == [None, None]


def test_slurm_options_map_to_submitit_parameters(tmp_path):
    pytest.importorskip("submitit")
    launcher = SlurmLauncher(tmp_path, cluster="local", time=30, gpus=1, name="x")
    assert launcher.executor.parameters["timeout_min"] == 30
    assert launcher.executor.parameters["gpus_per_node"] == 1
    with pytest.raises(ValueError, match="submitit rejected the options"):
        SlurmLauncher(tmp_path, cluster="local", bogus=1)


def test_sweep_file_launcher_section_and_cli_override(tmp_path, monkeypatch):
    path = _sweep_file(tmp_path, seeds=[0])
    doc = yaml.safe_load(path.read_text())
    doc["launcher"] = {"name": "local", "threads": 1}
    path.write_text(yaml.safe_dump(doc))
    assert load_sweep(path).launcher == {"name": "local", "threads": 1}
    seen = {}

    def fake_run_sweep(sweep, **kwargs):
        seen["launcher"] = kwargs["launcher"]

    monkeypatch.setattr("srblock.experiments.sweep.run_sweep", fake_run_sweep)
    sweep_command(str(path), launcher="local:2")  # same kind: the file's threads stay
    assert (seen["launcher"].workers, seen["launcher"].threads) == (2, 1)
    sweep_command(str(path), launcher="sequential")  # another kind: the file's local options do not apply
    assert seen["launcher"].name == "sequential"
    doc["launcher"] = {"workers": 2}
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ValueError, match="'launcher' must be a name"):
        load_sweep(path)


def test_worker_launchers_refuse_torchrun(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="run it without torchrun"):
        run_sweep(load_sweep(_sweep_file(tmp_path, seeds=[0])), launcher=LocalLauncher(2, gpus=[]))


@pytest.mark.slow
def test_real_engine_sweep_on_two_local_workers_equals_the_sequential_one(tmp_path):
    """srblock sweep --launcher local:2 with the real engine (3 iterations of a tiny CIFAR ResNet per run)."""
    from srblock.cli import main

    from ..engine.conftest import write_npz

    write_npz(tmp_path / "data", num_train=64, num_test=32)
    recipe = {
        "data": {"dataset": "npz", "root": str(tmp_path / "data"), "val_fraction": 0.25, "crop_padding": 1},
        "model": {"name": "cifar_resnet18", "num_classes": 4, "width": 0.0625, "input_size": [3, 8, 8]},
        "optim": {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4},
        "schedule": {"milestones": [2]},
        "train": {"iterations": 3, "batch_size": 16, "log_interval": 100, "device": "cpu"},
    }
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(recipe))
    outputs = {}
    for launcher in ("sequential", "local:2"):
        outputs[launcher] = tmp_path / launcher.replace(":", "")
        doc = {
            "output": str(outputs[launcher]),
            "baseline": "base",
            "seeds": [0],
            "arms": {
                "base": {"recipe": str(tmp_path / "base.yaml")},
                "sr": {"recipe": str(tmp_path / "base.yaml"), "overrides": {"model.sr_stage": 2}},
            },
        }
        (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(doc))
        args = ["sweep", "-c", str(tmp_path / "sweep.yaml"), "--launcher", launcher, "-q"]
        assert main([*args, "--launcher-opt", "threads=1"] if launcher != "sequential" else args) == 0
    rows = {k: _results(v)[0] for k, v in outputs.items()}
    assert [(r["arm"], r["value"]) for r in rows["local:2"]] == [(r["arm"], r["value"]) for r in rows["sequential"]]
    assert "step 3/3" in (outputs["local:2"] / "sr" / "seed0" / "train.log").read_text()
