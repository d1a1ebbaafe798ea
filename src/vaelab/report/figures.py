"""Figures of a run: pictures a person would rather look at than read.

Every function returns PNG bytes (matplotlib's Agg backend, no display needed) or a uint8
image, so the same figure can be saved to the run directory and embedded in report.html.
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def pairs_grid(originals: np.ndarray, reconstructions: np.ndarray, ncols: int = 8, scale: int = 2) -> np.ndarray:
    """Originals and their reconstructions in alternating rows: (N, C, H, W) x2 -> (C, H', W')."""
    from ..imageio import grid

    N = originals.shape[0]
    rows = []
    for start in range(0, N, ncols):
        rows.append(originals[start:start + ncols])
        rows.append(reconstructions[start:start + ncols])
    tiles = np.concatenate([np.concatenate([r, np.zeros((ncols - len(r), *r.shape[1:]), np.uint8)]) for r in rows])
    return grid(tiles, ncols=ncols, scale=scale)


def curves(records: Sequence[dict], keys: Sequence[str], title: str = "", x_key: str = "step",
           ylabel: str = "nats per image") -> bytes:
    """Line plot of ``keys`` over ``x_key`` from metrics records (missing keys skipped)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for key in keys:
        pts = [(r[x_key], r[key]) for r in records if isinstance(r.get(key), (int, float)) and x_key in r]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, label=key.replace("_", " "), marker="o" if len(pts) < 30 else None, markersize=3)
    ax.set_xlabel(x_key)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    return figure_png(fig)


def loss_curves(records: Sequence[dict]) -> bytes:
    """Training loss per logged step and validation −ELBO per epoch, on one step axis."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    steps = [r for r in records if r.get("event") == "step"]
    epochs = [r for r in records if r.get("event") == "epoch"]
    if steps:
        ax.plot([r["step"] for r in steps], [r["loss"] for r in steps], label="training loss", lw=1)
    if epochs:
        ax.plot([r["step"] for r in epochs], [r.get("train_loss") for r in epochs], "o-", label="training loss (epoch mean)", ms=3)
        if any("val_loss" in r for r in epochs):
            ax.plot([r["step"] for r in epochs if "val_loss" in r], [r["val_loss"] for r in epochs if "val_loss" in r],
                    "s-", label="validation loss", ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per image)")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
        finite = [y for line in ax.lines for y in line.get_ydata() if np.isfinite(y)]
        if finite:  # the first steps dwarf the rest; show the interesting range
            lo, hi = np.percentile(finite, 1), np.percentile(finite, 95)
            ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.1 * (hi - lo))
    return figure_png(fig)
