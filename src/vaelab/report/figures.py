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


def elbo_kl_curves(records: Sequence[dict]) -> bytes:
    """Two panels over training steps: −ELBO parts per epoch (train and validation) and the KL term."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.4))
    steps = [r for r in records if r.get("event") == "step"]
    epochs = [r for r in records if r.get("event") == "epoch"]

    def line(ax, rows, key, style, label):
        pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float)) and np.isfinite(r[key])]
        if pts:
            ax.plot(*zip(*pts), style, label=label, ms=3, lw=1)

    line(left, epochs, "val_neg_elbo", "s-", "validation −ELBO")
    line(left, epochs, "val_reconstruction", "o--", "validation reconstruction")
    line(left, epochs, "train_reconstruction", "o:", "training reconstruction")
    left.set_title("−ELBO and its reconstruction term (nats)")
    line(right, steps, "kl", "-", "training KL (per logged step)")
    line(right, epochs, "val_kl", "s-", "validation KL")
    right.set_title("KL(q(z|x) ‖ p(z)) (nats)")
    for ax in (left, right):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return figure_png(fig)


def latent_map(points: np.ndarray, labels: np.ndarray | None, class_names: Sequence[str], title: str,
               axis_names: tuple[str, str] = ("dimension 1", "dimension 2")) -> bytes:
    """Scatter of 2-D points (N, 2), coloured by integer label when there are labels."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=5, alpha=0.6)
    else:
        cmap = plt.get_cmap("tab10" if labels.max() < 10 else "tab20")
        for k in np.unique(labels):
            sel = labels == k
            name = class_names[k] if 0 <= k < len(class_names) else str(k)
            ax.scatter(points[sel, 0], points[sel, 1], s=5, alpha=0.7, color=cmap(int(k) % cmap.N), label=name)
        ax.legend(fontsize=7, markerscale=2.5, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.2)
    return figure_png(fig)


def kl_per_dimension(kl: Sequence[float], activity: Sequence[float] | None = None,
                     threshold: float = 0.01) -> bytes:
    """Left: the mean KL of every latent dimension. Right: its activity Cov_x E_q[z_d] against the
    active-unit threshold — the quantity the active count is taken from, so the picture and the
    count agree. Inactive dimensions in grey in both."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    D = len(kl)
    active = None if activity is None else [a > threshold for a in activity]
    panels = 1 if activity is None else 2
    fig, axes = plt.subplots(1, panels, figsize=(min(9.6, 2.5 + 0.18 * D) * (1 if panels == 1 else 1.6), 3.2),
                             squeeze=False)
    colours = ["#1f77b4" if (active is None or a) else "#bbbbbb" for a in (active or [True] * D)]
    left = axes[0, 0]
    left.bar(np.arange(D), kl, color=colours)
    left.set_ylabel("mean KL (nats)")
    if activity is not None:
        right = axes[0, 1]
        right.bar(np.arange(D), np.maximum(np.asarray(activity, dtype=float), 1e-6), color=colours)
        right.axhline(threshold, color="#d62728", ls="--", lw=1, label=f"threshold {threshold:g}")
        right.set_yscale("log")
        right.set_ylabel("activity Cov_x E_q[z_d]")
        right.legend(fontsize=8)
        fig.suptitle(f"{sum(active)} of {D} dimensions active (activity above {threshold:g}; grey: below)",
                     fontsize=10)
    for ax in axes[0]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # dimensions are whole numbers
        ax.set_xlabel("latent dimension")
        ax.grid(alpha=0.3, axis="y")
    return figure_png(fig)


def compare_runs(curves: dict[str, Sequence[tuple[float, float]]], bars: dict[str, dict[str, float | None]]) -> bytes:
    """Left: validation −ELBO per epoch of every run. Right: test −ELBO and the NLL bound per run."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.4, 3.8))
    for name, pts in curves.items():
        if pts:
            left.plot(*zip(*pts), "o-", ms=3, label=name)
    left.set_xlabel("epoch")
    left.set_ylabel("validation −ELBO (nats per image)")
    left.grid(alpha=0.3)
    if left.lines:
        left.legend(fontsize=7)
    names = list(bars)
    # Points, not bars: the interesting differences are small against the totals, and a bar
    # on a cut axis would exaggerate them.
    for offset, (key, label, marker) in zip((-0.1, 0.1), [("neg_elbo", "test −ELBO", "o"),
                                                          ("nll", "−log p(x) bound (IWAE)", "D")]):
        pts = [(j + offset, bars[n][key]) for j, n in enumerate(names) if bars[n].get(key) is not None]
        if pts:
            right.plot(*zip(*pts), marker, ms=7, ls="none", label=label)
    right.set_xticks(range(len(names)))
    right.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
    right.set_xlim(-0.6, len(names) - 0.4)
    right.set_ylabel("nats per image (lower is better)")
    right.grid(alpha=0.3, axis="y")
    if right.lines:
        right.legend(fontsize=7)
    fig.tight_layout()
    return figure_png(fig)
