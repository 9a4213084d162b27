"""DDP sharding: disjoint shards, every sample once per epoch; exact mid-epoch restart; eval covers all."""

from __future__ import annotations

import torch

from srblock.data.loader import InMemoryLoader, ShardSampler, make_loader
from srblock.data.transforms import BatchAugment


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
