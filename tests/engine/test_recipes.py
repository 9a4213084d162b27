"""Every built-in recipe (but the _base files) parses, follows the paper's protocol and builds its model."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from srblock.engine import build_model, load_config
from srblock.engine.config import config_diff
from srblock.layers import find_sr_blocks
from srblock.recipes import RECIPE_ROOT

CONFIGS = RECIPE_ROOT
RECIPES = sorted(
    p for d in ("cifar10", "cifar100", "imagenet", "digits") for p in (CONFIGS / d).glob("*.yaml") if p.name[0] != "_"
)


FAST = {
    "cifar10/airbench",
    "cifar10/airbench_sr",
    "cifar10/airbench_d2d",
    "cifar10/airbench_d2d_sr",
    "cifar10/r18_d2d_fast",
    "cifar10/r18_d2d_fast_sr",
}


def test_every_paper_row_has_a_recipe() -> None:
    names = {f"{p.parent.name}/{p.stem}" for p in RECIPES} - FAST  # the GPU testbed's recipes are no table rows
    assert len([n for n in names if n.startswith("cifar10/")]) == 28  # 14 rows x (baseline, SR)
    assert len([n for n in names if n.startswith("cifar100/")]) == 40  # 20 rows x (baseline, SR)
    assert {"imagenet/r50_d2d_sr_p2", "imagenet/r50_d2d_sr_p10", "imagenet/r50_d2d_sr_p20"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_recipe_parses_and_builds(path: Path) -> None:
    config = load_config(path)
    assert path.read_text().startswith("# "), "a recipe starts with its provenance comment"
    sr = config["model"].get("sr_stage") is not None
    assert ("_sr" in path.stem) == sr, "an SR recipe's name ends in _sr (or _sr_pP)"
    with torch.device("meta"):
        model = build_model(config)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_cifar_protocol_lives_in_the_base_files() -> None:
    c10 = load_config(CONFIGS / "cifar10" / "r18_d2d_sr.yaml")
    assert c10["schedule"]["milestones"] == [90, 136] and c10["optim"]["weight_decay"] == 1e-4
    assert (c10["model"]["sr_stage"], c10["model"]["num_memories"], c10["model"]["hidden"]) == (3, 10, 8)
    c100 = load_config(CONFIGS / "cifar100" / "r18_d2d_sr.yaml")
    assert c100["schedule"] == c100["schedule"] | {"milestones": [60, 120, 160], "gamma": 0.2}
    assert (c100["model"]["sr_stage"], c100["model"]["num_memories"]) == (4, 12)


def test_recipes_are_found_by_name_or_path(tmp_path: Path) -> None:
    from srblock.recipes import find_recipe, list_recipes

    assert (
        find_recipe("cifar10/r18_d2d_sr")
        == find_recipe("cifar10/r18_d2d_sr.yaml")
        == CONFIGS / "cifar10/r18_d2d_sr.yaml"
    )
    own = tmp_path / "mine.yaml"
    own.write_text("defaults: []\n")
    assert find_recipe(own) == own
    assert find_recipe("cifar10_cpu_3ep_d2d", sweeps=True).parent.name == "sweeps"
    assert "cifar10_cpu_3ep_d2d" not in " ".join(list_recipes())  # sweeps are listed apart
    assert "sweeps/cifar10_cpu_3ep_d2d" in list_recipes(sweeps=True)
    with pytest.raises(FileNotFoundError, match="did you mean 'cifar10/r18_d2d_sr'"):
        find_recipe("cifar10/r18_d2d_srr")


SWEEPS = sorted((CONFIGS / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_file_arms_resolve(path: Path) -> None:
    from srblock.experiments import expand_grid, load_sweep

    sweep = load_sweep(path)
    assert path.read_text().startswith("# "), "a sweep file starts with a comment saying what it measures"
    for run in {r.arm: r for r in expand_grid(sweep)}.values():  # one run of each arm
        config = load_config(run.recipe, run.overrides)
        with torch.device("meta"):
            model = build_model(config)
        sr_options = {
            key.removeprefix("model.sr."): yaml.safe_load(value)
            for key, value in (o.split("=", 1) for o in run.overrides)
            if key.startswith("model.sr.")
        }
        for block in find_sr_blocks(model).values():  # every SR block option an arm sets reaches its blocks
            expected = dict(sr_options)
            if "feat_size" in expected:  # the block keeps its size as a tuple, one entry per axis
                size = expected["feat_size"]
                expected["feat_size"] = tuple(size) if isinstance(size, list) else (size,) * block.spatial_dims
            assert {key: getattr(block, key) for key in sr_options} == expected, run.arm


def test_fast_testbed_recipes_pair_baseline_and_sr_at_the_papers_place() -> None:
    assert {f"{p.parent.name}/{p.stem}" for p in RECIPES} >= FAST
    for base in ("cifar10/airbench", "cifar10/airbench_d2d", "cifar10/r18_d2d_fast"):
        plain, sr = load_config(base), load_config(f"{base}_sr")
        assert {k: v for k, v in sr["model"].items() if k not in ("sr_stage", "num_memories")} == plain["model"]
        assert {s: sr[s] for s in ("data", "optim", "schedule", "train")} == {
            s: plain[s] for s in ("data", "optim", "schedule", "train")
        }, "an SR arm differs from its baseline in the model only"
        assert (sr["model"]["num_memories"], sr["model"]["hidden"]) == (10, 8)
        # no selection on test: the whole training set, the last weights; fp32/TF32 as in the paper
        assert plain["data"]["val_fraction"] == 0 and plain["train"]["amp"] is None
        assert plain["train"]["eval_every"] == plain["train"]["epochs"]
    with torch.device("meta"):
        airbench = build_model(load_config("cifar10/airbench_sr"))
        r18 = build_model(load_config("cifar10/r18_d2d_fast_sr"))
    assert airbench.block2.sr.memory.shape == (10, 256, 7, 7) and r18.layer3.sr.memory.shape == (10, 256, 8, 8)


# Issue 21: where does SR help? (placement, capacity, other regularizers, other plug-in blocks)
ISSUE21_CPU = ("cifar10_cpu_w25_regularizers", "cifar10_cpu_w25_blocks")
ISSUE21_GPU = tuple(f"cifar10_gpu_fast_airbench_{q}" for q in ("placement", "capacity", "regularizers", "blocks"))


def _arm_configs(name: str) -> dict[str, dict]:
    from srblock.experiments import expand_grid, load_sweep

    return {run.arm: load_config(run.recipe, run.overrides) for run in expand_grid(load_sweep(name)) if run.seed == 0}


def test_issue21_cpu_sweeps_run_the_w25_protocol_into_their_own_folders() -> None:
    from srblock.experiments import load_sweep

    w25 = load_sweep("cifar10_cpu_w25")
    for name in ISSUE21_CPU:
        sweep = load_sweep(name)
        assert (sweep.overrides, sweep.seeds, sweep.baseline) == (w25.overrides, w25.seeds, "r18-d2d"), name
        assert sweep.output.parent == w25.output.parent and sweep.output != w25.output
    for name in ISSUE21_GPU:
        sweep = load_sweep(name)
        assert len(sweep.seeds) >= 24 and all(arm.seeds is None for arm in sweep.arms), name
        assert sweep.output.parent.name == "cifar10-gpu-fast" and sweep.baseline == "airbench"
    main = {arm.name: arm.seeds for arm in load_sweep("cifar10_gpu_fast_airbench_plain").arms}
    assert main["airbench"] == main["airbench-sr"] == list(range(60))
    assert len(load_sweep("cifar10_gpu_fast_r18").seeds) >= 20


@pytest.mark.parametrize(
    "name",
    [
        "cifar10_cpu_w25",
        *ISSUE21_CPU,
        *ISSUE21_GPU,
        "timeseries_screen_italypowerdemand_fcn",
        "timeseries_screen_sgd_italypowerdemand_fcn",
        "cifar10_cpu_w25_adamw",
        "cifar10_cpu_w25_confirm",
        *(p.stem for p in sorted((RECIPE_ROOT / "sweeps").glob("timeseries_*.yaml"))),
    ],
)
def test_issue21_arms_build_what_their_names_say(name: str) -> None:
    """-m234 / -b23: SR after those stages; -pN / -uN: P and U; se / cbam / eca: that attention; every arm with its
    own control differs from it in SR (its name ends in -sr) or in the SR memory's weight decay only."""
    from timm.layers.cbam import CbamModule
    from timm.layers.eca import EcaModule
    from torchvision.ops import SqueezeExcitation

    from srblock.experiments import load_sweep

    configs = _arm_configs(name)
    stage_names = {"cifar_resnet18": "layer", "cifar_airbench": "block", "tsc_fcn": "block", "tsc_resnet": "block"}
    for arm, config in configs.items():
        with torch.device("meta"):
            model = build_model(config)
        blocks = find_sr_blocks(model)
        prefix = stage_names[config["model"]["name"]]
        if match := re.search(r"-[mb](\d+)$", arm):
            assert sorted(blocks) == [f"{prefix}{m}.sr" for m in match.group(1)], arm
        for letter, attr in (("p", "num_memories"), ("u", "hidden")):
            if match := re.search(rf"-{letter}(\d+)$", arm):
                assert [getattr(b, attr) for b in blocks.values()] == [int(match.group(1))], arm
        kinds = {"se": SqueezeExcitation, "cbam": CbamModule, "eca": EcaModule}
        for kind, module in kinds.items():
            assert any(isinstance(m, module) for m in model.modules()) == (f"-{kind}" in arm), arm
        assert bool(blocks) == ("-sr" in arm), arm
    for arm in load_sweep(name).arms:
        if arm.baseline is None:
            continue
        changed = set(config_diff(configs[arm.baseline], configs[arm.name]))
        # an SR arm (-sr, or -sr-mN at another stage) may set the block's own keys (the time-series SR recipes set U,
        # model.hidden, explicitly)
        sr_arm = re.search(r"-sr(-m\d+)?$", arm.name)
        allowed = {"model.sr_stage", "model.num_memories", "model.hidden"} if sr_arm else set()
        # a control without parameter groups has "optim.groups: {}" where the arm has the memory's group
        memory = {"optim.groups", "optim.groups.sr_memory.weight_decay"}
        assert changed and all(k in allowed or k in memory for k in changed), (arm, changed)


def test_the_cpu_queue_of_issue_21_runs_every_placement_and_capacity_arm_then_the_other_sweeps() -> None:
    from srblock.experiments import load_sweep

    path = Path(__file__).resolve().parents[2] / "sweeps" / "where_sr_helps.sh"
    script = path.read_text()
    groups = {name: arms.split(",") for name, arms in re.findall(r"^(\w+)=(\S+)", script, re.M)}
    order = re.findall(r"\$(\w+)", re.search(r"^for arms in (.+); do$", script, re.M)[1])
    listed = [arm for name in order for arm in groups[name]]
    w25 = {arm.name for arm in load_sweep("cifar10_cpu_w25").arms}
    assert len(listed) == len(set(listed)) and set(listed) == {a for a in w25 if re.search(r"-sr-[mpu]\d+$", a)}
    first_capacity = min(i for i, arm in enumerate(listed) if re.search(r"-sr-[pu]\d+$", arm))
    assert all(re.search(r"-sr-m\d+$", arm) for arm in listed[:first_capacity])  # placement before capacity
    others = re.search(r"^for sweep in ([^;]+); do$", script, re.M)[1].replace("\\", " ").split()
    # the issue's questions 4-6 first, then the follow-ups (AdamW, the confirmatory seeds)
    assert others == ["cifar10_cpu_w25_robustness", *ISSUE21_CPU, "cifar10_cpu_w25_adamw", "cifar10_cpu_w25_confirm"]
    protocol = load_sweep("cifar10_cpu_w25").overrides
    for name in others:  # the w25 protocol, AdamW's arms changing only the optimizer
        assert set(protocol) <= set(load_sweep(name).overrides), name
    wrong = subprocess.run(["bash", str(path), "--stats"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "expected no argument or --status, got '--stats'" in wrong.stderr


def test_the_time_series_queue_names_existing_sweeps_and_arms_and_refuses_unknown_options() -> None:
    from srblock.experiments import load_sweep

    path = Path(__file__).resolve().parents[2] / "sweeps" / "timeseries.sh"
    script = path.read_text()
    datasets = re.search(r"^for dataset in (.+); do$", script, re.M)[1].split()
    screens = re.search(r"^  for name in (.+); do$", script, re.M)[1].split()
    long = re.search(r"^long=\((.+)\)$", script, re.M)[1].split()
    for name in [f"timeseries_{d}_{m}" for d in datasets for m in ("fcn", "resnet")]:
        assert load_sweep(name).arms, name
    for name in screens:
        assert load_sweep(f"timeseries_screen_{name}_fcn").arms, name
    for name in re.findall(r"-c (timeseries_\w+)", script):  # the sweeps the script names in full
        assert load_sweep(name).arms, name
    for name in long:  # the primary pass: a screen whole, else the baseline and the block-3 arm as the script spells
        arms = {arm.name for arm in load_sweep(f"timeseries_{name}").arms}
        if not name.startswith("screen_"):
            assert {name.replace("_", "-", 1), name.replace("_", "-", 1) + "-sr"} <= arms, (name, arms)
    result = subprocess.run(["bash", str(path), "--bogus"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "usage: sweeps/timeseries.sh [--all], got: --bogus" in result.stderr


def test_recipe_and_sweep_files_keep_to_120_columns_but_for_commands() -> None:
    long = [
        f"{path.relative_to(RECIPE_ROOT)}:{n}"
        for path in sorted(RECIPE_ROOT.rglob("*.yaml"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if len(line) > 120 and not line.startswith("#   ")  # an indented command is kept whole, to copy and paste
    ]
    assert long == []
