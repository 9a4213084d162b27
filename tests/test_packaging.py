"""The package as pip installs it: a small core, extras that name themselves when missing, complete metadata.

The metadata and installed-layout tests run in the wheel job (``make test-wheel`` sets SRBLOCK_EXPECT_INSTALLED=1);
the others run everywhere.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import sysconfig
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

import srblock
from srblock._extras import EXTRAS, MissingExtraError, requires_extra

REPO_ROOT = Path(__file__).resolve().parents[1]
CORE = {"torch", "torchvision", "numpy", "pyyaml", "tqdm"}
INSTALLED = os.environ.get("SRBLOCK_EXPECT_INSTALLED") == "1"
needs_install = pytest.mark.skipif(not INSTALLED, reason="checks an installed wheel (make test-wheel)")


def _hide(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """Make ``package`` (and every submodule already imported) unimportable, as if it were not installed."""
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, package, None)


def _fresh_import(monkeypatch: pytest.MonkeyPatch, module: str):
    monkeypatch.delitem(sys.modules, module, raising=False)
    return importlib.import_module(module)


def _export_onnx(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from torch import nn

    from srblock.models import export_onnx

    export_onnx(nn.Conv2d(3, 4, 1), tmp_path / "never.onnx", (3, 8, 8))


CASES = {  # what needs the package -> (package hidden, extra named, the call that needs it)
    "stats": ("scipy", "analysis", lambda mp, tmp: _fresh_import(mp, "srblock.analysis.stats")),
    "plots": ("matplotlib", "analysis", lambda mp, tmp: _fresh_import(mp, "srblock.analysis.plots")),
    "digits": ("sklearn", "demo", lambda mp, tmp: _fresh_import(mp, "srblock.data.digits").load_digits()),
    "cbam": ("timm", "timm", lambda mp, tmp: _fresh_import(mp, "srblock.models.attention").make_attention("cbam", 32)),
    "eca": ("timm", "timm", lambda mp, tmp: _fresh_import(mp, "srblock.models.attention").make_attention("eca", 32)),
    "timm-models": ("timm", "timm", lambda mp, tmp: _fresh_import(mp, "srblock.models.timm_models")),
    "hub": ("huggingface_hub", "hub", lambda mp, tmp: _fresh_import(mp, "srblock.models.hub")),
    "safetensors": ("safetensors", "hub", lambda mp, tmp: _fresh_import(mp, "srblock.models.hub")),
    "onnx": ("onnxscript", "onnx", _export_onnx),
    "slurm": (
        "submitit",
        "slurm",
        lambda mp, tmp: _fresh_import(mp, "srblock.experiments.launchers").SlurmLauncher(tmp),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_missing_extra_names_the_extra_to_install(case: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    package, extra, use = CASES[case]
    _hide(monkeypatch, package)
    with pytest.raises(ImportError) as caught:
        use(monkeypatch, tmp_path)
    assert isinstance(caught.value, MissingExtraError)
    message = str(caught.value)
    assert "\n" not in message and f"pip install 'srblock[{extra}]'" in message and repr(package) in message


def test_cli_reports_a_missing_extra_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from srblock.cli import main

    _hide(monkeypatch, "sklearn")
    assert main(["demo", "--fast", "--output", "never-written"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "srblock: error: the demo needs scikit-learn, not installed: pip install 'srblock[demo]'"
    )  # checked before any work, not when the digits are first loaded


def test_other_import_errors_are_not_disguised() -> None:
    with pytest.raises(ModuleNotFoundError) as caught, requires_extra("analysis", "plots"):
        raise ModuleNotFoundError("No module named 'kiwisolver'", name="kiwisolver")  # a broken matplotlib install
    assert not isinstance(caught.value, MissingExtraError)
    with pytest.raises(ValueError, match="unknown extra 'plots'; known extras"), requires_extra("plots", "plots"):
        pass


def test_core_runs_without_any_extra(tmp_path: Path) -> None:
    """In a fresh interpreter where no extra can be imported: build models, train, evaluate, list recipes."""
    blocked = sorted({m for mods in EXTRAS.values() for m in mods})
    script = textwrap.dedent(
        f"""
        import importlib.abc, importlib.machinery, sys

        class Block(importlib.abc.MetaPathFinder, importlib.abc.Loader):
            # Blocked packages are found (torch probes with find_spec) but fail to import, like absent ones.

            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in {blocked!r}:
                    return importlib.machinery.ModuleSpec(name, self)

            def create_module(self, spec):
                raise ModuleNotFoundError(f"No module named {{spec.name!r}}", name=spec.name)

            def exec_module(self, module):  # never reached: create_module refuses
                raise AssertionError(module)

        sys.meta_path.insert(0, Block())
        import numpy as np
        import srblock
        from srblock.cli import main
        from srblock.models import create_model

        create_model("cifar_resnet18", num_classes=10, sr_stage=3, attention="se")
        try:
            create_model("cifar_resnet18", num_classes=10, attention="cbam")
        except ImportError as exc:
            print("CBAM:", exc)
        rng = np.random.default_rng(0)
        for split, n in (("train", 40), ("test", 8)):
            np.savez(f"{{split}}.npz", x=rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8), y=np.arange(n) % 4)
        open("r.yaml", "w").write(
            "data: {{dataset: npz, root: ., val_fraction: 0.25}}\\n"
            "model: {{name: cifar_resnet18, num_classes: 4, width: 0.0625, input_size: [3, 8, 8], sr_stage: 2, "
            "num_memories: 2, hidden: 2}}\\n"
            "optim: {{lr: 0.05}}\\ntrain: {{epochs: 1, batch_size: 16, device: cpu}}\\n"
        )
        assert main(["train", "-c", "r.yaml", "--output", "run"]) == 0
        assert main(["eval", "--checkpoint", "run/checkpoint_best.pt", "--no-sr"]) == 0
        assert main(["recipes", "list", "digits"]) == 0
        print("loaded extras:", sorted(m for m in sys.modules if m.partition(".")[0] in {blocked!r}))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "CBAM: CBAM attention (timm's CbamModule) needs 'timm', which is not installed: pip install " in done.stdout
    assert "'srblock[timm]'" in done.stdout
    assert "loaded extras: []" in done.stdout
    assert "digits/r18_d2d_sr" in done.stdout


def test_extras_table_matches_pyproject() -> None:
    """``_extras.EXTRAS`` (what the error messages say) and pyproject's extras (what pip installs) agree."""
    tomllib = pytest.importorskip("tomllib")
    pyproject = REPO_ROOT / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("no pyproject.toml next to the tests")
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project["optional-dependencies"]

    def names(requirements: list[str]) -> set[str]:
        return {
            r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
            for r in requirements
        }

    assert {n.replace("-", "_") for n in names(project["dependencies"])} == CORE
    assert "version" in project["dynamic"] and "version" not in project, "one version source: srblock.__version__"
    tooling = {"all", "dev", "docs"}  # "docs" builds the site (`make docs`); no srblock feature needs it
    assert set(EXTRAS) == set(extras) - tooling
    modules_of: dict[str, set[str]] = {}  # distribution -> its top-level modules
    for module, dists in metadata.packages_distributions().items():
        for dist in dists:
            modules_of.setdefault(dist.lower().replace("_", "-"), set()).add(module)
    for extra, modules in EXTRAS.items():
        for dist in names(extras[extra]) - {"srblock"}:
            provided = modules_of.get(dist.replace("_", "-"))
            assert provided, f"{dist} (extra {extra}) is not installed in the test environment"
            assert provided & set(modules), f"_extras.EXTRAS[{extra!r}] names none of {dist}'s modules {provided}"
    assert set(extras["all"]) == {f"srblock[{','.join(e for e in extras if e not in tooling)}]"}
    assert "srblock[all,docs]" in extras["dev"]


@needs_install
def test_tests_run_against_the_installed_wheel() -> None:
    purelib = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert Path(srblock.__file__).resolve().is_relative_to(purelib), srblock.__file__


@needs_install
def test_installed_metadata() -> None:
    meta = metadata.metadata("srblock")
    assert meta["Version"] == srblock.__version__
    assert meta["License-Expression"] == "MIT" and "LICENSE" in (meta.get_all("License-File") or [])
    assert "Paper, https://arxiv.org/abs/2410.00823" in (meta.get_all("Project-URL") or [])
    classifiers = meta.get_all("Classifier") or []
    assert "Intended Audience :: Science/Research" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    core = {r.split(">")[0].split("=")[0].strip().lower() for r in meta.get_all("Requires-Dist") if "extra ==" not in r}
    assert core == CORE
    assert {"analysis", "demo", "timm", "cbam", "onnx", "hub", "all", "dev"} <= set(meta.get_all("Provides-Extra"))


@needs_install
def test_wheel_ships_recipes_and_type_marker() -> None:
    from srblock.recipes import RECIPE_ROOT, list_recipes

    root = Path(srblock.__file__).parent
    assert (root / "py.typed").is_file()
    assert RECIPE_ROOT.is_relative_to(root) and len(list_recipes()) >= 88 and len(list_recipes(sweeps=True)) >= 5
    assert (RECIPE_ROOT / "cifar10" / "_base.yaml").is_file()
