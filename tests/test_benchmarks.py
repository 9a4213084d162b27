"""The benchmark scripts still run (tiny sizes; their numbers are not checked here, only that each part completes)."""

from __future__ import annotations

import json
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
