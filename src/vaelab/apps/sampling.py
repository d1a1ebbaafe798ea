"""Sampling: new images from the captured distribution (thesis ch. 3: "generate new data
based on the captured probability distribution").

A VAE draws z ~ p(z) = N(0, I) and decodes it; a temperature T draws z ~ N(0, T²·I) instead
(T < 1 trades variety for typicality). A plain autoencoder draws from the Gaussian fitted to
its training codes (the model's ``latent_gaussian()``). The picture is either the
likelihood's mean E[x|z] (smooth) or one sample x ~ p(x|z) (what the model actually
generates, e.g. binary pixels for a Bernoulli decoder).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import VaelabError
from ..imageio import to_uint8
from .common import device_of, generator


def sample_latents(model, n: int, temperature: float = 1.0, seed: int | None = None) -> torch.Tensor:
    """(n, D) codes z = m + T·L·ε with ε ~ N(0, I), where N(m, LLᵀ) is the model's latent Gaussian."""
    if n < 1:
        raise VaelabError(f"the number of samples must be at least 1, got {n}")
    if not temperature > 0:
        raise VaelabError(f"the temperature must be positive, got {temperature}")
    mean, cov = model.latent_gaussian()
    D = mean.shape[0]
    # The Cholesky factor in float64 with a tiny jitter: fitted code covariances can be singular.
    cov = cov.double() + 1e-6 * torch.eye(D, dtype=torch.float64, device=cov.device)
    chol = torch.linalg.cholesky(cov).to(mean.dtype)
    eps = torch.randn((n, D), generator=generator(model, seed), device=device_of(model))
    return mean + temperature * eps @ chol.T


@torch.no_grad()
def decode_latents(model, z: torch.Tensor, mean: bool = True, seed: int | None = None) -> np.ndarray:
    """(B, D) codes -> uint8 (B, C, H, W): E[x|z] when ``mean``, else one draw x ~ p(x|z)."""
    likelihood = model.likelihood(model.decode(z))
    x = likelihood.mean if mean else likelihood.sample(generator(model, seed))
    return to_uint8(x)


def sample_images(model, n: int, temperature: float = 1.0, seed: int | None = None, mean: bool = True) -> np.ndarray:
    """Draw ``n`` new images: uint8 (n, C, H, W).

    ``mean=True`` shows E[x|z] (for a Bernoulli decoder: pixel probabilities as grey levels);
    ``mean=False`` draws the pixels too. With a ``seed`` the result is reproducible.
    """
    z = sample_latents(model, n, temperature, seed)
    # The pixel noise gets its own seed so changing ``mean`` never changes the codes.
    return decode_latents(model, z, mean, None if seed is None else seed + 1)
