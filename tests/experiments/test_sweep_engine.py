"""A real 2-arm x 2-seed sweep through the engine (few iterations on a tiny npz set made here)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

from srblock.experiments import load_sweep, run_sweep
from srblock.experiments import sweep as sweep_module


def _write_npz(root: Path, size: int = 8, num_classes: int = 4) -> None:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for name, n in (("train", 64), ("test", 32)):
        y = np.arange(n) % num_classes
        x = rng.integers(0, 80, size=(n, size, size, 3), dtype=np.uint8)
        for k in range(num_classes):  # class k: a bright k-th band, so a few steps learn something
            x[y == k, :, k * size // num_classes : (k + 1) * size // num_classes, :] += 150
        np.savez(root / f"{name}.npz", x=x, y=y)


def test_engine_sweep_two_arms_two_seeds(tmp_path: Path, no_screen: None) -> None:
    _write_npz(tmp_path / "data")
    recipe = {
        "data": {"dataset": "npz", "root": str(tmp_path / "data"), "val_fraction": 0.25, "crop_padding": 1},
        "model": {"name": "cifar_resnet18", "num_classes": 4, "width": 0.0625, "input_size": [3, 8, 8]},
        "optim": {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4},
        "schedule": {"milestones": [2]},
        "train": {"iterations": 3, "batch_size": 16, "log_interval": 100},
    }
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(recipe))
    sweep_doc = {
        "output": str(tmp_path / "out"),
        "baseline": "base",
        "seeds": [0, 1],
        "arms": {
            "base": {"recipe": str(tmp_path / "base.yaml")},
            "sr": {"recipe": str(tmp_path / "base.yaml"), "overrides": {"model.sr_stage": 2, "model.num_memories": 3}},
        },
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep_doc))
    sweep = load_sweep(tmp_path / "sweep.yaml")

    executed = run_sweep(sweep, log=lambda _: None)  # the default run function: srblock.engine.train
    assert len(executed) == 4
    out = tmp_path / "out"
    for arm in ("base", "sr"):
        for seed in (0, 1):
            run_dir = out / arm / f"seed{seed}"
            summary = json.loads((run_dir / "summary.json").read_text())
            assert summary["seed"] == seed and summary["steps"] == 3
            assert (summary["sr_params"] > 0) == (arm == "sr")
            assert (run_dir / "metrics.csv").is_file() and (run_dir / "config.yaml").is_file()
            assert not list(run_dir.glob("*.pt")), "keep_checkpoints defaults to false"

    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    acc = {(r["arm"], r["seed"]): float(r["value"]) for r in rows}
    base, sr = [acc["base", "0"], acc["base", "1"]], [acc["sr", "0"], acc["sr", "1"]]
    table = (out / "table.md").read_text()
    line = next(x for x in table.splitlines() if x.startswith("| `sr`"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[4] == f"{np.mean(sr) - np.mean(base):+.2f}"
    p = stats.ttest_ind(sr, base, equal_var=False).pvalue
    assert cells[7] == ("–" if np.isnan(p) else f"{p:.3g}")

    assert run_sweep(sweep, log=lambda _: None) == []  # everything finished: nothing to run

    # a run whose summary and checkpoint are gone but whose log stayed (a checkout without the ignored checkpoint):
    # the engine alone refuses that folder; the sweep moves its files aside and trains it again, to the same result
    run_dir = out / "sr" / "seed1"
    (run_dir / "summary.json").unlink()
    assert [(r.arm, r.seed) for r in run_sweep(sweep, log=lambda _: None)] == [("sr", 1)]
    assert json.loads((run_dir / "summary.json").read_text())["test_acc1"] == acc["sr", "1"]
    (kept,) = (out / sweep_module.INTERRUPTED_DIR / "sr").iterdir()
    assert (kept / "metrics.csv").is_file() and (kept / "config.yaml").is_file()
