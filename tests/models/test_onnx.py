"""ONNX export: a dynamic batch axis, checked against onnxruntime at two batch sizes."""

from __future__ import annotations

import pytest
import torch

from srblock.models import create_model, export_onnx

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def _run(path, images: torch.Tensor) -> list:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": images.numpy()})


def test_onnx_matches_pytorch_at_two_batch_sizes(tmp_path) -> None:
    sr = {"memory_init": "normal", "memory_std": 0.5}  # a non-zero memory, so the block's recall is exported too
    model = create_model("cifar_resnet18", num_classes=7, width=0.125, sr_stage=3, num_memories=4, sr_kwargs=sr)
    model.train()
    path = export_onnx(model, tmp_path / "model.onnx", (3, 32, 32))
    assert model.training  # the caller's mode is restored
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # one self-contained file, no leftovers
    (tmp_path / "plain").touch()  # the file gets a plain open()'s mode (umask applied), not a temp file's 0600
    assert path.stat().st_mode == (tmp_path / "plain").stat().st_mode
    (tmp_path / "plain").unlink()
    model.eval()
    for batch in (1, 5):
        images = torch.randn(batch, 3, 32, 32)
        (logits,) = _run(path, images)
        with torch.no_grad():
            expected = model(images)
        assert logits.shape == (batch, 7)
        torch.testing.assert_close(torch.from_numpy(logits), expected, rtol=1e-4, atol=1e-4)
    with torch.no_grad():  # the exported memory matters: without SR the logits differ
        assert not torch.allclose(model.layer3[:-1](torch.ones(1, 16, 16, 16)), model.layer3(torch.ones(1, 16, 16, 16)))


def test_bad_input_size_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"input_size must be the input's shape without the batch"):
        export_onnx(create_model("cifar_resnet18", width=0.125), tmp_path / "m.onnx", 32)
