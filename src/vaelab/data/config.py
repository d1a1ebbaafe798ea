"""The data section of a run's config (``[data]`` in ``config.toml``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option


@dataclass
class DataConfig:
    name: str = option("mnist-5k", "data set: digits, mnist-5k, shapes, fashion-mnist, mnist, cifar10 or folder:PATH")
    data_dir: str = option("", "where to look for data set files first (fashion-mnist, mnist, cifar10); empty = standard places")
    cache_dir: str = option("", "where downloads go; empty = $VAELAB_CACHE or ~/.cache/vaelab")
    download: bool = option(True, "download (with checksums) when the files are not found locally")
    binarize: str = option("none", "none; dynamic = a fresh Bernoulli sample of every training image at every step; static = one seeded sample", choices=("none", "dynamic", "static"))
    val_fraction: float = option(0.1, "fraction of the training images held out for validation", min=0.0, max=0.5)
    test_fraction: float = option(0.1, "fraction held out for testing when the data set has no official test split", min=0.0, max=0.5)
    image_size: int = option(0, "resize images to this many pixels per side (0 = native; shapes renders at 64)", min=0, max=1024)
    channels: int = option(0, "convert to 1 (grey) or 3 (RGB) channels (0 = native)", choices=(0, 1, 3))
    limit: int = option(0, "use at most this many training images (0 = all); handy for quick runs", min=0)
    shapes_count: int = option(20000, "shapes: how many images to generate", min=10, max=2_000_000)
    seed: int = option(0, "seed of the splits, the shapes generator and the fixed binarisation", min=0)
