"""The data set registry: every ``--data`` choice is one dictionary lookup.

A source is a function ``(config) -> RawData`` registered with ``@register_dataset``;
``folder:PATH`` is the one prefix form. Sources return ``uint8`` arrays (N, C, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import VaelabError
from .config import DataConfig


@dataclass
class RawData:
    """What a source returns: images as uint8 (N, C, H, W) and optional annotations."""

    images: np.ndarray
    labels: np.ndarray | None = None
    test_images: np.ndarray | None = None   # an official test split, when the data set has one
    test_labels: np.ndarray | None = None
    factors: np.ndarray | None = None       # (N, F) ground-truth generative factors (shapes)
    factor_names: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    description: str = ""
    extra: dict = field(default_factory=dict)


_SOURCES: dict[str, Callable[[DataConfig], RawData]] = {}


def register_dataset(name: str):
    def decorate(fn):
        if name in _SOURCES:
            raise RuntimeError(f"data set {name!r} registered twice")
        _SOURCES[name] = fn
        return fn

    return decorate


def dataset_names() -> list[str]:
    return sorted(n for n in _SOURCES if n != "folder") + ["folder:PATH"]


def source_for(name: str) -> Callable[[DataConfig], RawData]:
    if name.startswith("folder:"):
        return _SOURCES["folder"]
    if name in _SOURCES and name != "folder":
        return _SOURCES[name]
    raise VaelabError(f"unknown data set '{name}'; choose one of: {', '.join(dataset_names())}")
