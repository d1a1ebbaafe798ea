"""The model registry: every ``--model`` choice is one dictionary lookup (CompressAI style).

A new model is one file that defines the model class and its config dataclass and registers
them with ``@register_model("name", NameConfig)``, plus one import line in
``models/__init__.py`` (docs/DEVELOPING.md walks through it). The registry is all the rest of
vaelab knows of a model: the CLI's flags, the config reader, training, evaluation and the
applications go through it and the model's verbs, never through the model's class.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch
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


def available_memory_bytes() -> int | None:
    """Memory the kernel says a new allocation can get without swapping (MemAvailable), if known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def max_model_bytes() -> int | None:
    """The most a model's parameters and buffers may take: ``VAELAB_MAX_MODEL_BYTES`` or the available memory."""
    value = os.environ.get("VAELAB_MAX_MODEL_BYTES")
    if value:
        try:
            return int(float(value))
        except ValueError:
            raise VaelabError(f"VAELAB_MAX_MODEL_BYTES must be a number of bytes, got {value!r}") from None
    return available_memory_bytes()


def check_model_size(skeleton: nn.Module, name: str, limit: int | None) -> None:
    """Refuse a model (built on the meta device, so nothing was allocated) that would not fit in ``limit`` bytes."""
    tensors = [*skeleton.parameters(), *skeleton.buffers()]
    count = sum(t.numel() for t in tensors)
    size = sum(t.numel() * t.element_size() for t in tensors)
    if limit is not None and size > limit:
        raise VaelabError(f"this {name} model has {count:,} parameters and buffers ({size / 1e9:,.1f} GB), more than "
                          f"the {limit / 1e9:,.1f} GB of memory available for it; choose smaller --hidden, "
                          "--dense-width or latent sizes")


def build_model(config: ModelConfig, image_shape: tuple[int, int, int]) -> nn.Module:
    """Instantiate the registered model for images of shape (C, H, W).

    The model is first built on the meta device (no memory is allocated) and its size checked
    against the memory it would need: a config asking for 10⁹-unit layers is refused in one
    line instead of exhausting the machine.
    """
    entry = model_entry(config.name)
    if not isinstance(config, entry.config):
        raise VaelabError(f"model {config.name} is configured by {entry.config.__name__}, "
                          f"not {type(config).__name__}")
    shape = tuple(int(s) for s in image_shape)
    if torch.empty(0).device.type != "meta":      # not already building a skeleton
        with torch.device("meta"):
            skeleton = entry.cls.from_config(config, shape)
        check_model_size(skeleton, config.name, max_model_bytes())
    return entry.cls.from_config(config, shape)
