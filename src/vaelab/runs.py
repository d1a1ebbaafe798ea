"""Run directories: the config of a run, its files, and loading a trained model.

A run directory (DESIGN.md §2) holds ``config.toml``, ``model.safetensors`` (weights
only), ``checkpoint.safetensors`` + ``checkpoint.json`` (everything needed to resume),
``metrics.jsonl``, figures and ``report.html``. Nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .config import from_dict, option, parse_toml, to_toml
from .data.config import DataConfig
from .errors import VaelabError
from .fileio import atomic_write_text, read_bytes
from .models.config import ModelConfig
from .training.config import TrainConfig

FORMAT_VERSION = 1  # of run directories; bump when files change incompatibly

CONFIG_FILE = "config.toml"
MODEL_FILE = "model.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
CHECKPOINT_JSON = "checkpoint.json"
METRICS_FILE = "metrics.jsonl"


@dataclass
class RunConfig:
    format: int = option(FORMAT_VERSION, "version of the run-directory format", min=1)
    model: ModelConfig = option(None, "the model")
    data: DataConfig = option(None, "the data")
    train: TrainConfig = option(None, "training")

    def __post_init__(self):
        self.model = self.model if self.model is not None else ModelConfig()
        self.data = self.data if self.data is not None else DataConfig()
        self.train = self.train if self.train is not None else TrainConfig()


def config_from_dict(data: dict, source: str = "config") -> RunConfig:
    try:
        config = from_dict(RunConfig, data)
    except VaelabError as exc:
        raise VaelabError(str(exc), source) from None
    if config.format != FORMAT_VERSION:
        raise VaelabError(
            f"was written in run-directory format {config.format}, but this vaelab ({__version__}) reads format "
            f"{FORMAT_VERSION}; use a matching vaelab version or retrain", source)
    return config


def read_config(path: str | os.PathLike) -> RunConfig:
    path = Path(path)
    text = read_bytes(path, "config file", max_bytes=1 << 20)
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise VaelabError("is not UTF-8 text", path) from None
    return config_from_dict(parse_toml(decoded, str(path)), str(path))


def write_config(path: str | os.PathLike, config: RunConfig) -> None:
    atomic_write_text(path, to_toml(config, header=f"vaelab {__version__} run configuration"))


def run_path(run_dir: str | os.PathLike) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise VaelabError("is not a run directory (it does not exist); train one with `vaelab train --out DIR`", run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise VaelabError(f"is not a run directory (no {CONFIG_FILE})", run_dir)
    return run_dir


def model_metadata(model) -> dict[str, str]:
    """What ``model.safetensors`` carries besides tensors: enough to rebuild the model."""
    return {"vaelab_version": __version__, "format": str(FORMAT_VERSION), "model": model.registry_name,
            "image_shape": json.dumps(list(model.image_shape))}


def load_model(run_dir: str | os.PathLike, device: str = "cpu", weights: str = MODEL_FILE):
    """Rebuild a run's model from ``config.toml`` and its weights; eval mode."""
    import torch

    from .models import build_model
    from .training.checkpoint import load_weights

    run_dir = run_path(run_dir)
    config = read_config(run_dir / CONFIG_FILE)
    tensors, meta = load_weights(run_dir / weights)
    try:
        shape = tuple(int(s) for s in json.loads(meta.get("image_shape", "")))
        if not (len(shape) == 3 and all(0 < s <= 65536 for s in shape)):
            raise ValueError("not three sizes in 1..65536")
    except (ValueError, TypeError, RecursionError):
        raise VaelabError("lacks a valid image_shape in its metadata; was it written by vaelab?", run_dir / weights) from None
    if meta.get("model") != config.model.name:
        raise VaelabError(f"holds a {meta.get('model')!r} model but config.toml says {config.model.name!r}",
                          run_dir / weights)
    if meta.get("format") != str(FORMAT_VERSION):
        raise VaelabError(f"was written in run-directory format {meta.get('format')!r}, but this vaelab "
                          f"({__version__}) reads format {FORMAT_VERSION}; use a matching vaelab version or retrain",
                          run_dir / weights)
    # Compare shapes on a skeleton that allocates nothing: an edited config.toml or image_shape
    # (say, a hidden layer of 10⁹ units) must be refused, not allocated.
    try:
        with torch.device("meta"):
            skeleton = build_model(config.model, shape)
    except VaelabError as exc:  # the model config.toml describes cannot be built
        raise VaelabError(str(exc), run_dir / CONFIG_FILE) from None
    _check_tensors({k: tuple(v.shape) for k, v in skeleton.state_dict().items()}, tensors, run_dir / weights)
    model = build_model(config.model, shape)
    _load_state(model, tensors, run_dir / weights)
    model.run_dir = run_dir
    model.run_config = config
    return model.to(device).eval()


def _check_tensors(expected: dict[str, tuple[int, ...]], tensors: dict, source: Path) -> None:
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


def _load_state(model, tensors: dict, source: Path) -> None:
    import torch

    _check_tensors({k: tuple(v.shape) for k, v in model.state_dict().items()}, tensors, source)
    for name, value in tensors.items():
        if not torch.isfinite(value).all():
            raise VaelabError(f"tensor {name} holds NaN or infinite values", source)
    model.load_state_dict(tensors)
