"""Segmentation metrics: one confusion matrix over the split, NaN-mean over absent classes, torchmetrics agrees."""

from __future__ import annotations

import math

import pytest
import torch

from srblock.engine.segmentation import ConfusionMatrix, confusion_matrix, metrics_from_confusion


def test_miou_of_a_hand_made_confusion_matrix():
    # rows = truth, cols = prediction. Class 3 is in neither truth nor prediction; class 2 only predicted.
    cm = torch.tensor([[5, 1, 0, 0], [2, 6, 2, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    m = metrics_from_confusion(cm, ["a", "b", "c", "d"])
    iou = {"a": 5 / (6 + 7 - 5), "b": 6 / (10 + 7 - 6), "c": 0.0, "d": None}
    assert m["iou"]["d"] is None and m["acc"]["c"] is None  # undefined, not 0
    for name in "abc":
        assert m["iou"][name] == pytest.approx(iou[name])
    assert m["miou"] == pytest.approx((iou["a"] + iou["b"] + 0.0) / 3)  # d left out, c (false positives) counts 0
    assert m["macc"] == pytest.approx((5 / 6 + 6 / 10) / 2)
    assert m["aacc"] == pytest.approx(11 / 16)


def test_ignore_pixels_are_skipped_and_batches_accumulate():
    torch.manual_seed(0)
    pred = torch.randint(0, 5, (4, 7, 9))
    target = torch.randint(0, 5, (4, 7, 9))
    target[:, :2] = 255
    acc = ConfusionMatrix(5)
    for p, t in zip(pred, target, strict=True):
        acc.update(p[None], t[None])
    whole = confusion_matrix(pred, target, 5)
    assert torch.equal(acc.matrix, whole)
    assert int(whole.sum()) == int((target != 255).sum())


def test_logits_are_argmaxed():
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    cm = ConfusionMatrix(3)
    cm.update(logits, target)
    assert torch.equal(cm.matrix, confusion_matrix(logits.argmax(1), target, 3))


def test_out_of_range_labels_are_an_error():
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        confusion_matrix(torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, 7, 255]), 3)


def test_all_reduce_is_a_no_op_without_distributed():
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([0, 1]), torch.tensor([0, 0]))
    assert torch.equal(cm.all_reduce().matrix, torch.tensor([[1, 1], [0, 0]]))


def test_agrees_with_torchmetrics():
    from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassJaccardIndex

    torch.manual_seed(1)
    k = 6
    target = torch.randint(0, k - 1, (3, 20, 30))  # class k-1 never in the truth ...
    pred = torch.where(torch.rand(3, 20, 30) < 0.6, target, torch.randint(0, k - 2, (3, 20, 30)))
    target[:, :, :3] = 255  # ... and never predicted (pred < k-1); some ignore pixels
    ours = ConfusionMatrix(k)
    ours.update(pred, target)
    m = ours.compute()
    ref_cm = MulticlassConfusionMatrix(k, ignore_index=255)(pred, target)
    assert torch.equal(ours.matrix, ref_cm)
    ref_iou = MulticlassJaccardIndex(k, ignore_index=255, average=None)(pred, target)
    present = [i for i in range(k) if m["iou"][str(i)] is not None]
    assert present == list(range(k - 1))
    assert torch.allclose(
        torch.tensor([m["iou"][str(i)] for i in present], dtype=torch.float64), ref_iou[present].double(), atol=1e-6
    )
    assert m["miou"] == pytest.approx(float(ref_iou[present].mean()), abs=1e-6)
    assert not math.isnan(m["aacc"])


_DDP_SCRIPT = """
import sys, torch, torch.distributed as dist, torch.multiprocessing as mp
from srblock.engine.segmentation import ConfusionMatrix, confusion_matrix

def worker(rank, port, pred, target):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    cm = ConfusionMatrix(4)
    cm.update(pred[rank::2], target[rank::2])  # each rank sees its shard of the split
    assert torch.equal(cm.all_reduce().matrix, confusion_matrix(pred, target, 4)), rank
    dist.destroy_process_group()

if __name__ == "__main__":
    torch.manual_seed(0)
    pred, target = torch.randint(0, 4, (6, 5, 5)), torch.randint(0, 4, (6, 5, 5))
    mp.spawn(worker, args=(int(sys.argv[1]), pred, target), nprocs=2, join=True)
    print("ok")
"""


@pytest.mark.slow
def test_all_reduce_sums_the_shards_of_two_processes(tmp_path):
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = tmp_path / "ddp_confmat.py"
    script.write_text(_DDP_SCRIPT)
    result = subprocess.run([sys.executable, str(script), str(port)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]
