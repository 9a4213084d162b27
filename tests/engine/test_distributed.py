"""Two gloo processes (torchrun's environment, set by hand): the run agrees with one process, samples seen once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from srblock.engine import evaluate_checkpoint, load_checkpoint, train

from .conftest import tiny_config

WORKER = """
import json, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from conftest import tiny_config
from srblock.data.loader import InMemoryLoader
from srblock.engine import train

# record the training-sample indices this rank iterates in each epoch
seen = {{}}
original = InMemoryLoader.__iter__
def recording(self):
    order, done = self.sampler.indices().tolist(), self.start_batch * self.batch_size
    for images, labels in original(self):
        if self.train:
            seen.setdefault(self.sampler.epoch, []).extend(order[done : done + len(labels)])
        done += len(labels)
        yield images, labels
InMemoryLoader.__iter__ = recording
summary = train(tiny_config(Path({data!r})), {out!r}, quiet=True)
Path({out!r}).parent.joinpath("rank{rank}.json").write_text(json.dumps({{"seen": seen, "test": summary["test"]}}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_ranks_agree_with_one_process(tmp_path: Path) -> None:
    from .conftest import write_npz

    data = write_npz(tmp_path / "data", num_train=96, num_test=30, num_classes=4)
    out = tmp_path / "ddp" / "run"
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2"}
    env["OMP_NUM_THREADS"] = "1"
    procs = []
    for rank in range(2):
        script = WORKER.format(tests=str(Path(__file__).parent), data=str(data), out=str(out), rank=rank)
        rank_env = {**env, "RANK": str(rank), "LOCAL_RANK": str(rank)}
        procs.append(subprocess.Popen([sys.executable, "-c", script], env=rank_env, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    ranks = [json.loads((out.parent / f"rank{r}.json").read_text()) for r in range(2)]

    # each epoch, the ranks' shards are disjoint and cover all 72 training samples exactly once
    for epoch in ("0", "1"):
        shards = [set(r["seen"][epoch]) for r in ranks]
        assert len(shards[0]) == len(shards[1]) == 36 and not shards[0] & shards[1]
        assert shards[0] | shards[1] == set(range(72))

    # all ranks report the same test metrics, over every test sample once, equal to a 1-process evaluation
    assert ranks[0]["test"] == ranks[1]["test"] and ranks[0]["test"]["count"] == 30
    single_eval = evaluate_checkpoint(out / "checkpoint_best.pt")
    assert single_eval["acc1"] == pytest.approx(ranks[0]["test"]["acc1"])
    assert single_eval["loss"] == pytest.approx(ranks[0]["test"]["loss"], rel=1e-5)

    # and the training agrees with one process up to BatchNorm's per-rank batch statistics
    single = train(tiny_config(data), tmp_path / "single", quiet=True)
    two = load_checkpoint(out / "checkpoint_last.pt")["history"]
    one = load_checkpoint(tmp_path / "single" / "checkpoint_last.pt")["history"]
    assert [r["step"] for r in two] == [r["step"] for r in one] == [3, 6]
    assert two[-1]["train_loss"] == pytest.approx(one[-1]["train_loss"], rel=0.5)
    assert single["test"]["count"] == 30
    assert torch.distributed.is_initialized() is False
