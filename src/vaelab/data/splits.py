"""Train / validation / test splits that never overlap, kept as uint8 tensors in memory.

Data sets with an official test split keep it; the validation set is carved from the
training images. Others are split by one seeded permutation. With binarisation, the
validation and test sets get one fixed, seeded Bernoulli sample (the standard practice for
reporting likelihoods on binarised MNIST-type data); training batches are binarised by the
loader (dynamic) or once here (static).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import VaelabError
from ..imageio import convert
from .config import DataConfig
from .registry import RawData, source_for


@dataclass
class ImageSet:
    """One split: ``images`` uint8 (N, C, H, W), optional labels (N,) and factors (N, F)."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    factors: torch.Tensor | None = None
    name: str = ""
    indices: torch.Tensor | None = None  # positions in the source's image pool (train pool or official test)

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index) -> "ImageSet":
        pick = lambda t: None if t is None else t[index]  # noqa: E731
        return ImageSet(self.images[index], pick(self.labels), pick(self.factors), self.name, pick(self.indices))


@dataclass
class DataSplits:
    train: ImageSet
    val: ImageSet
    test: ImageSet
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...] = ()
    factor_names: tuple[str, ...] = ()
    description: str = ""
    extra: dict = field(default_factory=dict)

    def split(self, name: str) -> ImageSet:
        if name not in ("train", "val", "test"):
            raise VaelabError(f"unknown split '{name}'; choose train, val or test")
        return getattr(self, name)


def binarize_fixed(images: torch.Tensor, seed: int) -> torch.Tensor:
    """One seeded Bernoulli sample of uint8 grey levels: pixel = 255 with probability x/255."""
    g = torch.Generator().manual_seed(seed)
    probs = images.float().div_(255.0)
    return (torch.bernoulli(probs, generator=g) * 255).to(torch.uint8)


def _resize_all(images: np.ndarray, config: DataConfig) -> np.ndarray:
    C, H, W = images.shape[1:]
    size = config.image_size or H
    channels = config.channels or C
    if (channels, size, size if config.image_size else W) == (C, H, W):
        return images
    return np.stack([convert(img, channels, (size, size if config.image_size else W)) for img in images])


def load_data(config: DataConfig) -> DataSplits:
    raw: RawData = source_for(config.name)(config)
    if raw.images.ndim != 4 or raw.images.dtype != np.uint8 or len(raw.images) == 0:
        raise VaelabError(f"data set {config.name} produced no usable images")
    if config.name != "shapes" and not config.name.startswith("folder:"):
        raw.images = _resize_all(raw.images, config)
        if raw.test_images is not None:
            raw.test_images = _resize_all(raw.test_images, config)
    rng = np.random.default_rng(config.seed)

    def make(index: np.ndarray, images, labels, factors, name) -> ImageSet:
        t = lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a[index]))  # noqa: E731
        return ImageSet(t(images), t(labels), t(factors), name, torch.from_numpy(np.asarray(index, dtype=np.int64)))

    n = len(raw.images)
    order = rng.permutation(n)
    if raw.test_images is not None:
        n_val = int(round(config.val_fraction * n))
        val_idx, train_idx = order[:n_val], order[n_val:]
        test = make(np.arange(len(raw.test_images)), raw.test_images, raw.test_labels, None, "test")
    else:
        n_test = int(round(config.test_fraction * n))
        n_val = int(round(config.val_fraction * n))
        test_idx, val_idx, train_idx = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
        test = make(test_idx, raw.images, raw.labels, raw.factors, "test")
    train_idx = np.sort(train_idx)
    if config.limit:
        train_idx = train_idx[: config.limit]
    if len(train_idx) == 0:
        raise VaelabError(f"data set {config.name} leaves no training images after the splits")
    train = make(train_idx, raw.images, raw.labels, raw.factors, "train")
    val = make(np.sort(val_idx), raw.images, raw.labels, raw.factors, "val")
    if config.binarize != "none":
        # Distinct seeds per split so the three fixed samples are independent.
        val.images = binarize_fixed(val.images, config.seed * 3 + 1)
        test.images = binarize_fixed(test.images, config.seed * 3 + 2)
        if config.binarize == "static":
            train.images = binarize_fixed(train.images, config.seed * 3 + 3)
    return DataSplits(train, val, test, tuple(train.images.shape[1:]), raw.class_names, raw.factor_names,
                      raw.description, dict(raw.extra))
