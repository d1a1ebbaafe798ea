"""A run's configuration: ``[model]``, ``[data]`` and ``[train]``, read, migrated and written.

Format 2 (this vaelab) gives every model its own typed ``[model]`` section (the model's
config class, models/config.py): a key the model does not take is refused by name. Format 1
(vaelab before the model-contract change) wrote one flat ``[model]`` table holding every
field of every model; reading such a run drops the fields its model never used — the model
ignored them, so dropping them changes nothing the run did — and it loads as format 2.
"""

from __future__ import annotations

import os
import typing
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..config import from_dict, option, parse_toml, to_toml
from ..data.config import DataConfig
from ..errors import VaelabError
from ..fileio import atomic_write_text, read_bytes
from ..models.config import ModelConfig
from ..models.registry import config_class
from .train_config import TrainConfig

FORMAT_VERSION = 2   # of run directories; bump when files change incompatibly
READABLE_FORMATS = (1, 2)


@dataclass
class RunConfig:
    format: int = option(FORMAT_VERSION, "version of the run-directory format", min=1)
    model: ModelConfig = option(None, "the model")
    data: DataConfig = option(None, "the data")
    train: TrainConfig = option(None, "training")

    def __post_init__(self):
        self.model = self.model if self.model is not None else config_class(ModelConfig().name)()
        self.data = self.data if self.data is not None else DataConfig()
        self.train = self.train if self.train is not None else TrainConfig()


def migrate_format_1(data: dict) -> dict:
    """A format-1 config mapping -> the same run in format 2 (the model's unused fields dropped)."""
    model = data.get("model")
    if not isinstance(model, dict):
        return {**data, "format": FORMAT_VERSION}
    known = set(typing.get_type_hints(config_class(model.get("name", ModelConfig().name))))
    kept = {key: value for key, value in model.items() if key in known}
    if kept.get("objective") == "":        # format 1's "the model's default"
        kept.pop("objective")
    return {**data, "format": FORMAT_VERSION, "model": kept}


def config_from_dict(data: dict, source: str = "config") -> RunConfig:
    try:
        written = data.get("format", FORMAT_VERSION) if isinstance(data, dict) else FORMAT_VERSION
        if written not in READABLE_FORMATS:
            raise VaelabError(
                f"was written in run-directory format {written}, but this vaelab ({__version__}) reads formats "
                f"{', '.join(map(str, READABLE_FORMATS))}; use a matching vaelab version or retrain")
        if written == 1:
            data = migrate_format_1(data)
        return from_dict(RunConfig, data)
    except VaelabError as exc:
        raise VaelabError(str(exc), source) from None


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
