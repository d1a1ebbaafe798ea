"""The learned manifold: decoded images over a regular grid of the latent space.

For a 2-D latent this is Kingma & Welling's (2014) Fig. 4: equally spaced probabilities on the
unit square are mapped through the inverse CDF Φ⁻¹ of the Gaussian prior, so every tile stands
for the same prior mass. We use the midpoints p_i = (i + ½)/steps of ``steps`` equal-mass bins.

For more dimensions the grid spans the two main principal directions of the codes: with
codes' mean m, covariance eigenvectors u₁, u₂ and eigenvalues λ₁ ≥ λ₂, the tile (i, j) is
z = m + Φ⁻¹(p_j)·√λ₁·u₁ + Φ⁻¹(p_{steps−1−i})·√λ₂·u₂ — the same quantile grid for the
Gaussian that best fits the codes in that plane. The codes come from images (a VAE's posterior
means) or, for a plain autoencoder without images, from its fitted code Gaussian.

Tile (i, j): column j runs along the first axis left to right, row i along the second axis
from top (high) to bottom (low), as in a plot.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import VaelabError
from .common import BATCH_SIZE, check_images, decode_images, device_of, map_batches


def quantile_grid(steps: int) -> np.ndarray:
    """(steps,) Φ⁻¹((i + ½)/steps): the standard normal's quantiles at equal-mass midpoints."""
    if steps < 2:
        raise VaelabError(f"the manifold grid needs at least 2 steps per side, got {steps}")
    p = (torch.arange(steps, dtype=torch.float64) + 0.5) / steps
    return torch.special.ndtri(p).numpy()


def principal_plane(model, images: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre (D,), axes (2, D) unit vectors, scales (2,) standard deviations) of the codes' main plane."""
    if images is not None:
        check_images(model, images)
        if images.shape[0] < 3:
            raise VaelabError("finding the main principal directions needs at least 3 images")
        codes = map_batches(model.encode_mean, model, images, batch_size=BATCH_SIZE).astype(np.float64)
        centre, cov = codes.mean(axis=0), np.cov(codes, rowvar=False)
    elif not model.is_variational:
        mean, cov_t = model.latent_gaussian()
        centre, cov = mean.double().cpu().numpy(), cov_t.double().cpu().numpy()
    else:
        raise VaelabError("a VAE's prior is the same in every direction; give images to find the directions "
                          "its codes actually spread along")
    eigvals, eigvecs = np.linalg.eigh(np.atleast_2d(cov))   # ascending
    top = np.argsort(eigvals)[::-1][:2]
    return centre, eigvecs[:, top].T, np.sqrt(np.clip(eigvals[top], 0.0, None))


def manifold_latents(model, steps: int = 15, images: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """((steps, steps, D) codes, description of the axes) — see the module docstring for the layout."""
    q = quantile_grid(steps)
    x_axis, y_axis = q[None, :], q[::-1, None]   # (1, S) along columns; (S, 1) top = high
    if model.latent_dim == 2 and model.is_variational:
        z = np.stack(np.broadcast_arrays(x_axis, y_axis), axis=-1)
        return z, "prior quantiles Φ⁻¹(p) of z₀ (across) and z₁ (down)"
    if model.latent_dim < 2:
        raise VaelabError("the manifold needs a latent space with at least 2 dimensions")
    centre, axes, scales = principal_plane(model, images)
    z = centre + (x_axis * scales[0])[..., None] * axes[0] + (y_axis * scales[1])[..., None] * axes[1]
    return z, "Gaussian quantiles along the codes' first (across) and second (down) principal directions"


def decode_grid(model, z: np.ndarray) -> np.ndarray:
    """(R, K, D) codes -> uint8 (R, K, C, H, W) images E[x|z]."""
    R, K, D = z.shape
    flat = torch.as_tensor(z.reshape(R * K, D), dtype=torch.float32, device=device_of(model))
    return decode_images(model, flat).reshape(R, K, *model.image_shape)


def manifold(model, steps: int = 15, images: np.ndarray | None = None) -> np.ndarray:
    """Decoded manifold grid: uint8 (steps, steps, C, H, W)."""
    return decode_grid(model, manifold_latents(model, steps, images)[0])
