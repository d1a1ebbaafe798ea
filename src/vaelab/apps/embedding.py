"""Embeddings: the compact representation for downstream machine learning (thesis ch. 2:
"it is way more efficient to first encode the data and then run a model on the encoded data").

A VAE gives the posterior mean μ(x) and log-variance log σ²(x) of q(z|x); the log-variance
says how sure the encoder is about each coordinate (near 0 = as unsure as the prior, i.e. an
unused dimension). A plain autoencoder gives its code f_e(x) and no variance.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import VaelabError
from ..fileio import atomic_open, atomic_write_text
from .common import BATCH_SIZE, check_images, map_batches

FORMATS = (".npy", ".csv", ".npz")


def embed(model, images: np.ndarray, *, batch_size: int = BATCH_SIZE,
          progress: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 (N, C, H, W) -> (means (N, D) float32, log-variances (N, D) float32 or None for an AE)."""
    check_images(model, images)
    if not model.is_variational:
        return map_batches(model.encode_mean, model, images, batch_size=batch_size, progress=progress,
                           desc="embedding"), None
    both = map_batches(lambda x: _stack(model.encode(x)), model, images, batch_size=batch_size,
                       progress=progress, desc="embedding")
    return np.ascontiguousarray(both[:, 0]), np.ascontiguousarray(both[:, 1])


def _stack(posterior) -> torch.Tensor:
    """q(z|x) -> (B, 2, D): means and log-variances side by side, so one pass batches both."""
    return torch.stack([posterior.mean, posterior.logvar], dim=1)


def logvar_path(path: str | os.PathLike) -> Path:
    """Where :func:`save_embeddings` puts the log-variances beside a ``.npy`` of means."""
    path = Path(path)
    return path.with_name(f"{path.stem}.logvar.npy")


def check_format(path: str | os.PathLike) -> Path:
    """Refuse an output path whose suffix names no embedding format (before any work is done)."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise VaelabError(f"cannot tell the format from the suffix '{path.suffix}'; use {', '.join(FORMATS)}", path)
    return path


def save_embeddings(path: str | os.PathLike, means: np.ndarray, logvars: np.ndarray | None,
                    names: list[str]) -> list[Path]:
    """Write embeddings by suffix; returns the files written.

    ``.npy``: the means (N, D), and the log-variances in ``NAME.logvar.npy``;
    ``.csv``: a header ``name,mu_0,…,logvar_0,…`` and one row per image;
    ``.npz``: arrays ``means``, ``logvars`` (if any) and ``names`` (loads with allow_pickle=False).
    """
    path = check_format(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        written = [path]
        _save_npy(path, means)
        if logvars is not None:
            _save_npy(logvar_path(path), logvars)
            written.append(logvar_path(path))
        return written
    if suffix == ".npz":
        arrays = {"means": means, "names": np.array(names, dtype=str)}
        if logvars is not None:
            arrays["logvars"] = logvars
        with atomic_open(path, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        return [path]
    D = means.shape[1]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["name"] + [f"mu_{d}" for d in range(D)]
    header += [f"logvar_{d}" for d in range(D)] if logvars is not None else []
    writer.writerow(header)
    for i, name in enumerate(names):
        row = [repr(float(v)) for v in means[i]]
        row += [repr(float(v)) for v in logvars[i]] if logvars is not None else []
        writer.writerow([name] + row)
    atomic_write_text(path, buf.getvalue())
    return [path]


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)
