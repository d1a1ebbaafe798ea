"""Weights files: safetensors in and out, checked by name and shape, never unpickled.

Everything that reads or writes tensors — a run's ``model.safetensors``, the training
checkpoint, a fine-tune's source run — goes through these functions, so a damaged or
foreign file is one clear :class:`VaelabError` wherever it is met.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from .errors import VaelabError
from .fileio import atomic_open, read_bytes


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """Atomically write a safetensors file; returns the SHA-256 of its bytes."""
    from safetensors.torch import save

    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
    with atomic_open(path, "wb") as handle:
        handle.write(data)
    return sha256(data)


def load_weights(path: Path, max_bytes: int = 8 << 30, data: bytes | None = None
                 ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file -> (tensors, metadata); any damage is a one-line error."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    data = read_bytes(path, "weights file", max_bytes) if data is None else data
    try:
        tensors = load(data)
        meta = _metadata(data)
    except (SafetensorError, ValueError, RuntimeError, OverflowError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VaelabError(f"is damaged or not a safetensors file ({str(exc).splitlines()[0][:200]})", path) from None
    return tensors, meta


def _metadata(data: bytes) -> dict[str, str]:
    # The safetensors header: 8-byte little-endian length, then JSON with "__metadata__".
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise ValueError("metadata is not a table")
    return {str(k): str(v) for k, v in meta.items()}


def check_tensors(expected: dict[str, tuple[int, ...]], tensors: dict, source: Path) -> None:
    """The tensors a file holds must be exactly the ``expected`` names and shapes."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise VaelabError(f"does not match the model in config.toml ({detail})", source)
    for name, value in tensors.items():
        if tuple(value.shape) != tuple(expected[name]):
            raise VaelabError(f"tensor {name} has shape {tuple(value.shape)}, the model expects "
                              f"{tuple(expected[name])}", source)


def load_state(model: torch.nn.Module, tensors: dict, source: Path) -> None:
    """Load ``tensors`` into ``model`` after checking names, shapes and finiteness."""
    check_tensors({k: tuple(v.shape) for k, v in model.state_dict().items()}, tensors, source)
    for name, value in tensors.items():
        if not torch.isfinite(value).all():
            raise VaelabError(f"tensor {name} holds NaN or infinite values", source)
    model.load_state_dict(tensors)
