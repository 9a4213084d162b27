"""DDP sharding: disjoint shards, every sample once per epoch; exact mid-epoch restart; eval covers all."""

from __future__ import annotations

import pytest
import torch

from srblock.data.loader import InMemoryLoader, ShardSampler, make_loader, seed_for
from srblock.data.transforms import BatchAugment, normalize

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _loader(world: int = 1, rank: int = 0, n: int = 40, batch: int = 8, train: bool = True) -> InMemoryLoader:
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 4, 4).contiguous()
    labels = torch.arange(n)
    augment = BatchAugment((0.0,), (1 / 255,), crop_padding=1, flip=True)
    return InMemoryLoader(images, labels, batch, train=train, augment=augment, seed=5, rank=rank, world_size=world)


def test_train_shards_are_disjoint_and_cover_each_sample_once() -> None:
    seen = []
    for rank in range(2):
        loader = _loader(world=2, rank=rank, batch=4)
        loader.set_epoch(1)
        batches = [labels for _, labels in loader]
        assert len(batches) == len(loader) == 5
        seen += torch.cat(batches).tolist()
    assert sorted(seen) == list(range(40))


def test_two_rank_augmentation_equals_one_rank() -> None:
    single = _loader(batch=8)
    single.set_epoch(2)
    by_label = {int(y): x for images, labels in single for x, y in zip(images, labels, strict=True)}
    for rank in range(2):
        shard = _loader(world=2, rank=rank, batch=4)
        shard.set_epoch(2)
        for images, labels in shard:
            for x, y in zip(images, labels, strict=True):
                assert torch.equal(x, by_label[int(y)])


def test_epochs_reshuffle_and_restart_mid_epoch_is_exact() -> None:
    loader = _loader()
    loader.set_epoch(0)
    epoch0 = [(x.clone(), y.clone()) for x, y in loader]
    loader.set_epoch(1)
    assert not torch.equal(torch.cat([y for _, y in loader]), torch.cat([y for _, y in epoch0]))
    loader.set_epoch(0, start_batch=2)
    tail = list(loader)
    assert len(tail) == len(epoch0) - 2
    for (xa, ya), (xb, yb) in zip(tail, epoch0[2:], strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_eval_shards_cover_uneven_sizes_exactly_once() -> None:
    seen = []
    for rank in range(3):
        loader = _loader(world=3, rank=rank, n=10, batch=3, train=False)
        loader.set_epoch(0)
        seen += torch.cat([y for _, y in loader]).tolist()
    assert sorted(seen) == list(range(10))


def test_train_drops_a_last_batch_of_one() -> None:
    loader = _loader(n=17, batch=8)
    loader.set_epoch(0)
    assert [len(y) for _, y in loader] == [8, 8]


@pytest.mark.parametrize("train", [False, True])
def test_with_images_keeps_the_split_and_swaps_only_the_images(train: bool) -> None:
    loader = _loader(world=2, rank=1, n=10, batch=3, train=train)
    other = loader.with_images(255 - loader.images)
    for epoch in (0, 1):
        loader.set_epoch(epoch), other.set_epoch(epoch)
        pairs = list(zip(loader, other, strict=True))
        assert pairs and len(other) == len(loader)
        for (x, y), (x2, y2) in pairs:
            assert torch.equal(y, y2)  # the same shard, order and batches
            if not train:  # (the crop's zero padding is not inverted, so training batches are compared by label)
                assert torch.allclose(x2, 255 - x)  # normalised by 1/255: the inverted images
    with pytest.raises(ValueError, match=r"images must have the split's shape \(10, 1, 4, 4\), got \(9, 1, 4, 4\)"):
        loader.with_images(loader.images[:9])


def test_shard_sampler_and_make_loader() -> None:
    sampler = ShardSampler(11, train=True, seed=0, rank=1, world_size=2)
    sampler.set_epoch(3)
    assert len(sampler) == 5 and len(set(sampler)) == 5
    sampler.set_epoch(3, start=2)
    assert len(list(sampler)) == 3
    dataset = torch.utils.data.TensorDataset(torch.arange(20.0))
    loader = make_loader(dataset, 4, train=True, seed=0, workers=0)
    loader.set_epoch(0)
    first = torch.cat([b[0] for b in loader])
    assert sorted(first.tolist()) == list(range(20))
    loader.set_epoch(0, start_batch=3)
    assert torch.equal(torch.cat([b[0] for b in loader]), first[12:])


def _per_batch_reference(loader: InMemoryLoader, epoch: int, start_batch: int = 0) -> list[tuple[torch.Tensor, ...]]:
    """The batches as the loader made them before it worked a whole epoch at a time: gather, augment, normalise
    each batch on its own (index order and draws from the same seeds)."""
    loader.sampler.set_epoch(epoch)
    indices = loader.sampler.indices()
    generator = torch.Generator().manual_seed(seed_for(loader.seed, epoch, "augment"))
    params = loader.augment.params(len(loader.images), generator)
    batches = []
    for b in range(start_batch, loader._num_batches(len(indices))):
        idx = indices[b * loader.batch_size : (b + 1) * loader.batch_size]
        images = loader.images.cpu()[idx]
        mean, std = loader.augment.mean, loader.augment.std
        x = loader.augment.apply(images, params[idx]) if loader.train else normalize(images, mean, std)
        batches.append((x, loader.labels.cpu()[idx]))
    return batches


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
@pytest.mark.parametrize(("train", "world", "start_batch"), [(True, 1, 0), (True, 2, 3), (False, 3, 1)])
def test_device_resident_batches_equal_the_per_batch_loader(device: str, train: bool, world: int, start_batch: int):
    for rank in range(world):
        loader = _loader(world=world, rank=rank, n=37, batch=4, train=train)
        loader.images, loader.labels = loader.images.to(device), loader.labels.to(device)
        loader.set_epoch(2, start_batch)
        got = list(loader)
        expected = _per_batch_reference(loader, 2, start_batch)
        assert len(got) == len(expected) == len(loader) - start_batch
        for (x, y), (ex, ey) in zip(got, expected, strict=True):
            assert x.device.type == device and x.dtype == torch.float32
            assert torch.equal(x.cpu(), ex) and torch.equal(y.cpu(), ey)


@CUDA
def test_cuda_epoch_has_no_device_sync_per_batch() -> None:
    loader = _loader(n=64, batch=8)
    loader.images, loader.labels = loader.images.cuda(), loader.labels.cuda()
    loader.set_epoch(0)
    list(loader)  # the statistics reach the device once, on first use
    torch.cuda.set_sync_debug_mode("error")
    try:
        for epoch in range(2):
            loader.set_epoch(epoch)
            for x, _ in loader:
                x.sum()
    finally:
        torch.cuda.set_sync_debug_mode("default")
