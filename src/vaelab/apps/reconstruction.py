"""Reconstruction: x ↦ f_d(f_e(x)) (Def. 2.1.7), and how far the result is from x.

For a VAE the code is the posterior mean μ(x) (its mode), decoded to E[x|z = μ(x)]. The error
is the mean squared error per image on the [0, 1] pixel scale — the thesis' MSE (Ex. 2.1.2)
divided by the number of pixel values — computed on the uint8 images the user sees, so anyone
can recompute it from the files.
"""

from __future__ import annotations

import numpy as np

from .. import metrics
from ..imageio import to_uint8
from .common import BATCH_SIZE, check_images, map_batches


def reconstruct_images(model, images: np.ndarray, *, batch_size: int = BATCH_SIZE,
                       progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, C, H, W) -> (reconstructions uint8 (N, C, H, W), per-image MSE (N,) in [0, 1] units)."""
    check_images(model, images)
    recon = to_uint8(map_batches(model.reconstruct, model, images, batch_size=batch_size, progress=progress,
                                 desc="reconstructing"))
    return recon, metrics.mse(images, recon, scale=255.0)
