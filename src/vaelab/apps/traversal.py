"""Latent traversals: vary one latent dimension at a time and decode (Higgins et al. 2017).

Which dimensions matter? For a VAE, the ones whose posterior differs from the prior: the
KL divergence (Def. 3.1.1) of q(z_d|x) from p(z_d) = N(0, 1), averaged over images, is the
information (in nats) that dimension carries; dimensions with KL ≈ 0 are unused ("posterior
collapse") and decode to the same picture along the whole row. For a plain autoencoder,
which has no prior, the variance of each code coordinate over the images plays that role.

A traversal sets z_d = m_d + v·s_d for v in [−range, range], where N(m, s²) is the model's
latent Gaussian per dimension (the prior N(0, 1) for a VAE, so v is in prior standard
deviations), starting from an image's code or from the centre m.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import VaelabError
from ..models.losses import kl_per_dimension
from .common import BATCH_SIZE, check_image, check_images, decode_images, device_of, map_batches, to_float


def kl_per_dim(model, images: np.ndarray, *, batch_size: int = BATCH_SIZE, progress: bool = False) -> np.ndarray:
    """(D,) mean KL(q(z_d|x) ‖ p(z_d)) over ``images`` in nats, against the model's own prior (a
    mixture prior's by a seeded one-sample estimate); for an AE, the variance of each code coordinate."""
    check_images(model, images)
    if model.is_variational:
        noise = torch.Generator(device=device_of(model)).manual_seed(0)

        def per_dim(x):
            posterior = model.encode(x)
            return kl_per_dimension(posterior, model.prior(x.shape[0]), posterior.sample(noise))

        kl = map_batches(per_dim, model, images, batch_size=batch_size, progress=progress, desc="KL per dimension")
        return kl.mean(axis=0)
    codes = map_batches(model.encode_mean, model, images, batch_size=batch_size, progress=progress, desc="codes")
    return codes.var(axis=0)


def dims_by_kl(model, images: np.ndarray) -> np.ndarray:
    """Latent dimension indices, most informative first (largest mean KL; ties by index): :func:`dims_by_score`."""
    return dims_by_score(model, kl_per_dim(model, images))


def dims_by_score(model, scores: np.ndarray) -> np.ndarray:
    """Indices by ``scores`` (D,), largest first, ties by index; the coordinates the decoder reads come
    before any it does not (a hierarchical VAE's z₂)."""
    read = np.zeros(len(scores), dtype=bool)
    read[list(model.decoded_dims())] = True
    return np.lexsort((-np.asarray(scores), ~read))


def traversal_values(value_range: float = 3.0, steps: int = 9) -> np.ndarray:
    """(steps,) evenly spaced values from −range to +range."""
    if steps < 2:
        raise VaelabError(f"a traversal needs at least 2 steps, got {steps}")
    if not value_range > 0:
        raise VaelabError(f"the traversal range must be positive, got {value_range}")
    return np.linspace(-value_range, value_range, steps)


@torch.no_grad()
def traversal_latents(model, image: np.ndarray | None = None, dims=None, value_range: float = 3.0,
                      steps: int = 9) -> torch.Tensor:
    """(len(dims), steps, D) codes: row r varies dimension dims[r], the others stay at the base code."""
    D = model.latent_dim
    device = device_of(model)
    mean, cov = model.latent_gaussian()
    std = cov.diagonal().clamp_min(0).sqrt()
    if image is not None:
        image = check_image(model, image)
        base = model.encode_mean(to_float(image[None], device))[0]
    else:
        base = mean
    dims = _resolve_dims(model, image, dims)
    values = torch.as_tensor(traversal_values(value_range, steps), dtype=base.dtype, device=device)
    z = base.expand(len(dims), steps, D).clone()
    for row, d in enumerate(dims):
        z[row, :, d] = mean[d] + values * std[d]
    return z


def _resolve_dims(model, image: np.ndarray | None, dims) -> list[int]:
    D = model.latent_dim
    if dims is None:
        # Without data the best guide is the image itself; without an image, every dimension in order.
        order = dims_by_kl(model, image[None]) if image is not None else np.arange(D)
        return [int(d) for d in order[:min(D, 10)]]
    dims = [int(d) for d in np.atleast_1d(np.asarray(dims))]
    if not dims:
        raise VaelabError("give at least one latent dimension to traverse")
    bad = [d for d in dims if not 0 <= d < D]
    if bad:
        raise VaelabError(f"latent dimension {bad[0]} does not exist; this model has dimensions 0…{D - 1}")
    return dims


@torch.no_grad()
def traverse(model, image: np.ndarray | None = None, dims=None, value_range: float = 3.0,
             steps: int = 9) -> np.ndarray:
    """Decoded traversal grid: uint8 (len(dims), steps, C, H, W).

    ``image`` (uint8 (C, H, W)) gives the base code μ(image); without it the base is the centre
    of the latent Gaussian. ``dims`` defaults to the image's ten most informative dimensions
    (or the first ten without an image); pass :func:`dims_by_kl` of a data sample for the
    data set's order.
    """
    z = traversal_latents(model, image, dims, value_range, steps)
    R, S, D = z.shape
    return decode_images(model, z.reshape(R * S, D)).reshape(R, S, *model.image_shape)
