"""The model registry: every ``--model`` choice is one dictionary lookup (CompressAI style).

A new model is one file that defines the model class and its config dataclass and registers
them with ``@register_model("name", NameConfig)``, plus one import line in
``models/__init__.py`` (docs/DEVELOPING.md walks through it). The registry is all the rest of
vaelab knows of a model: the CLI's flags, the config reader, training, evaluation and the
applications go through it and the model's verbs, never through the model's class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch.nn as nn

from ..errors import VaelabError
from .config import ModelConfig


@dataclass(frozen=True)
class ModelEntry:
    name: str
    cls: type             # the model class: ``from_config(config, image_shape)``
    config: type          # its config dataclass (a ModelConfig)

    @property
    def description(self) -> str:
        """The first line of the model class' docstring: what `vaelab models` prints."""
        doc = (self.cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, config: type[ModelConfig]) -> Callable[[type], type]:
    """Class decorator: register a model under ``name`` with its config dataclass."""
    if not (isinstance(config, type) and issubclass(config, ModelConfig)):
        raise TypeError(f"model {name!r}: its config must be a ModelConfig dataclass")
    if config().name != name:
        raise TypeError(f"model {name!r}: its config's name defaults to {config().name!r}; declare "
                        f"`name: str = model_name({name!r})` in {config.__name__}")

    def decorate(cls: type) -> type:
        if name in _MODELS:
            raise RuntimeError(f"model {name!r} registered twice")
        if not hasattr(cls, "from_config"):
            raise TypeError(f"model {name!r}: {cls.__name__} needs a from_config(config, image_shape) classmethod")
        _MODELS[name] = ModelEntry(name, cls, config)
        cls.registry_name = name
        return cls

    return decorate


def unregister_model(name: str) -> None:
    """Remove a model (tests that register a model of their own clean up with this)."""
    _MODELS.pop(name, None)


def model_names() -> list[str]:
    return sorted(_MODELS)


def model_entry(name: str) -> ModelEntry:
    try:
        return _MODELS[name]
    except KeyError:
        raise VaelabError(f"unknown model '{name}'; choose one of: {', '.join(model_names())}") from None


def model_class(name: str) -> type:
    return model_entry(name).cls


def config_class(name: str) -> type[ModelConfig]:
    return model_entry(name).config


def build_model(config: ModelConfig, image_shape: tuple[int, int, int]) -> nn.Module:
    """Instantiate the registered model for images of shape (C, H, W)."""
    entry = model_entry(config.name)
    if not isinstance(config, entry.config):
        raise VaelabError(f"model {config.name} is configured by {entry.config.__name__}, "
                          f"not {type(config).__name__}")
    return entry.cls.from_config(config, tuple(int(s) for s in image_shape))
