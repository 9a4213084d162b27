"""CIFAR-10/100 as uint8 tensors in memory: from ``train.npz``/``test.npz`` arrays or through torchvision.

Accepted layouts under ``root`` (first match wins, in ``root`` then ``root/<dataset>``):

* ``train.npz`` and ``test.npz``, each with ``x`` uint8 ``N x H x W x C`` and ``y`` integer labels — the format of
  ``../shared/data/cifar10``;
* ``cifar10-jpeg.tar.xz`` alone (the 60,000 CIFAR-10 JPEGs, ``train/<class>/NNNN.jpg`` and ``test/<class>/...``, see
  ``../shared/data/cifar10/README.md``): checked against its published sha256, decoded once with Pillow (bit-identical
  to that folder's npz) in parallel processes, and cached next to it as ``train.npz``/``test.npz``. It is 18.5 MB
  against the npz's 170 MB, small enough to carry to a GPU machine that receives only the repository. Another archive
  of that layout (a subset, for tests) is accepted with its own checksum in ``cifar10-jpeg.tar.xz.sha256`` beside it;
* torchvision's ``root/cifar-10-batches-py`` / ``root/cifar-100-python`` folders (``download=True`` fetches them).
"""

from __future__ import annotations

import io
import os
import sys
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_open, file_sha256

__all__ = ["JPEG_ARCHIVES", "NUM_CLASSES", "cache_jpeg_archive", "decode_jpeg_archive", "load_cifar", "load_npz_split"]

NUM_CLASSES = {"cifar10": 10, "cifar100": 100}
_TV_FOLDER = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
#: JPEG archives :func:`load_cifar` decodes when no npz is there: file name and sha256 (``../shared/data/cifar10``).
JPEG_ARCHIVES = {
    "cifar10": ("cifar10-jpeg.tar.xz", "f2b6b81696e2cf7867dbfc61e7e24708f4a237eb50a88d79c7d2bda4c1db661b"),
}
_SPLITS = ("train", "test")


def load_npz_split(path: str | Path, num_classes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images uint8 N x C x H x W, labels int64 N)`` from an npz with ``x`` (N x H x W x C uint8) and ``y``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if not zipfile.is_zipfile(path):  # np.load would try to unpickle it (and advise allow_pickle=True)
        raise ValueError(f"{path} is not an npz file (truncated, or not written by numpy.savez); rewrite it")
    try:
        with np.load(path) as arrays:
            missing = {"x", "y"} - set(arrays.files)
            if missing:
                raise ValueError(
                    f"{path} must hold arrays 'x' (N x H x W x C uint8) and 'y'; missing {sorted(missing)}"
                )
            x, y = arrays["x"], arrays["y"]
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(f"{path} is damaged ({type(err).__name__}: {err}); rewrite it") from None
    except ValueError as err:
        if "missing" in str(err):
            raise
        raise ValueError(
            f"{path} holds Python objects, not plain arrays: srblock never unpickles a data file; save 'x' and 'y' as "
            "numeric arrays"
        ) from None
    return _as_tensors(x, y, path, num_classes)


def _as_tensors(
    x: np.ndarray, y: np.ndarray, where: object, num_classes: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"{where}: 'x' must be uint8 N x H x W x C with C in (1, 3), got {x.dtype} {x.shape}")
    y = np.asarray(y).reshape(-1)
    if len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{where}: 'y' must hold {len(x)} integer labels, got {y.dtype} {y.shape}")
    if num_classes is not None and len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{where}: labels must be in [0, {num_classes}), got [{y.min()}, {y.max()}]")
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    return images, torch.from_numpy(y.astype(np.int64))


def _decode_jpegs(blobs: Sequence[bytes]) -> np.ndarray:
    """JPEG bytes → one uint8 ``N x H x W x 3`` array, decoded as the shared data's README says (one worker's share)."""
    from PIL import Image

    images = [np.asarray(Image.open(io.BytesIO(blob)).convert("RGB")) for blob in blobs]
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(f"the JPEGs must all have one size, got {sorted(shapes)}")
    return np.stack(images)


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def decode_jpeg_archive(path: str | Path, *, workers: int | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Decode a tar of ``<split>/<class>/<name>.jpg`` files (split ``train`` and ``test``) into npz-style arrays.

    Returns ``{split: {"x": uint8 N x H x W x 3, "y": uint8 N, "class_names", "source_files"}}``: samples in sorted
    path order, ``y`` the index of the class in the sorted class names, ``source_files`` ``"<class>/<name>.jpg"``.
    For ``cifar10-jpeg.tar.xz`` this equals ``../shared/data/cifar10/{train,test}.npz`` bit for bit. ``workers``
    processes decode (default: the usable CPU cores, at most 16, from 2,000 images on; 1 decodes in this process).
    Files other than ``.jpg`` are skipped; a ``.jpg`` outside that layout is a ``ValueError``.
    """
    path = Path(path)
    members: dict[str, list[tuple[str, str, bytes]]] = {split: [] for split in _SPLITS}
    with tarfile.open(path) as archive:  # streamed: xz allows no random access
        for member in archive:
            parts = Path(member.name).parts
            if not member.isfile() or not member.name.lower().endswith((".jpg", ".jpeg")):
                continue
            if len(parts) != 3 or parts[0] not in _SPLITS:
                raise ValueError(f"{path}: expected members <train|test>/<class>/<name>.jpg, got {member.name!r}")
            members[parts[0]].append((parts[1], parts[2], archive.extractfile(member).read()))
    classes = {split: sorted({c for c, _, _ in items}) for split, items in members.items()}
    if not members["train"] or classes["train"] != classes["test"]:
        raise ValueError(
            f"{path}: train/ and test/ must hold JPEGs of the same classes, "
            f"got {classes['train']} and {classes['test']}"
        )
    names = classes["train"]
    for items in members.values():
        items.sort(key=lambda item: item[:2])
    blobs = [blob for split in _SPLITS for _, _, blob in members[split]]
    if workers is None:  # below ~2000 images, starting the processes costs more than it saves
        workers = min(_usable_cores(), 16) if len(blobs) >= 2000 else 1
    if workers > 1:
        size = -(-len(blobs) // (4 * workers))  # a few chunks per worker even out their speeds
        with ProcessPoolExecutor(workers) as pool:
            images = np.concatenate(
                list(pool.map(_decode_jpegs, [blobs[i : i + size] for i in range(0, len(blobs), size)]))
            )
    else:
        images = _decode_jpegs(blobs)
    out, start = {}, 0
    for split in _SPLITS:
        items = members[split]
        out[split] = {
            "x": images[start : start + len(items)],
            "y": np.array([names.index(c) for c, _, _ in items], dtype=np.uint8 if len(names) <= 256 else np.int64),
            "class_names": np.array(names),
            "source_files": np.array([f"{c}/{name}" for c, name, _ in items]),
        }
        start += len(items)
    return out


def _save_npz_atomic(arrays: dict[str, np.ndarray], path: Path) -> None:
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)  # uncompressed: decoding is the slow part, reading this back is instant


def cache_jpeg_archive(
    archive: str | Path, sha256: str | None = None, *, workers: int | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """Check ``archive`` against ``sha256``, decode it (:func:`decode_jpeg_archive`), write ``train.npz``/``test.npz``.

    The npz files go next to the archive (written atomically; an existing one is never replaced). A read-only folder
    only warns: the decoded arrays are returned either way.
    """
    archive = Path(archive)
    if sha256 is not None:
        actual = file_sha256(archive)
        if actual != sha256:
            raise ValueError(
                f"{archive}: sha256 {actual} is not the published {sha256}; the copy is damaged or another file "
                f"(copy cifar10-jpeg.tar.xz again from ../shared/data/cifar10, whose README lists the checksum)"
            )
    arrays = decode_jpeg_archive(archive, workers=workers)
    for split, split_arrays in arrays.items():
        target = archive.parent / f"{split}.npz"
        if target.exists():
            continue
        try:
            _save_npz_atomic(split_arrays, target)
        except OSError as err:
            warnings.warn(
                f"could not cache the decoded {archive.name} as {target} ({err}); it is decoded again next time",
                stacklevel=2,
            )
    return arrays


def _from_torchvision(dataset: str, root: Path, download: bool) -> tuple[torch.Tensor, ...]:
    from torchvision import datasets

    cls = datasets.CIFAR10 if dataset == "cifar10" else datasets.CIFAR100
    out = []
    for train in (True, False):
        split = cls(str(root), train=train, download=download)
        out += [torch.from_numpy(split.data.transpose(0, 3, 1, 2).copy()), torch.tensor(split.targets)]
    return tuple(out)


def _expected_sha256(archive: Path, published: str) -> str:
    """The checksum in ``<archive>.sha256`` (``sha256sum`` format; another archive of the layout), or ``published``."""
    sidecar = archive.with_name(archive.name + ".sha256")
    if not sidecar.is_file():
        return published
    words = sidecar.read_text().split()
    if not words or len(words[0]) != 64:
        raise ValueError(f"{sidecar} must start with a sha256 (64 hex digits, as sha256sum writes), got {words[:1]}")
    return words[0].lower()


def _has_npz(folder: Path) -> bool:
    return (folder / "train.npz").is_file() and (folder / "test.npz").is_file()


def load_cifar(
    dataset: str, root: str | Path | None = None, *, download: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(train_images, train_labels, test_images, test_labels)`` of CIFAR-10 or CIFAR-100 (uint8 N x 3 x 32 x 32).

    ``root`` defaults to ``./data/<dataset>``. A folder holding only ``cifar10-jpeg.tar.xz`` is decoded into npz
    files there on first use (see the module docstring). With ``download=True`` and nothing found, torchvision
    downloads the set into ``root`` (needs internet).
    """
    if dataset not in NUM_CLASSES:
        raise ValueError(f"dataset must be one of {sorted(NUM_CLASSES)}, got {dataset!r}")
    root = Path(root) if root is not None else Path("data") / dataset
    classes = NUM_CLASSES[dataset]
    for folder in (root, root / dataset):
        archive = folder / JPEG_ARCHIVES[dataset][0] if dataset in JPEG_ARCHIVES else None
        decoded = None
        if not _has_npz(folder) and archive is not None and archive.is_file():
            print(f"decoding {archive} into {folder}/train.npz, test.npz (once)", file=sys.stderr, flush=True)
            decoded = cache_jpeg_archive(archive, _expected_sha256(archive, JPEG_ARCHIVES[dataset][1]))
        if _has_npz(folder):
            return (*load_npz_split(folder / "train.npz", classes), *load_npz_split(folder / "test.npz", classes))
        if decoded is not None:  # the folder was read-only
            return tuple(t for s in _SPLITS for t in _as_tensors(decoded[s]["x"], decoded[s]["y"], archive, classes))
    if (root / _TV_FOLDER[dataset]).is_dir() or download:
        return _from_torchvision(dataset, root, download)
    jpeg = f" or {JPEG_ARCHIVES[dataset][0]}" if dataset in JPEG_ARCHIVES else ""
    raise FileNotFoundError(
        f"{dataset} not found under {root.resolve()}: looked for train.npz + test.npz (arrays x uint8 N x H x W x C, "
        f"y){jpeg} in {root} and {root / dataset}, and for torchvision's {_TV_FOLDER[dataset]}/ folder. Point "
        f"--data-dir at one of those, or add --data.download true to let torchvision download it there "
        f"(needs internet)."
    )
