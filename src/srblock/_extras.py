"""Optional dependencies: which ``pip install 'srblock[EXTRA]'`` brings which package, and the error naming it.

The core (the block, the model zoo, the training engine) needs only torch, torchvision, numpy, PyYAML and tqdm.
Everything else is imported where it is used, inside :func:`requires_extra`, so a missing package fails with one
line that says what to install instead of a bare ``No module named 'scipy'``::

    with requires_extra("analysis", "paired t-tests (srblock.analysis.stats)"):
        from scipy import stats
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["EXTRAS", "MissingExtraError", "requires_extra"]

#: extra -> the top-level modules whose absence it cures (import names; pip names in ``pyproject.toml``).
EXTRAS: dict[str, tuple[str, ...]] = {
    "analysis": ("matplotlib", "scipy"),
    "demo": ("sklearn",),
    "timm": ("timm",),
    "cbam": ("timm",),  # the former name of the timm extra, kept so that old install commands still work
    "onnx": ("onnx", "onnxscript", "onnxruntime"),
    "hub": ("huggingface_hub", "safetensors"),
    "tensorboard": ("tensorboard",),
    "slurm": ("submitit",),
    "lightning": ("lightning", "pytorch_lightning"),
    "timeseries": ("aeon",),  # the extra installs lightning; the older package works too
}


class MissingExtraError(ModuleNotFoundError):
    """An optional package is not installed; the message names the extra that installs it."""


@contextmanager
def requires_extra(extra: str, purpose: str) -> Iterator[None]:
    """Imports in this block belong to ``extra``; a missing one raises :class:`MissingExtraError`.

    ``purpose`` says what needs the package ("plots", "CBAM attention"). Only a missing package of ``extra``
    itself is translated: an error inside an installed package (a broken install) propagates unchanged.
    """
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; known extras: {sorted(EXTRAS)}")
    try:
        yield
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in EXTRAS[extra]:
            raise
        raise MissingExtraError(
            f"{purpose} needs {missing!r}, which is not installed: pip install 'srblock[{extra}]'", name=exc.name
        ) from exc
