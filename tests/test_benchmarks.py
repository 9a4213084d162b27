"""The benchmark scripts still run (tiny sizes; their numbers are not checked here, only that each part completes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_run_all_quick(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "benchmarks/run_all.py", "--device", "cpu", "--quick", "--out", str(out)]
    subprocess.run(cmd, cwd=REPO_ROOT, check=True, capture_output=True, timeout=600)
    parts = json.loads(out.read_text())["parts"]
    assert set(parts) == {"sr_overhead_fp32", "sr_overhead_bf16_cl", "engine_fp32", "engine_bf16"}
    assert not [name for name, part in parts.items() if "error" in part]
    assert parts["engine_fp32"]["ratio"] > 0


@pytest.mark.slow
def test_sr_block_profile_cpu(tmp_path):
    out = tmp_path / "profile.json"
    cmd = [sys.executable, "benchmarks/sr_block_profile.py", "--device", "cpu", "--batch-sizes", "1"]
    subprocess.run([*cmd, "--repeats", "2", "--no-compile", "--out", str(out)], cwd=REPO_ROOT, check=True, timeout=600)
    rows = json.loads(out.read_text())
    assert [(r["amp"], r["compiled"]) for r in rows] == [(None, False), ("bf16", False)]
    assert all(r["kernels"] > 0 and r["wall_ms"] > 0 for r in rows)


def test_sr_bf16_contribution_cpu(tmp_path):
    out = tmp_path / "bf16.json"
    cmd = [sys.executable, "benchmarks/sr_bf16_contribution.py", "--width", "0.125", "--batch", "4"]
    cmd += ["--ratios", "0.001", "0.3", "--data-dir", str(tmp_path), "--out", str(out)]
    subprocess.run(cmd, cwd=REPO_ROOT, check=True, capture_output=True, timeout=600)
    rows = {(r["ratio"], r["mode"]): r for r in json.loads(out.read_text())["rows"]}
    for ratio in (0.001, 0.3):
        assert rows[ratio, "fp32"]["operand_cos"] == pytest.approx(1.0)
        assert rows[ratio, "bf16+fp32_stage"]["operand_cos"] > 0.999  # out of autocast: nothing is rounded away
        # an fp32 add hands on an exact tensor, but the next conv multiplies it in bf16 all the same
        assert rows[ratio, "bf16+fp32_out"]["tensor_cos"] > 0.999
        bf16_operand = rows[ratio, "bf16"]["operand_cos"]
        assert rows[ratio, "bf16+fp32_out"]["operand_cos"] == pytest.approx(bf16_operand, abs=0.05)
    assert rows[0.001, "bf16"]["operand_cos"] < 0.95 < rows[0.3, "bf16"]["operand_cos"]


@pytest.mark.slow
def test_sr_gpu_latency_tiny_on_cpu(tmp_path):
    out = tmp_path / "latency.json"
    cmd = [sys.executable, "benchmarks/sr_gpu_latency.py", "--device", "cpu", "--tiny", "--out", str(out)]
    done = subprocess.run(cmd, cwd=REPO_ROOT, check=True, capture_output=True, text=True, timeout=600)
    result = json.loads(out.read_text())
    assert json.loads(done.stdout.strip().splitlines()[-2]) == result  # the one JSON line, then "wrote ..."
    assert [(r["batch"], r["mode"], r["exec"]) for r in result["rows"]] == [
        (1, "eval", "eager"),
        (1, "train", "eager"),
        (2, "eval", "eager"),
        (2, "train", "eager"),
    ]  # CUDA graphs need a GPU
    assert all(r["ratio"] > 0 and r["plain_ms"] > 0 for r in result["rows"])
    assert result["block_kernels"]["eval_b1"]["kernels"] > 0


@pytest.mark.slow
def test_block_costs_tiny_on_cpu(tmp_path):
    out = tmp_path / "costs.json"
    cmd = [sys.executable, "benchmarks/block_costs.py", "--widths", "0.0625", "--batch", "4", "--repeats", "1"]
    done = subprocess.run(
        [*cmd, "--warmup", "0", "--modes", "eval", "--out", str(out)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    rows = {r["block"]: r for r in json.loads(out.read_text())["rows"]}
    assert list(rows) == ["none", "SE", "CBAM", "ECA", "SR", "SR+SE"]
    assert rows["none"]["added_params"] == 0 and rows["none"]["latency_ratio_eval"] == 1.0
    assert rows["none"]["latency_ms_eval"] > 0 and "latency_ms_eval" not in rows["SR"]  # the base, once
    assert 0 < rows["ECA"]["added_params"] < rows["SE"]["added_params"] < rows["SR"]["added_params"]
    assert rows["SR+SE"]["added_params"] == rows["SE"]["added_params"] + rows["SR"]["added_params"]
    assert rows["SR"]["sr_params"] == rows["SR"]["added_params"] and rows["SR"]["mflops"] > rows["none"]["mflops"]
    assert "| 0.0625 | SR+SE |" in done.stdout


def test_timeseries_epoch_time_at_another_placement():
    pytest.importorskip("aeon")
    cmd = [sys.executable, "benchmarks/timeseries_epoch_time.py", "--datasets", "italypowerdemand", "--steps", "1"]
    done = subprocess.run(
        [*cmd, "--sr-stage", "1"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "OMP_NUM_THREADS": "1"},
    )
    rows = [line.strip("|").split("|") for line in done.stdout.splitlines()[2:]]
    assert [r[0].strip() for r in rows] == ["italypowerdemand_fcn", "italypowerdemand_resnet"]
    assert all(float(r[2]) > 0 and float(r[4]) > 0 and r[6].strip() in ("2000", "1500") for r in rows)


def test_cpu_workers_times_one_run_against_one_thread_runs(tmp_path):
    out, env = tmp_path / "workers.json", {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    cmd = [sys.executable, "benchmarks/cpu_workers.py", "--set", "model.width=0.0625", "--set", "train.batch_size=4"]
    run = {"cwd": REPO_ROOT, "capture_output": True, "text": True, "timeout": 600, "env": env}
    done = subprocess.run([*cmd, "--workers", "2", "--steps", "1", "--rounds", "2", "--out", str(out)], **run)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert (result["workers"], result["overrides"]) == (2, ["model.width=0.0625", "train.batch_size=4"])
    assert len(result["rounds"]) == 2 and "over 2 rounds" in done.stdout
    for r in result["rounds"]:
        assert r["threads"] == {"one_run": [2], "workers": [1, 1]}  # what each timed process ran with
        assert r["ratio"] == pytest.approx(r["workers_steps_per_s"] / r["one_run_steps_per_s"]) and r["ratio"] > 0
    refused = subprocess.run([*cmd, "--workers", "1"], **run)
    assert refused.returncode != 0 and "--workers must be at least 2 to compare with one run, got 1" in refused.stderr
