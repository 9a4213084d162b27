"""Time-series classification data: the UCR/UEA archive datasets that ship inside the ``aeon`` package.

:func:`load_ucr` reads a dataset offline through aeon's own loader (``aeon.datasets.load_classification``, which
finds the files aeon ships in its wheel, e.g. ArrowHead, GunPoint, ItalyPowerDemand, OSULeaf, ACSF1, BasicMotions,
JapaneseVowels, PickupGestureWiimoteZ) and prepares it as the deep-learning review does (Ismail Fawaz et al., "Deep
learning for time series classification: a review", DMKD 2019, and its code ``hfawaz/dl-4-tsc``):

* the archive's official train/test split, no validation split (the review selects the model on the training loss);
* labels mapped to ``0..K-1`` in sorted order of the archive's label strings: numerically when every label is a
  number (``"2" < "10"``), else lexicographically; :func:`load_ucr` returns the class names in that order;
* series of unequal length (JapaneseVowels: 7-29 steps, PickupGestureWiimoteZ: 29-361) are resampled to the
  longest length of the dataset (train and test together), endpoints kept: by linear interpolation, or
  ``interpolation="cubic"``, the not-a-knot cubic spline (scipy's ``interp1d(kind="cubic")``) with which dl-4-tsc
  prepared the review's multivariate archive; equal-length datasets are left as they are; ``length=N`` (not the
  review's: for experiments on the series' length) resamples every series to ``N`` steps the same way instead, and
  ``detail=D`` then resamples each series down to ``D`` steps and back (a low-pass that keeps the step count);
* every series is then z-normalised per channel (mean 0, std 1 over its time axis; aeon's ``Normalizer``, which
  leaves a constant channel at 0), as the UCR archive's papers do, unless ``normalize=False``: the review read its
  multivariate archive (JapaneseVowels) as it was, and there the level of each channel carries the class (the
  speaker's cepstrum); z-normalising it per series costs an FCN about 20 points of test accuracy.

:class:`SeriesLoader` batches the float tensors for the engine (the :mod:`srblock.engine.task` loader protocol).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .loader import ShardSampler

__all__ = [
    "INTERPOLATIONS",
    "PUBLISHED_ACCURACY",
    "UCR_DATASETS",
    "SeriesLoader",
    "UCRData",
    "check_length",
    "load_ucr",
    "resample",
    "znormalize",
]

#: The archive datasets this package's recipes use (all ship inside aeon's wheel).
UCR_DATASETS = (
    "ArrowHead",
    "GunPoint",
    "ItalyPowerDemand",
    "OSULeaf",
    "ACSF1",
    "PickupGestureWiimoteZ",
    "BasicMotions",
    "JapaneseVowels",
)

#: Published test accuracies (%) of FCN and ResNet, ``(mean, std, runs)``. ArrowHead, GunPoint, ItalyPowerDemand,
#: OSULeaf (UCR 2015) and JapaneseVowels (the multivariate archive of Baydogan) are the review's Tables (10 runs
#: each; dl-4-tsc ``results/results-uea-avg-std.csv`` and ``results-mts-avg-std.csv``). ACSF1 and
#: PickupGestureWiimoteZ (UCR 2018) are not in the review: the means and standard deviations of the 5 runs of
#: dl-4-tsc's ``results/results-ucr-128.csv`` with the same code. BasicMotions (UEA 2018) has no published value.
PUBLISHED_ACCURACY: dict[str, dict[str, tuple[float, float, int]]] = {
    "ArrowHead": {"fcn": (84.3, 1.5, 10), "resnet": (84.5, 1.2, 10)},
    "GunPoint": {"fcn": (100.0, 0.0, 10), "resnet": (99.1, 0.7, 10)},
    "ItalyPowerDemand": {"fcn": (96.1, 0.3, 10), "resnet": (96.3, 0.4, 10)},
    "OSULeaf": {"fcn": (97.7, 0.9, 10), "resnet": (97.9, 0.8, 10)},
    "JapaneseVowels": {"fcn": (99.3, 0.2, 10), "resnet": (99.2, 0.3, 10)},
    "ACSF1": {"fcn": (89.8, 1.6, 5), "resnet": (91.6, 2.6, 5)},
    "PickupGestureWiimoteZ": {"fcn": (74.4, 3.0, 5), "resnet": (70.4, 3.0, 5)},
}


class UCRData(NamedTuple):
    """A prepared archive dataset: float32 ``N x C x L`` series, int64 labels ``0..K-1``, the class names."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    resampled: bool  # whether the series had unequal lengths (resampled to the longest, or to ``length``)


def _label_order(labels: np.ndarray) -> list[str]:
    names = sorted({str(v) for v in labels})
    try:
        return sorted(names, key=float)
    except ValueError:
        return names


INTERPOLATIONS = ("linear", "cubic")


def resample(series: list[np.ndarray], length: int, interpolation: str = "linear") -> torch.Tensor:
    """``N x C x length`` float32: each ``C x L_i`` series interpolated to ``length``, endpoints kept; ``"linear"``
    or ``"cubic"`` (the not-a-knot cubic spline of scipy's ``interp1d(kind="cubic")``, from 4 steps on)."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    out = torch.empty(len(series), series[0].shape[0], length)
    for i, x in enumerate(series):
        x = np.asarray(x)
        steps = x.shape[-1]
        if steps == length:
            out[i] = torch.as_tensor(x.astype(np.float32))
        elif interpolation == "linear":
            t = torch.as_tensor(x.astype(np.float32)).unsqueeze(0)
            out[i] = F.interpolate(t, size=length, mode="linear", align_corners=True)[0]
        else:
            if steps < 4:
                raise ValueError(f"cubic interpolation needs series of 4 steps or more, got one of {steps}")
            from scipy.interpolate import make_interp_spline

            spline = make_interp_spline(np.arange(steps), x.astype(np.float64), k=3, axis=-1)
            out[i] = torch.from_numpy(spline(np.linspace(0, steps - 1, length)).astype(np.float32))
    return out


def znormalize(x: torch.Tensor) -> torch.Tensor:
    """Each series and channel of ``N x C x L`` to mean 0, std 1 over time (aeon's ``Normalizer``; constant → 0)."""
    from .._extras import requires_extra

    with requires_extra("timeseries", "time-series z-normalisation (aeon's Normalizer)"):
        from aeon.transformations.collection import Normalizer

    return torch.from_numpy(Normalizer().fit_transform(x.double().numpy())).float()


def check_length(length: object, key: str = "length") -> None:
    """A one-line ``ValueError`` unless ``length`` (named ``key`` in it) is None or an int of at least 2 steps."""
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 2):
        raise ValueError(f"{key} must be an int of at least 2 steps or null, got {length!r}")


def load_ucr(
    name: str,
    extract_path: str | None = None,
    *,
    normalize: bool = True,
    interpolation: str = "linear",
    length: int | None = None,
    detail: int | None = None,
) -> UCRData:
    """The archive dataset ``name`` prepared as the module docstring says, read offline through aeon.

    ``extract_path``: a folder holding ``<name>/<name>_TRAIN.ts`` (default: the copy inside aeon's wheel; aeon
    would download a dataset it neither ships nor finds there). ``normalize``: z-normalise each series and channel;
    ``interpolation``: how series of unequal length are resampled (:func:`resample`). ``length``: resample every
    series to this many steps (at least 2) instead of the longest series' length (which is also the default of an
    equal-length dataset, whose series are then left as they are). ``detail``: resample each series (after
    ``length``) to this many steps, fewer than it has, and back: the step count stays, the detail finer than
    ``detail`` steps can hold goes (for telling a series' length from its detail).

    >>> data = load_ucr("GunPoint")
    >>> tuple(data.train_x.shape), tuple(data.test_x.shape), data.classes
    ((50, 1, 150), (150, 1, 150), ('1', '2'))
    """
    check_length(length)
    check_length(detail, "detail")
    from .._extras import requires_extra

    with requires_extra("timeseries", "the UCR/UEA archive datasets (aeon.datasets)"):
        from aeon.datasets import load_classification

    splits = [load_classification(name, split=s, extract_path=extract_path) for s in ("train", "test")]
    classes = _label_order(np.concatenate([y for _, y in splits]))
    index = {c: i for i, c in enumerate(classes)}
    series = [list(x) for x, _ in splits]  # a 3-d array or a list of C x L_i arrays: C x L_i each
    lengths = {s.shape[-1] for part in series for s in part}
    steps = length or max(lengths)
    if detail is not None and detail >= steps:
        raise ValueError(f"detail must be fewer steps than the series' {steps}, got {detail}")
    xs = [resample(part, steps, interpolation) for part in series]
    if detail is not None:  # down to `detail` steps and back: the step count stays, the finer detail goes
        coarse = [resample(list(x.numpy()), detail, interpolation) for x in xs]
        xs = [resample(list(x.numpy()), steps, interpolation) for x in coarse]
    if normalize:
        xs = [znormalize(x) for x in xs]
    ys = [torch.tensor([index[str(v)] for v in y], dtype=torch.long) for _, y in splits]
    return UCRData(xs[0], ys[0], xs[1], ys[1], tuple(classes), len(lengths) > 1)


class SeriesLoader:
    """Batches of ``(series, labels)`` from float ``N x C x L`` tensors held in memory (the engine's loader protocol).

    Training batches follow a permutation per epoch drawn from ``(seed, epoch)`` (:class:`ShardSampler`) and keep
    a last, smaller batch, as Keras' ``fit`` (the review's) does; evaluation is in order. No augmentation.
    """

    def __init__(
        self,
        series: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        train: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str = "cpu",
    ) -> None:
        if not series.is_floating_point() or series.dim() != 3:
            raise ValueError(f"series must be float N x C x L, got {series.dtype} {tuple(series.shape)}")
        if len(series) != len(labels):
            raise ValueError(f"{len(series)} series but {len(labels)} labels")
        self.series, self.labels = series.to(device), labels.to(device=device, dtype=torch.long)
        self.batch_size = batch_size
        self.sampler = ShardSampler(len(series), train=train, seed=seed, rank=rank, world_size=world_size)
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.sampler.set_epoch(epoch)
        self.start_batch = start_batch

    def __len__(self) -> int:
        return -(-self.sampler.shard_size() // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.sampler.indices()[self.start_batch * self.batch_size :].to(self.series.device)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            yield self.series[idx], self.labels[idx]
