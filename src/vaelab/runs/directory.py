"""Run directories: their files, and loading a trained model with its config.

A run directory (DESIGN.md §2) holds ``config.toml``, ``model.safetensors`` (weights
only), ``checkpoint.safetensors`` + ``checkpoint.json`` (everything needed to resume),
``metrics.jsonl``, figures and ``report.html``. Nothing is unpickled.

:func:`open_run` returns a :class:`Run` — the directory, its config and its model — for code
that needs to know where a model came from (its data set, whether it was trained on
binarised images, where to write beside it); :func:`load_model` returns the model alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import VaelabError
from ..weights import check_tensors, load_state, load_weights
from .config import FORMAT_VERSION, READABLE_FORMATS, RunConfig, read_config

CONFIG_FILE = "config.toml"
MODEL_FILE = "model.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
CHECKPOINT_JSON = "checkpoint.json"
METRICS_FILE = "metrics.jsonl"


@dataclass
class Run:
    """A trained run: its directory, its config and its model (eval mode)."""

    dir: Path
    config: RunConfig
    model: object

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def binarized(self) -> bool:
        """Whether the model was trained on binarised images (its likelihood is of binary images)."""
        return self.config.data.binarize != "none"


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


def open_run(run_dir: str | os.PathLike, device: str = "cpu", weights: str = MODEL_FILE) -> Run:
    """Rebuild a run's model from ``config.toml`` and its weights (eval mode), with its config."""
    import torch

    from ..models import build_model

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
    if meta.get("format") not in {str(f) for f in READABLE_FORMATS}:
        raise VaelabError(f"was written in run-directory format {meta.get('format')!r}, but this vaelab "
                          f"({__version__}) reads formats {', '.join(map(str, READABLE_FORMATS))}; use a matching "
                          "vaelab version or retrain", run_dir / weights)
    # Compare shapes on a skeleton that allocates nothing: an edited config.toml or image_shape
    # (say, a hidden layer of 10⁹ units) must be refused, not allocated.
    try:
        with torch.device("meta"):
            skeleton = build_model(config.model, shape)
    except VaelabError as exc:  # the model config.toml describes cannot be built
        raise VaelabError(str(exc), run_dir / CONFIG_FILE) from None
    check_tensors({k: tuple(v.shape) for k, v in skeleton.state_dict().items()}, tensors, run_dir / weights)
    model = build_model(config.model, shape)
    load_state(model, tensors, run_dir / weights)
    return Run(run_dir, config, model.to(device).eval())


def load_model(run_dir: str | os.PathLike, device: str = "cpu", weights: str = MODEL_FILE):
    """The model of a run directory, in eval mode (:func:`open_run` without the config)."""
    return open_run(run_dir, device, weights).model
