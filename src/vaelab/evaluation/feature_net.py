"""A small classifier whose hidden layer is the feature space for sample-quality metrics.

Fréchet distances and precision/recall compare images in the feature space of a network
that knows the data. The standard choice (Inception-v3, "FID") needs weights that cannot be
downloaded here and were trained on ImageNet photographs, not 28×28 clothing, so vaelab
trains its own: a two-stage convolutional classifier, fitted for a few epochs on the run's
training split and labels. Its numbers are comparable between models evaluated on the
same data set with the same feature network, and **not** comparable with published FID.

The weights are cached in the run directory (``feature_net.safetensors``) together with a
fingerprint of everything that determines them (data settings, architecture, training
recipe); a cache with another fingerprint is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

FEATURE_FILE = "feature_net.safetensors"
FEATURE_DIM = 128
ARCH_VERSION = 1
EPOCHS = 3
MAX_TRAIN_IMAGES = 20_000
BATCH_SIZE = 128
# Data settings that say where files are, not what the images are.
_LOCATION_FIELDS = {"data_dir", "cache_dir", "download"}


class FeatureNet(nn.Module):
    """(B, C, H, W) in [0, 1] -> logits (B, classes); ``features`` -> (B, 128)."""

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, kernel_size=4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),                          # any H×W -> (B, 64·4·4)
            nn.Linear(64 * 16, FEATURE_DIM), nn.ReLU(),
        )
        self.classify = nn.Linear(FEATURE_DIM, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.body(x))


def fingerprint(data_config, image_shape: tuple[int, int, int], classes: int, seed: int) -> str:
    """A short hash of everything the feature network's weights depend on."""
    data = {k: v for k, v in asdict(data_config).items() if k not in _LOCATION_FIELDS}
    recipe = {"arch": ARCH_VERSION, "data": data, "image_shape": list(image_shape), "classes": classes,
              "epochs": EPOCHS, "max_train_images": MAX_TRAIN_IMAGES, "batch_size": BATCH_SIZE, "seed": seed}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def train_feature_net(images: torch.Tensor, labels: torch.Tensor, classes: int, *, binarize: bool,
                      seed: int = 0, progress: Callable[[int], None] | None = None) -> FeatureNet:
    """Fit a :class:`FeatureNet` on uint8 (N, C, H, W) images and (N,) labels (CPU, seconds).

    With ``binarize`` every batch is a fresh Bernoulli sample of the grey levels, so the
    network knows the binary images that binarised runs are evaluated on.
    """
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if images.shape[0] > MAX_TRAIN_IMAGES:
        keep = torch.randperm(images.shape[0], generator=g)[:MAX_TRAIN_IMAGES]
        images, labels = images[keep], labels[keep]
    net = FeatureNet(images.shape[1], classes)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    labels = labels.long()
    net.train()
    for _ in range(EPOCHS):
        order = torch.randperm(images.shape[0], generator=g)
        for start in range(0, images.shape[0], BATCH_SIZE):
            idx = order[start:start + BATCH_SIZE]
            x = images[idx].float().div_(255.0)
            if binarize:
                x = (torch.rand(x.shape, generator=g) < x).float()
            loss = F.cross_entropy(net(x), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if progress is not None:
                progress(len(idx))
    return net.eval()


def accuracy(net: FeatureNet, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    correct = 0
    with torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            x = images[start:start + batch_size].float().div_(255.0)
            correct += int((net(x).argmax(dim=1) == labels[start:start + batch_size]).sum())
    return correct / max(images.shape[0], 1)


def load_or_train(run_dir: Path, data_config, splits, seed: int = 0,
                  progress_factory: Callable[[int, str], Callable[[int], None]] | None = None
                  ) -> tuple[FeatureNet, dict]:
    """The run's feature network (cached in ``run_dir/feature_net.safetensors``) and its facts.

    ``splits`` is the run's :class:`~vaelab.data.DataSplits` with labels. Returns the network
    and ``{"path", "fingerprint", "test_accuracy", "cached", "train_images", "epochs"}``.
    """
    from ..errors import VaelabError
    from ..weights import load_weights, save_tensors

    classes = int(max(int(splits.train.labels.max()), len(splits.class_names) - 1)) + 1
    key = fingerprint(data_config, splits.image_shape, classes, seed)
    path = Path(run_dir) / FEATURE_FILE
    net = FeatureNet(splits.image_shape[0], classes)
    if path.is_file():
        try:
            tensors, meta = load_weights(path)
        except VaelabError:  # a damaged cache is rebuilt, never trusted
            tensors, meta = {}, {}
        if meta.get("fingerprint") == key:
            net.load_state_dict(tensors)
            info = json.loads(meta.get("info", "{}"))
            return net.eval(), {**info, "path": str(path), "fingerprint": key, "cached": True}
    progress = progress_factory(min(len(splits.train), MAX_TRAIN_IMAGES) * EPOCHS, "feature network") \
        if progress_factory else None
    net = train_feature_net(splits.train.images, splits.train.labels, classes,
                            binarize=data_config.binarize != "none", seed=seed, progress=progress)
    # The evaluation splits are already binarised where the run binarises: score on the test split as is.
    held_out = splits.test if len(splits.test) and splits.test.labels is not None else splits.val
    info = {"test_accuracy": accuracy(net, held_out.images, held_out.labels.long()),
            "train_images": min(len(splits.train), MAX_TRAIN_IMAGES), "epochs": EPOCHS, "classes": classes}
    save_tensors(path, net.state_dict(), {"fingerprint": key, "info": json.dumps(info)})
    return net, {**info, "path": str(path), "fingerprint": key, "cached": False}


def features(net: FeatureNet, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Float images (N, C, H, W) in [0, 1] or uint8 -> (N, 128) float64 features."""
    out = []
    with torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            x = images[start:start + batch_size]
            x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
            out.append(net.features(x).double())
    return torch.cat(out) if out else torch.empty(0, FEATURE_DIM, dtype=torch.float64)


__all__ = ["FEATURE_DIM", "FEATURE_FILE", "FeatureNet", "accuracy", "features", "fingerprint", "load_or_train",
           "train_feature_net"]
