"""Batch loaders the engine iterates: DDP-sharded, seeded per epoch, resumable mid-epoch.

Both loaders follow the engine's protocol (``__iter__``, ``__len__``, ``set_epoch(epoch, start_batch=0)``, see
:mod:`srblock.engine.task`) and shard with :class:`ShardSampler`:

* training: one permutation per epoch drawn from ``(seed, epoch)`` (the same on every rank), cut to a multiple of
  the world size (fewer than ``world_size`` samples wait for the next epoch) and dealt out round-robin, so the
  ranks see disjoint shards of equal length and every rank runs the same number of steps;
* evaluation: ``range(n)[rank::world_size]``, no padding, so every sample is evaluated exactly once in total.

:class:`InMemoryLoader` is for uint8 image tensors (CIFAR, digits) held on the training device: once per epoch it
gathers the epoch's samples, augments (see :mod:`srblock.data.transforms`) and normalises them in a few batched ops;
each batch is then a view of that, so a step costs no kernel, no host-to-device copy and no device sync.
:func:`make_loader` wraps any map-style dataset (ImageFolder, segmentation) in a ``DataLoader``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .transforms import BatchAugment

__all__ = ["InMemoryLoader", "ShardSampler", "make_loader", "seed_for"]


def seed_for(*parts: object) -> int:
    """A 63-bit seed derived from ``parts`` (e.g. ``(seed, epoch, "order")``), stable across runs and platforms."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class ShardSampler(Sampler[int]):
    """This rank's sample indices for one epoch (see the module docstring); ``start`` skips samples on resume."""

    def __init__(self, size: int, *, train: bool, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.size, self.train, self.seed = size, train, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def indices(self) -> torch.Tensor:
        """All of this rank's indices for the current epoch (ignoring ``start``)."""
        if not self.train:
            return torch.arange(self.rank, self.size, self.world_size)
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(seed_for(self.seed, self.epoch)))
        usable = self.size - self.size % self.world_size
        return order[:usable][self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.start :].tolist())

    def shard_size(self) -> int:
        """Number of indices this rank gets per epoch (ignoring ``start``)."""
        if not self.train:
            return len(range(self.rank, self.size, self.world_size))
        return self.size // self.world_size

    def __len__(self) -> int:
        return max(0, self.shard_size() - self.start)


class InMemoryLoader:
    """Batches of ``(images, labels)`` from uint8 ``N x C x H x W`` images and int64 labels held in memory.

    Args:
        images, labels: the split; moved once to ``device``.
        batch_size: samples per batch on this rank.
        train: shuffle + augment (with ``augment``) and drop a last batch of one sample (BatchNorm cannot train
            on it); otherwise in order, normalised only.
        augment: a :class:`BatchAugment`; its ``mean``/``std`` normalise evaluation batches too.
        seed: order and augmentation are drawn from ``(seed, epoch)``.
        rank, world_size: this process's shard (see :class:`ShardSampler`).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        train: bool,
        augment: BatchAugment,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str = "cpu",
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 N x C x H x W, got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images.to(device)
        self.labels = labels.to(device=device, dtype=torch.long)
        self.batch_size, self.train, self.augment, self.seed = batch_size, train, augment, seed
        self.sampler = ShardSampler(len(images), train=train, seed=seed, rank=rank, world_size=world_size)
        self.start_batch = 0

    def with_images(self, images: torch.Tensor) -> InMemoryLoader:
        """The same split over other ``images`` (a corrupted copy): labels, batch size, augmentation, seed and
        shard kept."""
        if images.shape != self.images.shape:
            raise ValueError(
                f"images must have the split's shape {tuple(self.images.shape)}, got {tuple(images.shape)}"
            )
        sampler = self.sampler
        return InMemoryLoader(
            images,
            self.labels,
            self.batch_size,
            train=self.train,
            augment=self.augment,
            seed=self.seed,
            rank=sampler.rank,
            world_size=sampler.world_size,
            device=self.images.device,
        )

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.sampler.set_epoch(epoch)
        self.start_batch = start_batch

    def _num_batches(self, n: int) -> int:
        full, rest = divmod(n, self.batch_size)
        return full + (1 if rest > (1 if self.train else 0) else 0)

    def __len__(self) -> int:
        return self._num_batches(self.sampler.shard_size())

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # The rest of this epoch's samples in batch order (the order and the draws on the host, from the seed).
        order = self.sampler.indices()
        order = order[self.start_batch * self.batch_size : self._num_batches(len(order)) * self.batch_size]
        on_device = _to_device(order, self.images.device)
        images, labels = self.images[on_device], self.labels[on_device]
        if self.train:
            # One draw per sample of the whole set, indexed by sample id: identical however the epoch is sharded.
            epoch = self.sampler.epoch
            generator = torch.Generator().manual_seed(seed_for(self.seed, epoch, "augment"))
            flip_generator = torch.Generator().manual_seed(seed_for(self.seed, "flip"))  # alternating flip's base
            params = self.augment.params(len(self.images), generator, epoch=epoch, flip_generator=flip_generator)
            images = self.augment.crop_flip(images, _to_device(params[order], self.images.device))
        images = self.augment.normalize(images)
        for start in range(0, len(order), self.batch_size):
            yield images[start : start + self.batch_size], labels[start : start + self.batch_size]


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device`` without stalling its queue (a plain copy to CUDA waits for the queue to drain)."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


class _DataLoaderAdapter:
    """A ``DataLoader`` over a :class:`ShardSampler`, with the engine's ``set_epoch``/``start_batch``."""

    def __init__(self, loader: DataLoader, sampler: ShardSampler, seed: int, rank: int) -> None:
        self.loader, self.sampler, self.seed, self.rank = loader, sampler, seed, rank

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.sampler.set_epoch(epoch, start_batch * self.loader.batch_size)
        # Worker seeds come from this generator: reseeding it makes random transforms reproducible per epoch.
        self.loader.generator.manual_seed(seed_for(self.seed, epoch, self.rank, start_batch, "workers"))

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.loader)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    train: bool,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    workers: int = 4,
    collate_fn: Callable[[Sequence[Any]], Any] | None = None,
    pin_memory: bool = False,
) -> _DataLoaderAdapter:
    """A DDP-sharded, per-epoch-seeded ``DataLoader`` over a map-style ``dataset`` (ImageFolder, segmentation...).

    Training drops an incomplete last batch (equal step counts on all ranks, no BatchNorm batch of one).
    """
    sampler = ShardSampler(len(dataset), train=train, seed=seed, rank=rank, world_size=world_size)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_fn,
        pin_memory=pin_memory,
        drop_last=train,
        generator=torch.Generator().manual_seed(seed_for(seed, rank, "workers")),
    )
    return _DataLoaderAdapter(loader, sampler, seed, rank)
