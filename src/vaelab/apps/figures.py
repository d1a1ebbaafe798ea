"""Pictures of the applications: one mosaic per figure, with captions and labels drawn by
matplotlib (Agg) around it, so a figure of a hundred tiles still renders in a moment.

Every function takes uint8 tiles (R, K, C, H, W) — R rows of K images — and returns PNG bytes.
"""

from __future__ import annotations

import io
import math
from typing import Sequence

import numpy as np

WHITE = 255


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def to_rgb(images: np.ndarray) -> np.ndarray:
    """(..., C, H, W) uint8 with C ∈ {1, 3} -> (..., 3, H, W)."""
    return images if images.shape[-3] == 3 else np.repeat(images, 3, axis=-3)


def short_name(name: str, width: int = 14) -> str:
    """The last path component of ``name``, cut to ``width`` characters with an ellipsis."""
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return base if len(base) <= width else base[:width - 1] + "…"


def annotated_grid(tiles: np.ndarray, captions: Sequence[Sequence[str]] | None = None,
                   row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None,
                   title: str | None = None, tile_px: int = 84, font_size: float = 7.0) -> bytes:
    """Tiles (R, K, C, H, W) in a grid; ``captions[r][k]`` under tile (r, k); labels left of rows,
    above columns. Tiles are shown ``tile_px`` screen pixels tall (nearest-neighbour, no smoothing)."""
    plt = _pyplot()
    R, K, C, H, W = tiles.shape
    zoom = max(1, round(tile_px / H))
    tiles = tiles.repeat(zoom, axis=-2).repeat(zoom, axis=-1)                # upscaled, so gaps are in screen pixels
    H, W = H * zoom, W * zoom
    pad = 3
    gap = math.ceil(font_size * 2.2) if captions is not None else 0         # room for one caption line
    cell_h, cell_w = H + gap + pad, W + pad
    mosaic = np.full((C, pad + R * cell_h, pad + K * cell_w), WHITE, dtype=np.uint8)
    for r in range(R):
        for k in range(K):
            y, x = pad + r * cell_h, pad + k * cell_w
            mosaic[:, y:y + H, x:x + W] = tiles[r, k]
    dpi = 100
    left = 1.3 if row_labels is not None else 0.05
    top = (0.25 if col_labels is not None else 0.05) + (0.3 if title else 0.0)
    width_in = mosaic.shape[2] / dpi
    height_in = mosaic.shape[1] / dpi
    # Wide enough for the title (about 0.6 em per character), the mosaic centred in any spare room.
    title_in = 0.6 * (font_size + 2) / 72 * len(title or "") + 0.2
    spare = max(0.0, title_in - (width_in + left + 0.05))
    left += spare / 2
    fig = plt.figure(figsize=(width_in + left + 0.05 + spare / 2, height_in + top + 0.05), dpi=dpi)
    fw, fh = fig.get_size_inches()
    ax = fig.add_axes([left / fw, 0.05 / fh, width_in / fw, height_in / fh])
    if C == 1:
        ax.imshow(mosaic[0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(mosaic.transpose(1, 2, 0), interpolation="nearest")
    ax.set_axis_off()
    text = dict(fontsize=font_size, clip_on=False)
    if captions is not None:
        for r in range(R):
            for k in range(K):
                if captions[r][k]:
                    ax.text(pad + k * cell_w + W / 2 - 0.5, pad + r * cell_h + H + gap * 0.1, captions[r][k],
                            ha="center", va="top", **text)
    if row_labels is not None:
        for r, label in enumerate(row_labels):
            ax.text(-pad, pad + r * cell_h + H / 2, label, ha="right", va="center", **text)
    if col_labels is not None:
        for k, label in enumerate(col_labels):
            ax.text(pad + k * cell_w + W / 2 - 0.5, -pad, label, ha="center", va="bottom", **text)
    if title:
        fig.suptitle(title, fontsize=font_size + 2, y=1 - 0.08 / fh, va="top")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def show_mask(images: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, C, H, W) images as RGB with the unknown pixels (mask True, any channel) painted red."""
    rgb = to_rgb(images).copy()
    unknown = np.broadcast_to(mask, images.shape).any(axis=1)          # (N, H, W)
    for channel, value in enumerate((220, 40, 40)):
        rgb[:, channel][unknown] = value
    return rgb
