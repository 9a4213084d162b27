"""The classification task: CIFAR-10/100 (and any npz set), scikit-learn's digits, ImageNet; top-1/top-5 accuracy.

Protocol (PAPER.md §3): a seeded, stratified 90/10 train/validation split of the training set; the checkpoint with
the best validation top-1 is evaluated once on the test set. ImageNet recipes set ``val_fraction: 0`` and report
the official validation set (the paper's top-1) as the test split, keeping the last weights.

``data`` keys (defaults in :attr:`ClassificationTask.data_defaults`):
    dataset: ``cifar10`` | ``cifar100`` | ``npz`` (``root/train.npz``, ``root/test.npz``) | ``digits`` | ``imagenet``
    root, download: where the data is; ``download: true`` lets torchvision fetch CIFAR (needs internet).
    val_fraction: held-out share of the training set (0.1, the paper's).
    split_seed: the seed of the train/validation split and the subsets; ``null`` (default): the run's seed, so every
        seed also trains on another 90 %. An int fixes the split across seeds: then only init, data order,
        augmentation and dropout vary (PAPER.md §3 says what the paper's seed sets; the split it does not name).
    train_subset, val_subset, test_subset: use only the first N samples of a split (quick runs; a deviation).
    crop_padding, flip: in-memory augmentation (pad-and-crop, horizontal flip); ``flip: alternate`` is airbench's
        alternating flip (:mod:`srblock.data.transforms`). pad_mode: ``zeros`` (the paper's) or ``reflect``.
    mean, std: normalisation (default per dataset).
    image_size: digits: upsampled size (default 16); ImageNet: crop size (224). resize_size: ImageNet eval resize.
    tta: test-time augmentation of every evaluation (validation and test): ``null`` (none, the paper's), ``flip``
        (mean logits of the image and its mirror) or ``flip_translate`` (airbench's: half the flip pair, a quarter
        each the flip pairs of the image shifted one pixel up-left and down-right with reflect padding). In-memory
        datasets only.
    init_images: a model with an ``init_from_data(images)`` method (airbench's patch whitening) gets
        ``init_images`` images of the training split, normalised and not augmented, before training (5000).
    init_sample: which ones: ``first`` (the first in file order; airbench94's choice, a mixed sample only because
        CIFAR's official order is random) or ``random`` (a seeded random sample, right whatever the order:
        ``../shared``'s CIFAR-10 is sorted by class, so its first 5000 images are all airplanes). ``first`` is the
        default only so that a run saved before this key existed reruns as it ran; the recipes set ``random``.

The task's own keys of the ``train`` section (defaults in :attr:`ClassificationTask.train_defaults`):
    label_smoothing: of the training loss (``F.cross_entropy``'s; 0 = off, the paper's). Evaluation losses are
        never smoothed.
    mixup_alpha, cutmix_alpha: MixUp (Zhang et al., arXiv 1710.09412) / CutMix (Yun et al., arXiv 1905.04899) of
        every training batch on the device, with λ ~ Beta(α, α) (torchvision's ``transforms.v2.MixUp``/``CutMix``,
        each image mixed with its neighbour in the batch, the targets mixed alike); 0 = off (the paper's).
    mixup_switch_prob: with both alphas > 0, the probability that a batch gets CutMix instead of MixUp (timm's
        ``switch_prob``, 0.5). The draws come from ``(seed, training progress)``, not from the global generator, so
        seed k of two arms mixes the same pairs with the same λ and boxes, and dropout's stream is left as it was.
    robustness: ``true`` evaluates the tested (best) weights at the end on the corruption benchmark, CIFAR-10-C's
        15 corruptions x 5 severities of the test split (:mod:`srblock.data.corruptions`, seed 0, cached), and
        adds ``test_corruption_acc1`` (the mean over the 75, mCA) and ``test_corruption`` (per corruption and
        severity) to ``summary.json``; so a GPU run brings back numbers, not checkpoints. In-memory datasets only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from srblock._extras import requires_extra
from srblock.data.digits import DIGITS_MEAN, DIGITS_STD
from srblock.data.loader import InMemoryLoader, make_loader, seed_for
from srblock.data.shared import file_signature, shared_or_read
from srblock.data.split import train_val_split
from srblock.data.transforms import CIFAR_MEAN, CIFAR_STD, FLIP_MODES, PAD_MODES, BatchAugment, normalize
from srblock.models.regularizers import DropBlock, set_dropblock_progress

from .metrics import topk_correct
from .task import BatchLoader, Loaders, Task, register_task

__all__ = ["INIT_SAMPLES", "TTA_MODES", "ClassificationTask", "tta_logits"]

_log = logging.getLogger(__name__)

TTA_MODES = (None, "flip", "flip_translate")
INIT_SAMPLES = ("first", "random")  # data.init_sample
_RGB_DATASETS = ("cifar10", "cifar100", "digits", "imagenet")  # their images have 3 channels (digits: fed as RGB)

_STATS = {
    "cifar10": (CIFAR_MEAN, CIFAR_STD),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "npz": (CIFAR_MEAN, CIFAR_STD),
    "digits": (DIGITS_MEAN * 3, DIGITS_STD * 3),  # the grey digits are fed as three equal channels (see _arrays)
}


def tta_logits(model: nn.Module, images: torch.Tensor, mode: str | None) -> torch.Tensor:
    """Logits of ``model`` for ``images`` (``B x C x H x W``) under test-time augmentation ``mode`` (:data:`TTA_MODES`).

    ``flip``: mean of the image's and its mirror's logits. ``flip_translate`` (airbench94's, Jordan 2024): half the
    flip pair of the image, a quarter each the flip pairs of the image shifted by one pixel towards the top-left and
    towards the bottom-right (reflect-padded).
    """
    if mode not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, got {mode!r}")
    if mode is None:
        return model(images)

    def flip_pair(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * model(x) + 0.5 * model(x.flip(3))

    logits = flip_pair(images)
    if mode == "flip":
        return logits
    h, w = images.shape[-2:]
    padded = F.pad(images, (1, 1, 1, 1), mode="reflect")
    shifted = 0.5 * flip_pair(padded[..., :h, :w]) + 0.5 * flip_pair(padded[..., 2:, 2:])
    return 0.5 * logits + 0.5 * shifted


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_fraction(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1


def _take(indices: torch.Tensor, limit: int | None, seed: int, name: str) -> torch.Tensor:
    """A seeded random subset of ``limit`` of ``indices`` (all of them when ``limit`` is None)."""
    if limit is None or limit >= len(indices):
        return indices
    if limit <= 0:
        raise ValueError(f"data.{name} must be a positive int or null, got {limit}")
    order = torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed_for(seed, name)))
    return indices[order[:limit].sort().values]


@register_task("classification")
class ClassificationTask(Task):
    """Cross-entropy classification; metrics ``acc1``/``acc5`` (percent) and ``loss``."""

    primary_metric = "acc1"
    data_types: ClassVar[dict[str, tuple[type, ...]]] = {"flip": (bool, str)}  # true/false or "alternate"
    data_defaults: ClassVar[dict[str, Any]] = {
        "dataset": "cifar10",
        "root": None,
        "download": False,
        "val_fraction": 0.1,
        "split_seed": None,
        "train_subset": None,
        "val_subset": None,
        "test_subset": None,
        "crop_padding": 4,
        "flip": True,
        "mean": None,
        "std": None,
        "image_size": None,
        "resize_size": 256,
        "pad_mode": "zeros",
        "tta": None,
        "init_images": 5000,
        "init_sample": "first",
    }
    _dropblocks: bool | None = None  # whether the model has DropBlock layers (set on the first training step)
    train_defaults: ClassVar[dict[str, Any]] = {
        "label_smoothing": 0.0,
        "mixup_alpha": 0.0,
        "cutmix_alpha": 0.0,
        "mixup_switch_prob": 0.5,
        "robustness": False,
    }
    _mix_seed: int | None = None  # the current training step's seed of the MixUp/CutMix draws (on_train_step)
    _mixer: nn.Module | None = None  # built on the first mixed batch

    @classmethod
    def validate_data(cls, data: Mapping[str, Any]) -> None:
        super().validate_data(data)
        checks = {
            "flip": (data.get("flip", True) in FLIP_MODES, f"one of {FLIP_MODES}"),
            "pad_mode": (data.get("pad_mode", "zeros") in PAD_MODES, f"one of {PAD_MODES}"),
            "tta": (data.get("tta") in TTA_MODES, f"one of {TTA_MODES}"),
            "init_images": (_is_count(data.get("init_images", 0)), "an int >= 0"),
            "init_sample": (data.get("init_sample", "first") in INIT_SAMPLES, f"one of {INIT_SAMPLES}"),
            "split_seed": (data.get("split_seed") is None or _is_count(data["split_seed"]), "null or an int >= 0"),
            "val_fraction": (_is_fraction(data.get("val_fraction", 0.1)), "a number in [0, 1)"),  # before the data
        }
        for key, (ok, expected) in checks.items():
            if not ok:
                raise ValueError(f"data.{key} must be {expected}, got {data[key]!r}")
        for key in ("mean", "std"):  # per channel; their count is checked against the images when they are read
            value = data.get(key)
            numbers = isinstance(value, (list, tuple)) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
            )
            if value is not None and (not numbers or not value or (key == "std" and min(value) <= 0)):
                what = "positive numbers" if key == "std" else "numbers"
                raise ValueError(f"data.{key} must be null or a list of {what}, one per image channel, got {value!r}")
            channels = 3 if data.get("dataset") in _RGB_DATASETS else len(value or ())  # npz: checked when read
            if value is not None and len(value) != channels:
                raise ValueError(
                    f"data.{key} has {len(value)} value(s) but {data['dataset']} images have {channels} channels: "
                    "give one per channel"
                )
        if data.get("tta") and data.get("dataset") == "imagenet":
            raise ValueError("data.tta is for in-memory datasets (CIFAR, npz, digits); set it to null for ImageNet")

    @classmethod
    def validate_train(cls, train: Mapping[str, Any]) -> None:
        smoothing = train.get("label_smoothing", 0.0)
        if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0.0 <= smoothing < 1.0:
            raise ValueError(f"train.label_smoothing must be a number in [0, 1), got {smoothing!r}")
        for key, upper in (("mixup_alpha", math.inf), ("cutmix_alpha", math.inf), ("mixup_switch_prob", 1.0)):
            value = train.get(key, 0.0)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= upper:
                expected = "a number in [0, 1]" if upper == 1.0 else "a number >= 0 (0 = off)"
                raise ValueError(f"train.{key} must be {expected}, got {value!r}")
        if not isinstance(train.get("robustness", False), bool):
            raise ValueError(f"train.robustness must be true or false, got {train['robustness']!r}")
        if train.get("robustness"):  # its extra is named when the recipe is read, not after training
            with requires_extra("analysis", "train.robustness (the corruption benchmark, scipy.ndimage)"):
                import scipy.ndimage  # noqa: F401

    # -- data ---------------------------------------------------------------------------------------------------
    def build_loaders(self) -> Loaders:
        data = self.config["data"]
        if data["dataset"] == "imagenet":
            return self._folder_loaders()
        images, labels, test_images, test_labels = self._arrays()
        seed = self.config["seed"]
        train_idx, val_idx, test_idx = self._split()
        augment = BatchAugment(
            *self._mean_std(),
            crop_padding=data["crop_padding"],
            flip=data["flip"],
            pad_mode=data["pad_mode"],
        )
        world, rank = self.dist.world_size, self.dist.rank
        batch, eval_batch = self.batch_sizes()

        def loader(idx: torch.Tensor, x: torch.Tensor, y: torch.Tensor, train: bool) -> InMemoryLoader:
            size = batch if train else eval_batch
            common = {"augment": augment, "seed": seed, "rank": rank, "world_size": world, "device": self.device}
            return InMemoryLoader(x[idx], y[idx], size, train=train, **common)

        return Loaders(
            train=loader(train_idx, images, labels, True),
            val=loader(val_idx, images, labels, False) if len(val_idx) else None,
            test=loader(test_idx, test_images, test_labels, False),
        )

    def build_model(self) -> nn.Module:
        """The zoo model; one with ``init_from_data`` (airbench) is initialised from the training split first."""
        model = super().build_model()
        if callable(getattr(model, "init_from_data", None)) and self.config["data"]["init_images"]:
            if self.config["data"]["dataset"] == "imagenet":
                raise ValueError("init_from_data needs an in-memory dataset; set data.init_images: 0 for ImageNet")
            images = self._arrays()[0][self.init_indices()].to(self.device)  # on the GPU when there is one
            model.init_from_data(normalize(images, *self._mean_std()))
        return model

    def init_indices(self) -> torch.Tensor:
        """Indices of the training images a data-dependent init sees (``data.init_images``, ``data.init_sample``)."""
        data = self.config["data"]
        train_idx, count = self._split()[0], data["init_images"]
        if data["init_sample"] == "random":
            return _take(train_idx, count, self.config["seed"], "init_images")
        return train_idx[:count]

    def _mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        data = self.config["data"]
        default_mean, default_std = _STATS[data["dataset"]]  # _arrays() has rejected any other dataset
        return tuple(data["mean"] or default_mean), tuple(data["std"] or default_std)

    def _split_seed(self) -> int:
        """``data.split_seed``, else the run's seed."""
        split_seed = self.config["data"]["split_seed"]
        return self.config["seed"] if split_seed is None else split_seed

    def _split(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Indices of the train, validation and test samples of the in-memory dataset (seeded; see the protocol)."""
        data, seed = self.config["data"], self._split_seed()
        _, labels, _, test_labels = self._arrays()
        train_idx, val_idx = train_val_split(len(labels), data["val_fraction"], seed, labels=labels)
        return (
            _take(train_idx, data["train_subset"], seed, "train_subset"),
            _take(val_idx, data["val_subset"], seed, "val_subset"),
            _take(torch.arange(len(test_labels)), data["test_subset"], seed, "test_subset"),
        )

    def _arrays(self) -> tuple[torch.Tensor, ...]:
        """``(images, labels, test_images, test_labels)``, read once per task (the model's init uses them too)."""
        if getattr(self, "_cached_arrays", None) is None:
            self._cached_arrays = self._read_arrays()
            self._check_arrays(*self._cached_arrays)
        return self._cached_arrays

    def _check_arrays(
        self, images: torch.Tensor, labels: torch.Tensor, test_images: torch.Tensor, test_labels: torch.Tensor
    ) -> None:
        """Before any epoch: labels in ``[0, model.num_classes)`` (the loss would ignore -100 and fail late on
        others), test images of the training images' size, one ``data.mean``/``data.std`` value per channel."""
        data, num_classes = self.config["data"], self.config["model"].get("num_classes")
        low = int(min(labels.min(), test_labels.min())) if len(labels) and len(test_labels) else 0
        top = int(max(labels.max(), test_labels.max())) if len(labels) and len(test_labels) else 0
        if low < 0:
            raise ValueError(f"labels must be class indices >= 0, but data.dataset {data['dataset']!r} holds {low}")
        if num_classes is not None and top >= num_classes:
            raise ValueError(
                f"labels go up to {top} but model.num_classes is {num_classes}; set --model.num_classes {top + 1}"
            )
        if tuple(test_images.shape[1:]) != tuple(images.shape[1:]):
            raise ValueError(
                f"the test images are {'x'.join(map(str, test_images.shape[1:]))} (C x H x W) but the training images "
                f"{'x'.join(map(str, images.shape[1:]))}: both splits must have one size"
            )
        for key in ("mean", "std"):
            if data[key] is not None and len(data[key]) != images.shape[1]:
                raise ValueError(
                    f"data.{key} has {len(data[key])} value(s) but the images have {images.shape[1]} channel(s): give "
                    "one per channel"
                )

    def _read_arrays(self) -> tuple[torch.Tensor, ...]:
        """The split's tensors; a sweep process shares them between its runs (:mod:`srblock.data.shared`)."""
        data = self.config["data"]
        folder = Path(data["root"] if data["root"] is not None else Path("data") / data["dataset"])  # load_cifar's
        files = file_signature(folder, folder / data["dataset"])
        key = (data["dataset"], str(folder.resolve()), data["image_size"], files)
        return shared_or_read(key, self._read_arrays_anew)

    def _read_arrays_anew(self) -> tuple[torch.Tensor, ...]:
        data = self.config["data"]
        name = data["dataset"]
        if name in ("cifar10", "cifar100"):
            from srblock.data.cifar import load_cifar

            return load_cifar(name, data["root"], download=data["download"])
        if name == "npz":
            from srblock.data.cifar import load_npz_split

            if data["root"] is None:
                raise ValueError("data.dataset 'npz' needs data.root (--data-dir) holding train.npz and test.npz")
            root = Path(data["root"])
            return (*load_npz_split(root / "train.npz"), *load_npz_split(root / "test.npz"))
        if name == "digits":
            from srblock.data.digits import load_digits

            x, y, tx, ty = load_digits(size=data["image_size"] or 16)
            # The zoo's CIFAR nets take RGB; a grey digit becomes three equal channels.
            return x.expand(-1, 3, -1, -1).contiguous(), y, tx.expand(-1, 3, -1, -1).contiguous(), ty
        raise ValueError(f"data.dataset must be cifar10, cifar100, npz, digits or imagenet, got {name!r}")

    def _folder_loaders(self) -> Loaders:
        from srblock.data.imagenet import imagenet_folder

        data = self.config["data"]
        if self.config["train"]["robustness"]:  # refused before training, not after it
            raise ValueError("train.robustness needs an in-memory dataset (CIFAR, npz, digits); set it false here")
        if data["root"] is None:
            raise ValueError("ImageNet needs data.root (--data-dir) with train/ and val/ class folders")
        size = {"crop_size": data["image_size"] or 224, "resize_size": data["resize_size"]}
        seed = self._split_seed()
        train_set = imagenet_folder(data["root"], "train", **size)
        test_set = imagenet_folder(data["root"], "val", **size)
        val_set = None
        targets = torch.tensor(train_set.targets)
        train_idx, val_idx = train_val_split(len(targets), data["val_fraction"], seed, labels=targets)
        if len(val_idx):
            val_view = imagenet_folder(data["root"], "train", **size)  # same files, evaluation transforms
            val_view.transform = test_set.transform
            val_set = torch.utils.data.Subset(val_view, _take(val_idx, data["val_subset"], seed, "val_subset"))
        train_set = torch.utils.data.Subset(train_set, _take(train_idx, data["train_subset"], seed, "train_subset"))
        test_idx = _take(torch.arange(len(test_set)), data["test_subset"], seed, "test_subset")
        test_set = torch.utils.data.Subset(test_set, test_idx)
        common = self.loader_options()
        batch, eval_batch = self.batch_sizes()
        return Loaders(
            train=make_loader(train_set, batch, train=True, **common),
            val=None if val_set is None else make_loader(val_set, eval_batch, train=False, **common),
            test=make_loader(test_set, eval_batch, train=False, **common),
        )

    # -- steps --------------------------------------------------------------------------------------------------
    def on_train_step(self, model: nn.Module, progress: float) -> None:
        """Ramp DropBlock's drop probability linearly from 0 over training (PAPER.md §2) when the model has one (and
        pass ``progress`` on to the model's own hook, see :meth:`Task.on_train_step`)."""
        super().on_train_step(model, progress)
        if self._dropblocks is None:  # looked up once: the model does not change during a run
            self._dropblocks = any(isinstance(m, DropBlock) for m in model.modules())
        if self._dropblocks:
            set_dropblock_progress(model, progress)
        self._mix_seed = seed_for(self.config["seed"], self.dist.rank, repr(progress), "mix")

    def mix(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """MixUp / CutMix of a training batch (``train.mixup_alpha``, ``cutmix_alpha``, ``mixup_switch_prob``):
        the mixed images and soft targets (``B x classes``); the batch unchanged when both alphas are 0.

        torchvision's transforms draw from the global CPU generator; it is forked and seeded with the step's seed
        (see :meth:`on_train_step`), so the draws are reproducible and paired across arms and leave every other
        random stream (dropout, DropBlock) where it was. All draws are on the host: no device sync.
        """
        train = self.config["train"]
        alphas = {"mixup": train["mixup_alpha"], "cutmix": train["cutmix_alpha"]}
        if not any(alphas.values()):
            return images, targets
        from torchvision.transforms import v2

        if self._mixer is None:
            classes = self.config["model"].get("num_classes")
            if classes is None:
                from srblock.models import get_model_entry

                classes = get_model_entry(self.config["model"]["name"]).num_classes
            kinds = {"mixup": v2.MixUp, "cutmix": v2.CutMix}
            mixers = [kinds[k](alpha=a, num_classes=classes) for k, a in alphas.items() if a > 0]
            switch = train["mixup_switch_prob"]
            self._mixer = mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers, p=[1 - switch, switch])
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(self._mix_seed if self._mix_seed is not None else self.config["seed"])
            return self._mixer(images, targets)

    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, targets = self.mix(*batch)
        logits = model(images)
        loss = F.cross_entropy(logits, targets, label_smoothing=self.config["train"]["label_smoothing"])
        labels = targets.argmax(dim=1) if targets.dim() == 2 else targets  # a mixed batch: the larger share
        acc1 = (logits.detach().argmax(dim=1) == labels).float().mean() * 100
        return loss, {"loss": loss.detach(), "acc1": acc1}

    def evaluate(self, model: nn.Module, loader: BatchLoader) -> dict[str, float]:
        loader.set_epoch(0)
        # loss sum, top-1 correct, top-5 correct, count; float64 so sums over 50k samples stay exact
        totals = torch.zeros(4, dtype=torch.float64, device=self.device)
        for batch in loader:
            images, targets = self.to_device(batch)
            logits = tta_logits(model, images, self.config["data"].get("tta")).float()  # subclasses may have none
            totals[0] += F.cross_entropy(logits, targets, reduction="sum").double()
            totals[1:3] += topk_correct(logits, targets, (1, 5)).double()
            totals[3] += len(targets)
        self.dist.all_reduce(totals)
        count = max(float(totals[3]), 1.0)
        return {
            "acc1": float(totals[1]) / count * 100,
            "acc5": float(totals[2]) / count * 100,
            "loss": float(totals[0]) / count,
            "count": int(totals[3]),
        }

    def after_test(
        self, model: nn.Module, test: BatchLoader, evaluate: Callable[[BatchLoader, str], dict[str, Any]]
    ) -> dict[str, Any]:
        """The corruption benchmark of the tested weights when ``train.robustness`` is set (see the module)."""
        if not self.config["train"]["robustness"]:
            return {}
        return self.corruption_metrics(test, evaluate)

    def corruption_metrics(
        self,
        test: BatchLoader,
        evaluate: Callable[[BatchLoader, str], dict[str, Any]],
        *,
        seed: int = 0,
        cache_dir: str | Path | None = None,
    ) -> dict[str, Any]:
        """``{"test_corruption_acc1": mCA, "test_corruption": {...}}``: top-1 on every corruption x severity of the
        ``test`` loader's images (:func:`srblock.data.corruptions.corrupted_set`), each through ``evaluate`` (the
        recipe's normalisation and test-time augmentation apply, as on the clean split). ``test_corruption`` holds
        ``acc1`` ({corruption: [severity 1..5]}), ``mean`` (per corruption), ``by_severity``, ``seed``, ``count``."""
        from srblock.data.corruptions import CORRUPTIONS, SEVERITIES, corrupted_set  # needs the analysis extra

        if not isinstance(test, InMemoryLoader):
            raise ValueError(
                "the corruption benchmark needs an in-memory test split (CIFAR, npz, digits), got "
                f"{type(test).__name__}; set train.robustness: false"
            )
        images = test.images.cpu()
        acc1: dict[str, list[float]] = {}
        count = 0
        for name in CORRUPTIONS:
            acc1[name] = []
            for severity in SEVERITIES:
                corrupted = corrupted_set(images, name, severity, seed=seed, cache_dir=cache_dir)
                metrics = evaluate(test.with_images(corrupted), f"{name} {severity}")
                acc1[name].append(metrics["acc1"])
                count = metrics["count"]
            if self.dist.is_main:
                _log.info(f"{name}: top-1 {', '.join(f'{a:.2f}' for a in acc1[name])} (severity 1-5)")
        mean = {name: sum(v) / len(v) for name, v in acc1.items()}
        by_severity = [sum(v[i] for v in acc1.values()) / len(acc1) for i in range(len(SEVERITIES))]
        return {
            "test_corruption_acc1": sum(mean.values()) / len(mean),
            "test_corruption": {
                "acc1": acc1,
                "mean": mean,
                "by_severity": by_severity,
                "seed": seed,
                "count": count,
            },
        }

    def summarize(self, val: dict[str, Any] | None, test: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "best_val_acc": None if val is None else val.get("acc1"),
            "test_acc1": None if test is None else test.get("acc1"),
            "test_acc5": None if test is None else test.get("acc5"),
        }
