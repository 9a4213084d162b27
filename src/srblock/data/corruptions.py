"""CIFAR-10-C-style common corruptions: 15 types × 5 severities, generated deterministically from any image set.

Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations", ICLR 2019
(arXiv 1903.12261). The severities are the CIFAR parameters of the authors' ``make_cifar_c.py``
(github.com/hendrycks/robustness, ``ImageNet-C/create_c``), not ImageNet's; the order of :data:`CORRUPTIONS` is
theirs (noise, blur, weather, digital). Written here with numpy/scipy/PIL and vectorised over a batch of images,
because the reference needs ImageMagick (``wand``) and OpenCV and runs one image at a time, and the
``imagecorruptions`` package fails on current numpy/scikit-image and carries ImageNet's severities.

Deviations from the reference, each small and each deliberate:

- Random numbers come from numpy's ``Generator`` seeded by ``(seed, corruption, severity, chunk)`` (chunks of
  :data:`CHUNK` images), not from the global ``np.random`` stream, so a set depends only on the images, the
  corruption, the severity and the seed (and the draws of an image only on the images of its chunk).
- ``motion_blur`` (and the streaks of ``snow``): ImageMagick's ``MotionBlurImage`` re-implemented as a line kernel,
  one-sided: tap ``i = 0 .. 2*ceil(radius)`` weighs ``exp(-i²/2σ²)`` and reads the pixel ``i`` steps along the
  blur angle (rounded to the pixel grid, edges clamped), after ImageMagick's kernel; not bit-identical to it.
- ``frost``: the reference blends crops of six frost photographs that it ships. Here the texture is procedural:
  ridged fractal noise (grainy bright veins over a haze, mean about 0.48, tinted ice-blue), five textures drawn
  from the seed, a random crop per image, blended with the reference's weights. Frost-like, not the photographs.
- ``glass_blur`` reproduces what the published code does, which is not what it says: its "swap"
  ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` assigns numpy views, so each pixel takes the value of a neighbour
  (offsets in ``{-1, 0}``: ``randint(-1, 1)`` excludes 1) and the neighbour keeps its own. Because the loop runs
  from the bottom-right corner, the copies of one pass read unmodified pixels, which makes the pass one gather;
  vectorised here (the reference loops over the pixels of each image in Python).
- Blurs use scipy's Gaussian filter (skimage's ``gaussian`` is a wrapper of it) and OpenCV's disk/Gaussian kernel
  for ``defocus_blur``, built here; ``elastic_transform``'s affine warp is a bilinear sample with mirrored edges
  (OpenCV quantises its coordinates to 1/32 pixel; this does not); ``zoom_blur`` resizes with torch's bilinear
  ``align_corners=True`` (scipy ``zoom(order=1)``'s grid). ``brightness`` adds to HSV value by scaling RGB by the
  new value over the old (the exact effect of skimage's rgb2hsv → +c → hsv2rgb).
- ``pixelate`` and ``jpeg_compression`` call PIL per image, as the reference does (its JPEG: PIL's defaults, 4:2:0).

Every corruption works on float64 ``N x H x W x 3`` in [0, 1] and ends, as the reference's ``np.uint8(...)`` does,
by truncating ``255 x`` to uint8. The parameters are for 32 x 32 images; other sizes are accepted and get the same
parameters (they are not rescaled).

>>> x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
>>> corrupt(x, "gaussian_noise", severity=3, seed=0).shape
torch.Size([4, 3, 32, 32])
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .._extras import requires_extra
from ..io import atomic_open

with requires_extra("analysis", "the corruption benchmark (scipy.ndimage)"):
    from scipy import ndimage

__all__ = [
    "CHUNK",
    "CORRUPTIONS",
    "SEVERITIES",
    "VERSION",
    "corrupt",
    "corrupted_set",
    "default_cache_dir",
    "jpeg_round_trip",
]

#: the 15 corruptions of CIFAR-10-C, in the paper's order (noise, blur, weather, digital)
CORRUPTIONS = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
SEVERITIES = (1, 2, 3, 4, 5)
#: images per random-number stream: the draws of image i depend on the images of its chunk only
CHUNK = 1000
_log = logging.getLogger(__name__)

#: the version of the corruptions' code: part of the cache key, raised whenever a corruption's output changes
VERSION = 1

# The CIFAR parameters of make_cifar_c.py, one entry per severity 1..5.
_PARAMS: dict[str, list] = {
    "gaussian_noise": [0.04, 0.06, 0.08, 0.09, 0.10],  # std
    "shot_noise": [500, 250, 100, 75, 50],  # photons per unit intensity
    "impulse_noise": [0.01, 0.02, 0.03, 0.05, 0.07],  # share of salt-and-pepper values
    "defocus_blur": [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)],  # disk radius, anti-alias sigma
    "glass_blur": [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)],  # sigma, max delta, passes
    "motion_blur": [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],  # radius, sigma
    # zoom factors, written as the reference's np.arange calls (whose float end points include 1.06 and 1.11)
    "zoom_blur": [(1, 1.06, 0.01), (1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.01), (1, 1.26, 0.01)],
    # loc, scale, zoom, threshold, blur radius, blur sigma, image weight
    "snow": [
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ],
    "frost": [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)],  # image weight, frost weight
    "fog": [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)],  # fog strength, fractal decay
    "brightness": [0.05, 0.1, 0.15, 0.2, 0.3],  # added to HSV value
    "contrast": [0.75, 0.5, 0.4, 0.3, 0.15],  # factor on the deviation from the channel mean
    # elastic: displacement scale alpha, its smoothing sigma, affine jitter (times the image size 32)
    "elastic_transform": [
        (32 * 0, 32 * 0, 32 * 0.08),
        (32 * 0.05, 32 * 0.2, 32 * 0.07),
        (32 * 0.08, 32 * 0.06, 32 * 0.06),
        (32 * 0.1, 32 * 0.04, 32 * 0.05),
        (32 * 0.1, 32 * 0.03, 32 * 0.03),
    ],
    "pixelate": [0.95, 0.9, 0.85, 0.75, 0.65],  # size factor of the box down/up-sampling
    "jpeg_compression": [80, 65, 58, 50, 40],  # JPEG quality
}

_Array = np.ndarray
_Corruption = Callable[[_Array, object, np.random.Generator], _Array]


def corrupt(images: torch.Tensor, corruption: str, severity: int, seed: int = 0) -> torch.Tensor:
    """``images`` (uint8 ``N x 3 x H x W``) with ``corruption`` (one of :data:`CORRUPTIONS`) at ``severity`` 1..5.

    Deterministic: the result depends only on the images, the corruption, the severity and ``seed``.
    """
    if corruption not in CORRUPTIONS:
        raise ValueError(f"corruption must be one of {CORRUPTIONS}, got {corruption!r}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    hwc = _hwc(images)
    fn, param = _FUNCTIONS[corruption], _PARAMS[corruption][severity - 1]
    out = np.empty_like(hwc)
    for chunk, start in enumerate(range(0, len(hwc), CHUNK)):
        rng = np.random.default_rng([seed, CORRUPTIONS.index(corruption), severity, chunk])
        x = hwc[start : start + CHUNK].astype(np.float64) / 255.0
        y = fn(x, param, rng)
        out[start : start + CHUNK] = y if y.dtype == np.uint8 else (np.clip(y, 0, 1) * 255).astype(np.uint8)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def jpeg_round_trip(images: torch.Tensor, quality: int) -> torch.Tensor:
    """``images`` (uint8 ``N x 3 x H x W``) encoded as JPEG at ``quality`` (1-95) and decoded, with PIL's defaults
    (4:2:0 chroma): ``jpeg_compression`` at any quality, not only the five of its severities."""
    if not isinstance(quality, int) or isinstance(quality, bool) or not 1 <= quality <= 95:
        raise ValueError(f"quality must be an int in 1..95, got {quality!r}")
    out = _per_image_pil(_hwc(images) / 255.0, lambda im: _jpeg(im, quality))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def _hwc(images: torch.Tensor) -> _Array:
    """uint8 ``N x 3 x H x W`` images as a numpy ``N x H x W x 3`` array (after checking them)."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be uint8 N x 3 x H x W, got {images.dtype} {tuple(images.shape)}")
    return images.detach().cpu().permute(0, 2, 3, 1).numpy()


def default_cache_dir() -> Path:
    """``$SRBLOCK_CACHE/corruptions`` when ``SRBLOCK_CACHE`` is set, else ``~/.cache/srblock/corruptions``."""
    root = os.environ.get("SRBLOCK_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "srblock") / "corruptions"


def corrupted_set(
    images: torch.Tensor, corruption: str, severity: int, seed: int = 0, cache_dir: str | Path | None = None
) -> torch.Tensor:
    """:func:`corrupt`, cached: the result is kept in ``cache_dir`` (default :func:`default_cache_dir`) as
    ``<key>/<corruption>-<severity>.npy``, the key a hash of the images, ``seed`` and :data:`VERSION`, and read from
    there on the next call with the same inputs (the 75 variants of CIFAR-10's test set take about two minutes of one
    CPU thread, and 2.3 GB). Files are written atomically; a damaged one is made again, and one that cannot be
    written (a read-only or full disk) is only warned about."""
    images = images.detach().cpu().contiguous()
    digest = hashlib.sha256(images.numpy().tobytes())
    digest.update(repr((tuple(images.shape), seed, VERSION)).encode())
    path = Path(cache_dir or default_cache_dir()) / digest.hexdigest()[:16] / f"{corruption}-{severity}.npy"
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape == tuple(images.shape) and cached.dtype == np.uint8:
                return torch.from_numpy(cached)
        except (OSError, ValueError):
            pass  # damaged (a copy cut short, say): made again below
    result = corrupt(images, corruption, severity, seed)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as f:
            np.save(f, result.numpy())
    except OSError as err:  # a read-only or full cache costs time, never the result (the end of a training run)
        _log.warning(f"could not cache {path} ({err}); set SRBLOCK_CACHE to a writable folder")
    return result


# -- helpers ------------------------------------------------------------------------------------------------------
def _gaussian(x: _Array, sigma: float, *, mode: str = "nearest", truncate: float = 4.0) -> _Array:
    """skimage's ``gaussian`` over the two spatial axes of ``N x H x W (x C)`` (its defaults: nearest, 4 sigma)."""
    sigmas = (0, sigma, sigma) + (0,) * (x.ndim - 3)
    return ndimage.gaussian_filter(x, sigmas, mode=mode, truncate=truncate)


def _shift(x: _Array, dy: _Array, dx: _Array) -> _Array:
    """``x[n, i + dy[n], j + dx[n]]`` for each image ``n`` of ``N x H x W (x C)``, indices clamped to the edges."""
    n, h, w = x.shape[:3]
    rows = np.clip(np.arange(h)[None, :] + dy[:, None], 0, h - 1)
    cols = np.clip(np.arange(w)[None, :] + dx[:, None], 0, w - 1)
    return x[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def _motion_blur(x: _Array, radius: float, sigma: float, angles: _Array) -> _Array:
    """ImageMagick's motion blur (see the module docstring), one angle in degrees per image."""
    taps = np.arange(2 * math.ceil(radius) + 1)
    weights = np.exp(-(taps**2) / (2 * sigma**2))
    weights /= weights.sum()
    rad = np.deg2rad(angles)
    out = np.zeros_like(x)
    for i, weight in zip(taps, weights, strict=True):
        dx = np.ceil(i * np.cos(rad) - 0.5).astype(np.int64)
        dy = np.ceil(i * np.sin(rad) - 0.5).astype(np.int64)
        out += weight * _shift(x, dy, dx)
    return out


def _clipped_zoom(x: _Array, factor: float) -> _Array:
    """The reference's ``clipped_zoom``: the central ``1/factor`` crop, enlarged bilinearly by ``factor``, then the
    central ``H x W`` of that (``x``: ``N x H x W (x C)``)."""
    h, w = x.shape[1:3]
    ch, cw = math.ceil(h / factor), math.ceil(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = torch.from_numpy(np.ascontiguousarray(x[:, top : top + ch, left : left + cw]))
    crop = crop.unsqueeze(-1) if x.ndim == 3 else crop
    size = (round(ch * factor), round(cw * factor))  # scipy.ndimage.zoom's output shape
    big = F.interpolate(crop.permute(0, 3, 1, 2), size=size, mode="bilinear", align_corners=True)
    big = big.permute(0, 2, 3, 1).numpy()
    big = big[..., 0] if x.ndim == 3 else big
    trim_top, trim_left = (size[0] - h) // 2, (size[1] - w) // 2
    return big[:, trim_top : trim_top + h, trim_left : trim_left + w]


def _plasma(count: int, size: int, decay: float, rng: np.random.Generator) -> _Array:
    """``count`` diamond-square height maps (``count x size x size``, each scaled to [0, 1]), as the reference's
    ``plasma_fractal`` (its quirk kept: the random term is ``wibble * U(-wibble, wibble)``)."""
    maps = np.zeros((count, size, size))
    step, wibble = size, 100.0

    def wibbled(total: _Array) -> _Array:
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = maps[:, 0:size:step, 0:size:step]
        square = corners + np.roll(corners, -1, axis=1)
        square = square + np.roll(square, -1, axis=2)
        maps[:, half:size:step, half:size:step] = wibbled(square)
        centres = maps[:, half:size:step, half:size:step]
        corners = maps[:, 0:size:step, 0:size:step]
        left = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=2)
        maps[:, 0:size:step, half:size:step] = wibbled(left)
        top = centres + np.roll(centres, 1, axis=2) + corners + np.roll(corners, -1, axis=1)
        maps[:, half:size:step, 0:size:step] = wibbled(top)
        step //= 2
        wibble /= decay
    maps -= maps.min(axis=(1, 2), keepdims=True)
    return maps / maps.max(axis=(1, 2), keepdims=True)


def _bilinear(x: _Array, rows: _Array, cols: _Array, mode: str) -> _Array:
    """``x`` (``N x H x W x C``) sampled bilinearly at ``rows``/``cols`` (``N x H x W``); outside the image the
    indices are mirrored: ``"mirror"`` about the edge pixels (OpenCV's REFLECT_101), ``"reflect"`` about the edges
    (scipy's ``reflect``)."""
    n, h, w = x.shape[:3]

    def fold(index: _Array, size: int) -> _Array:
        if mode == "mirror":
            period = max(2 * size - 2, 1)
            index = np.mod(index, period)
            return np.where(index >= size, period - index, index)
        index = np.mod(index, 2 * size)
        return np.where(index >= size, 2 * size - 1 - index, index)

    r0, c0 = np.floor(rows), np.floor(cols)
    fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]
    r0, c0 = r0.astype(np.int64), c0.astype(np.int64)
    batch = np.arange(n)[:, None, None]
    ra, rb, ca, cb = fold(r0, h), fold(r0 + 1, h), fold(c0, w), fold(c0 + 1, w)
    top = x[batch, ra, ca] * (1 - fc) + x[batch, ra, cb] * fc
    bottom = x[batch, rb, ca] * (1 - fc) + x[batch, rb, cb] * fc
    return top * (1 - fr) + bottom * fr


def _per_image_pil(x: _Array, op: Callable[[Image.Image], Image.Image]) -> _Array:
    """uint8 ``N x H x W x 3`` from ``op`` applied to each image as a PIL RGB image (as the reference does)."""
    pixels = (x * 255).round().astype(np.uint8)  # the clean uint8 images (x = uint8 / 255)
    return np.stack([np.asarray(op(Image.fromarray(img)).convert("RGB")) for img in pixels])


# -- the corruptions ----------------------------------------------------------------------------------------------
def _gaussian_noise(x: _Array, std: float, rng: np.random.Generator) -> _Array:
    return x + rng.normal(scale=std, size=x.shape)


def _shot_noise(x: _Array, photons: float, rng: np.random.Generator) -> _Array:
    return rng.poisson(x * photons) / photons


def _impulse_noise(x: _Array, amount: float, rng: np.random.Generator) -> _Array:
    # skimage's random_noise(mode="s&p"): each value independently, half salt (1) and half pepper (0)
    hit = rng.random(x.shape) < amount
    salt = rng.random(x.shape) < 0.5
    return np.where(hit, salt.astype(np.float64), x)


def _defocus_blur(x: _Array, param: tuple, rng: np.random.Generator) -> _Array:
    radius, alias_blur = param
    span = np.arange(-8, 9) if radius <= 8 else np.arange(-math.ceil(radius), math.ceil(radius) + 1)
    taps = 3 if radius <= 8 else 5  # the reference's cv2.GaussianBlur ksize
    yy, xx = np.meshgrid(span, span, indexing="ij")
    disk = (yy**2 + xx**2 <= radius**2).astype(np.float64)
    disk /= disk.sum()
    g = np.exp(-((np.arange(taps) - taps // 2) ** 2) / (2 * alias_blur**2))
    kernel = ndimage.correlate(disk, np.outer(g, g) / g.sum() ** 2, mode="mirror")
    used = np.flatnonzero(kernel.any(axis=1))  # the (symmetric) support: the rest of the 17 x 17 is zeros
    kernel = kernel[used[0] : used[-1] + 1, used[0] : used[-1] + 1]
    return ndimage.correlate(x, kernel[None, :, :, None], mode="mirror")


def _glass_blur(x: _Array, param: tuple, rng: np.random.Generator) -> _Array:
    sigma, delta, passes = param
    n, h, w = x.shape[:3]
    pixels = (_gaussian(x, sigma) * 255).astype(np.uint8)
    rows = np.arange(h - delta, delta, -1)[None, :, None]  # the reference's loop range (bottom-right first)
    cols = np.arange(w - delta, delta, -1)[None, None, :]
    batch = np.arange(n)[:, None, None]
    for _ in range(passes):
        # one (dx, dy) per pixel in the reference's draw order; high bound exclusive, as randint's
        dx, dy = rng.integers(-delta, delta, size=(2, n, rows.shape[1], cols.shape[2]))
        pixels[batch, rows, cols] = pixels[batch, rows + dy, cols + dx]  # one gather: see the module docstring
    return _gaussian(pixels / 255.0, sigma)


def _motion_blur_corruption(x: _Array, param: tuple, rng: np.random.Generator) -> _Array:
    radius, sigma = param
    return _motion_blur(x, radius, sigma, rng.uniform(-45, 45, size=len(x)))


def _zoom_blur(x: _Array, arange: tuple, rng: np.random.Generator) -> _Array:
    factors = np.arange(*arange)
    out = x.copy()
    for factor in factors:
        out += _clipped_zoom(x, float(factor))
    return out / (len(factors) + 1)


def _snow(x: _Array, param: tuple, rng: np.random.Generator) -> _Array:
    loc, scale, zoom, threshold, radius, sigma, keep = param
    n, h, w = x.shape[:3]
    layer = _clipped_zoom(rng.normal(loc=loc, scale=scale, size=(n, h, w)), zoom)
    layer[layer < threshold] = 0
    layer = (np.clip(layer, 0, 1) * 255).astype(np.uint8) / 255.0  # the reference goes through an 8-bit PNG
    layer = _motion_blur(layer, radius, sigma, rng.uniform(-135, -45, size=n))
    layer = (np.round(layer * 255) / 255.0)[..., None]
    grey = (x @ np.array([0.299, 0.587, 0.114]))[..., None]  # OpenCV's RGB2GRAY
    x = keep * x + (1 - keep) * np.maximum(x, grey * 1.5 + 0.5)
    return x + layer + layer[:, ::-1, ::-1]


def _frost_textures(rng: np.random.Generator, count: int = 5, size: int = 128) -> _Array:
    """``count x size x size x 3`` procedural frost textures in [0, 255] (see the module docstring)."""
    # rough fractals (decay 1.4: much fine grain); ridged noise, 1 - |2p - 1|, draws bright veins where p crosses 0.5
    fine = _plasma(count, size, 1.4, rng)
    veins = (1 - np.abs(2 * _plasma(count, size, 1.4, rng) - 1)) ** 3
    texture = 0.35 * fine + 0.65 * veins
    texture = (texture - texture.min(axis=(1, 2), keepdims=True)) / np.ptp(texture, axis=(1, 2), keepdims=True)
    return texture[..., None] * np.array([0.86, 0.93, 1.0]) * 255


def _frost(x: _Array, param: tuple, rng: np.random.Generator) -> _Array:
    keep, weight = param
    n, h, w = x.shape[:3]
    textures = _frost_textures(rng)
    pick = rng.integers(len(textures), size=n)
    top = rng.integers(0, textures.shape[1] - h, size=n)
    left = rng.integers(0, textures.shape[2] - w, size=n)
    rows = top[:, None, None] + np.arange(h)[None, :, None]
    cols = left[:, None, None] + np.arange(w)[None, None, :]
    frost = textures[pick[:, None, None], rows, cols]
    return (keep * x * 255 + weight * frost) / 255


def _fog(x: _Array, param: tuple, rng: np.random.Generator) -> _Array:
    strength, decay = param
    n, h, w = x.shape[:3]
    size = max(32, 1 << (max(h, w) - 1).bit_length())  # the reference's map is 32 x 32; a power of two >= H, W
    fog = _plasma(n, size, decay, rng)[:, :h, :w, None]
    top = x.max(axis=(1, 2, 3), keepdims=True)
    return (x + strength * fog) * top / (top + strength)


def _brightness(x: _Array, add: float, rng: np.random.Generator) -> _Array:
    value = x.max(axis=-1, keepdims=True)
    new = np.minimum(value + add, 1.0)
    return np.where(value > 0, x * new / np.maximum(value, 1e-12), new)  # black gets saturation 0: grey


def _contrast(x: _Array, factor: float, rng: np.random.Generator) -> _Array:
    means = x.mean(axis=(1, 2), keepdims=True)
    return (x - means) * factor + means


def _elastic_transform(x: _Array, param: tuple, rng: np.random.Generator) -> _Array:
    alpha, sigma, jitter = param
    n, h, w = x.shape[:3]
    # random affine: three points of a square around the centre moved by up to `jitter` pixels (cv2's x, y order)
    centre, half = np.array([h // 2, w // 2], dtype=np.float64), min(h, w) // 3
    source = np.stack([centre + half, [centre[0] + half, centre[1] - half], centre - half])
    target = source + rng.uniform(-jitter, jitter, size=(n, 3, 2))
    ones = np.ones((3, 1))
    forward = np.linalg.solve(np.hstack([source, ones])[None], target).transpose(0, 2, 1)  # N x 2 x 3: p -> M p
    inverse = np.linalg.inv(np.concatenate([forward, np.tile([[[0, 0, 1]]], (n, 1, 1))], axis=1))[:, :2]
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    src_x = inverse[:, 0, 0, None, None] * xx + inverse[:, 0, 1, None, None] * yy + inverse[:, 0, 2, None, None]
    src_y = inverse[:, 1, 0, None, None] * xx + inverse[:, 1, 1, None, None] * yy + inverse[:, 1, 2, None, None]
    warped = _bilinear(x, src_y, src_x, "mirror")
    # elastic: a smoothed random displacement field, scaled by alpha
    dx = _gaussian(rng.uniform(-1, 1, size=(n, h, w)), sigma, mode="reflect", truncate=3) * alpha
    dy = _gaussian(rng.uniform(-1, 1, size=(n, h, w)), sigma, mode="reflect", truncate=3) * alpha
    return _bilinear(warped, yy + dy, xx + dx, "reflect")


def _pixelate(x: _Array, factor: float, rng: np.random.Generator) -> _Array:
    h, w = x.shape[1:3]
    small = (int(w * factor), int(h * factor))
    return _per_image_pil(x, lambda im: im.resize(small, Image.BOX).resize((w, h), Image.BOX))


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(buffer)


def _jpeg_compression(x: _Array, quality: int, rng: np.random.Generator) -> _Array:
    return _per_image_pil(x, lambda im: _jpeg(im, quality))


_FUNCTIONS: dict[str, _Corruption] = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "defocus_blur": _defocus_blur,
    "glass_blur": _glass_blur,
    "motion_blur": _motion_blur_corruption,
    "zoom_blur": _zoom_blur,
    "snow": _snow,
    "frost": _frost,
    "fog": _fog,
    "brightness": _brightness,
    "contrast": _contrast,
    "elastic_transform": _elastic_transform,
    "pixelate": _pixelate,
    "jpeg_compression": _jpeg_compression,
}
