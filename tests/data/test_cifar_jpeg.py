"""cifar10-jpeg.tar.xz: decoded bit-identical to the npz, checked against its sha256, cached once next to it."""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srblock.data import cifar
from srblock.data.cifar import decode_jpeg_archive, load_cifar

from ..conftest import JPEG_SLICE, write_jpeg_tar


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _npz_slice(path: Path, per_class: int) -> dict[str, np.ndarray]:
    """The first ``per_class`` samples of every class (the npz is sorted by class, then file name)."""
    with np.load(path) as arrays:
        counts = np.bincount(arrays["y"])
        index = np.concatenate([counts[:c].sum() + np.arange(per_class) for c in range(len(counts))])
        return {key: arrays[key][index] if key != "class_names" else arrays[key] for key in arrays.files}


def test_archive_slice_decodes_bit_identical_to_the_npz(cifar10_jpeg_slice: Path, shared_data: Path) -> None:
    decoded = decode_jpeg_archive(cifar10_jpeg_slice)
    for split in ("train", "test"):
        expected = _npz_slice(shared_data / "cifar10" / f"{split}.npz", JPEG_SLICE)
        assert set(decoded[split]) == set(expected)
        for key, value in expected.items():
            assert decoded[split][key].dtype == value.dtype, key
            np.testing.assert_array_equal(decoded[split][key], value, err_msg=f"{split} {key}")


@pytest.mark.slow
def test_full_archive_is_bit_identical_to_the_npz(shared_data: Path) -> None:
    decoded = decode_jpeg_archive(shared_data / "cifar10" / "cifar10-jpeg.tar.xz")
    for split in ("train", "test"):
        with np.load(shared_data / "cifar10" / f"{split}.npz") as expected:
            for key in expected.files:
                np.testing.assert_array_equal(decoded[split][key], expected[key], err_msg=f"{split} {key}")


def test_folder_with_only_the_archive_is_decoded_once_and_cached(
    cifar10_jpeg_slice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = shutil.copy(cifar10_jpeg_slice, tmp_path / "cifar10-jpeg.tar.xz")
    monkeypatch.setitem(cifar.JPEG_ARCHIVES, "cifar10", ("cifar10-jpeg.tar.xz", _sha256(archive)))
    x, y, tx, ty = load_cifar("cifar10", tmp_path)
    assert x.shape == (10 * JPEG_SLICE, 3, 32, 32) and x.dtype == torch.uint8
    assert torch.bincount(ty).tolist() == [JPEG_SLICE] * 10 and y.dtype == torch.int64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar10-jpeg.tar.xz", "test.npz", "train.npz"]

    def no_second_decode(*args, **kwargs):
        raise AssertionError("decoded again although the npz cache exists")

    monkeypatch.setattr(cifar, "decode_jpeg_archive", no_second_decode)
    again = load_cifar("cifar10", tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(again, (x, y, tx, ty), strict=True))


def test_another_archive_is_refused_unless_its_checksum_is_beside_it(tmp_path: Path) -> None:
    archive = write_jpeg_tar(tmp_path / "cifar10-jpeg.tar.xz", per_class=2)
    with pytest.raises(ValueError, match=r"sha256 [0-9a-f]{64} is not the published f2b6b816"):
        load_cifar("cifar10", tmp_path)
    assert not (tmp_path / "train.npz").exists()
    (tmp_path / "cifar10-jpeg.tar.xz.sha256").write_text(f"{_sha256(archive)}  cifar10-jpeg.tar.xz\n")
    x, y, tx, _ = load_cifar("cifar10", tmp_path)
    assert len(x) == len(tx) == 20 and y.tolist() == [c for c in range(10) for _ in range(2)]


def test_parallel_decode_equals_pillow_one_file_at_a_time(tmp_path: Path) -> None:
    archive = write_jpeg_tar(tmp_path / "a.tar.xz", per_class=3, classes=4)
    parallel = decode_jpeg_archive(archive, workers=2)
    with tarfile.open(archive) as tar:
        members = sorted((m for m in tar if m.isfile()), key=lambda m: m.name)
        pillow = {m.name: np.asarray(Image.open(io.BytesIO(tar.extractfile(m).read())).convert("RGB")) for m in members}
    for split in ("train", "test"):
        names = [f"{split}/{f}" for f in parallel[split]["source_files"]]
        assert names == sorted(n for n in pillow if n.startswith(split))
        np.testing.assert_array_equal(parallel[split]["x"], np.stack([pillow[n] for n in names]))
        np.testing.assert_array_equal(decode_jpeg_archive(archive, workers=1)[split]["x"], parallel[split]["x"])


def test_member_outside_the_layout_names_itself(tmp_path: Path) -> None:
    archive = tmp_path / "bad.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        info = tarfile.TarInfo("train/cat.jpg")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(ValueError, match=r"<train\|test>/<class>/<name>\.jpg, got 'train/cat\.jpg'"):
        decode_jpeg_archive(archive)


def test_read_only_folder_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = write_jpeg_tar(tmp_path / "cifar10-jpeg.tar.xz", per_class=2)
    (tmp_path / "cifar10-jpeg.tar.xz.sha256").write_text(_sha256(archive))

    def read_only(arrays, path):
        raise PermissionError(f"read-only: {path}")

    monkeypatch.setattr(cifar, "_save_npz_atomic", read_only)
    with pytest.warns(UserWarning, match="could not cache"):
        x, _, tx, _ = load_cifar("cifar10", tmp_path)
    assert len(x) == len(tx) == 20 and not (tmp_path / "train.npz").exists()
