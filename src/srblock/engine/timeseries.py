"""The time-series classification task: the UCR/UEA archive datasets aeon ships, FCN/ResNet of the review.

Protocol (Ismail Fawaz et al., DMKD 2019; :mod:`srblock.data.timeseries` for the data): the archive's official
train/test split, no validation split; the recipes select the weights of the epoch with the lowest training loss
(``train.select: train_loss``) and test them once. The loss, metrics (``acc1``/``acc5`` in percent, ``loss``) and
summary are the classification task's.

``data`` keys:
    name: the archive dataset (e.g. ``GunPoint``; :data:`srblock.data.timeseries.UCR_DATASETS` are the recipes').
    root: a folder with ``<name>/<name>_TRAIN.ts`` and ``_TEST.ts`` (default ``null``: the copy inside aeon).
    normalize: z-normalise each series and channel (default ``true``; the JapaneseVowels recipes: ``false``, as the
        review read the multivariate archive).
    interpolation: how series of unequal length reach the longest length, ``linear`` (default) or ``cubic``.
    length: resample every series to this many steps with that interpolation (default ``null``: the longest
        series' length; not the review's protocol: an experiment on the series' length sets it).
    detail: resample each series to this many steps (fewer than it has) and back, a low-pass that keeps the step
        count (default ``null``: off; for telling a series' length from its detail).

The recipe's model must fit the data: ``model.num_classes`` the classes, ``model.in_channels`` the series'
channels, and ``model.input_size: [channels, length]`` (the length after resampling; every recipe sets it, an SR block
needs it, the sweep's FLOP column reads it); checked before anything is built.
"""

from __future__ import annotations

from typing import Any, ClassVar

from srblock.data.timeseries import INTERPOLATIONS, SeriesLoader, UCRData, check_length, load_ucr

from .classification import ClassificationTask
from .task import Loaders, register_task

__all__ = ["TimeSeriesTask"]


@register_task("timeseries")
class TimeSeriesTask(ClassificationTask):
    """Classification of float ``N x C x L`` series held in memory; no augmentation."""

    data_types: ClassVar[dict[str, tuple[type, ...]]] = {}
    data_defaults: ClassVar[dict[str, Any]] = {
        "name": None,
        "root": None,
        "normalize": True,
        "interpolation": "linear",
        "length": None,
        "detail": None,
    }

    @classmethod
    def validate_data(cls, data: dict[str, Any]) -> None:
        super(ClassificationTask, cls).validate_data(data)
        if not isinstance(data.get("name"), str):
            raise ValueError(f"data.name must be an archive dataset name such as 'GunPoint', got {data.get('name')!r}")
        if not isinstance(data.get("normalize", True), bool):
            raise ValueError(f"data.normalize must be true or false, got {data['normalize']!r}")
        if data.get("interpolation", "linear") not in INTERPOLATIONS:
            raise ValueError(f"data.interpolation must be one of {INTERPOLATIONS}, got {data['interpolation']!r}")
        check_length(data.get("length"), "data.length")
        check_length(data.get("detail"), "data.detail")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._check_model()

    def series(self) -> UCRData:
        """The prepared dataset, read once per task."""
        if getattr(self, "_series", None) is None:
            data = self.config["data"]
            self._series = load_ucr(
                data["name"],
                data["root"],
                normalize=data["normalize"],
                interpolation=data["interpolation"],
                length=data["length"],
                detail=data["detail"],
            )
        return self._series

    def _check_model(self) -> None:
        model, data = self.config["model"], self.series()
        channels, length = data.train_x.shape[1:]
        expected = {"num_classes": len(data.classes), "in_channels": channels}
        if model.get("sr_stage") is not None or model.get("input_size") is not None:
            expected["input_size"] = [channels, length]
        for key, value in expected.items():
            given = model.get(key)
            if (list(given) if isinstance(given, (list, tuple)) else given) != value:
                raise ValueError(
                    f"{self.config['data']['name']} has {len(data.classes)} classes and series of {channels} "
                    f"channel(s) x {length} steps: set model.{key}: {value} (got {given!r})"
                )

    def build_loaders(self) -> Loaders:
        data, seed = self.series(), self.config["seed"]
        batch, eval_batch = self.batch_sizes()
        common = {"rank": self.dist.rank, "world_size": self.dist.world_size, "device": self.device}
        return Loaders(
            train=SeriesLoader(data.train_x, data.train_y, batch, train=True, seed=seed, **common),
            val=None,
            test=SeriesLoader(data.test_x, data.test_y, eval_batch, train=False, **common),
        )
