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
from .common import generator


def sample_latents(model, n: int, temperature: float = 1.0, seed: int | None = None) -> torch.Tensor:
    """(n, D) codes the model draws (``model.sample_latents``): z = m + T·L·ε for a latent Gaussian
    N(m, LLᵀ), the learned density's for a rate–distortion model."""
    if n < 1:
        raise VaelabError(f"the number of samples must be at least 1, got {n}")
    if not temperature > 0:
        raise VaelabError(f"the temperature must be positive, got {temperature}")
    return model.sample_latents(n, generator(model, seed), temperature)


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
