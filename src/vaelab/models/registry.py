"""The model registry: every ``--model`` choice is one dictionary lookup (CompressAI style).

A new model is one file with ``@register_model("name")`` on a class that has
``from_config(config, image_shape)``, plus one import line in ``models/__init__.py``.
"""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from ..errors import VaelabError
from .config import ModelConfig

_MODELS: dict[str, type] = {}


def register_model(name: str) -> Callable[[type], type]:
    def decorate(cls: type) -> type:
        if name in _MODELS:
            raise RuntimeError(f"model {name!r} registered twice")
        _MODELS[name] = cls
        cls.registry_name = name
        return cls

    return decorate


def model_names() -> list[str]:
    return sorted(_MODELS)


def model_class(name: str) -> type:
    try:
        return _MODELS[name]
    except KeyError:
        raise VaelabError(f"unknown model '{name}'; choose one of: {', '.join(model_names())}") from None


def build_model(config: ModelConfig, image_shape: tuple[int, int, int]) -> nn.Module:
    """Instantiate the registered model for images of shape (C, H, W)."""
    return model_class(config.name).from_config(config, tuple(int(s) for s in image_shape))
