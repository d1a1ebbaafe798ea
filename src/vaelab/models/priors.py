"""Priors p(z) of a VAE: the standard normal, a learned mixture of Gaussians, the VampPrior.

The thesis' VAE (ch. 3) takes p(z) = N(0, I). A richer prior lets the aggregate posterior
be what it wants to be instead of being pulled to one round blob, which raises the ELBO:

- ``mog``: a mixture of K diagonal Gaussians whose means, variances and weights are learned.
- ``vamp``: the VampPrior (Tomczak & Welling 2018), p(z) = (1/K) Σ_k q(z | u_k), the encoder's
  own posteriors at K learned pseudo-inputs u_k — "variational mixture of posteriors", the
  prior that the optimal prior (the aggregate posterior) is approximated by.

Either has no closed-form KL to the posterior, so the ELBO's KL becomes the Monte Carlo term
log q(z|x) − log p(z) (models/losses.py, :func:`~vaelab.models.losses.kl_divergence`); the
likelihood bound, sampling, traversals, the codec and the explorer use the same prior.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..config import option
from ..distributions import DiagonalGaussian, GaussianMixture


def prior_option():
    return option("standard", "prior p(z): standard (N(0, I)), mog (a learned mixture of Gaussians) or vamp "
                              "(the VampPrior: the posteriors of learned pseudo-inputs)",
                  choices=("standard", "mog", "vamp"))


def prior_components_option():
    return option(50, "mog and vamp priors: mixture components K (pseudo-inputs for vamp)", min=1, max=4096)


class MixturePrior(nn.Module):
    """p(z) = Σ_k π_k N(μ_k, diag σ²_k), every parameter learned; spread like N(0, I) at the start."""

    def __init__(self, components: int, latent_dim: int):
        super().__init__()
        self.means = nn.Parameter(torch.randn(components, latent_dim))
        self.logvars = nn.Parameter(torch.zeros(components, latent_dim))
        self.logits = nn.Parameter(torch.zeros(components))

    def forward(self, encode) -> GaussianMixture:
        return GaussianMixture(self.means, self.logvars, self.logits)


class VampPrior(nn.Module):
    """p(z) = (1/K) Σ_k q(z | u_k) for K learned pseudo-inputs u_k = σ(w_k) in [0, 1]^(C×H×W)."""

    def __init__(self, components: int, image_shape: tuple[int, int, int]):
        super().__init__()
        # Around the grey middle of the pixel range at the start: σ(0.1·ε) ≈ 0.5 ± 0.025.
        self.pseudo_logits = nn.Parameter(0.1 * torch.randn(components, *image_shape))

    def pseudo_inputs(self) -> torch.Tensor:
        return torch.sigmoid(self.pseudo_logits)

    def forward(self, encode) -> GaussianMixture:
        posterior = encode(self.pseudo_inputs())
        K = posterior.mean.shape[0]
        return GaussianMixture(posterior.mean, posterior.logvar, torch.zeros(K, device=posterior.mean.device))


def make_prior(config, latent_dim: int, image_shape: tuple[int, int, int]) -> nn.Module | None:
    """The prior module a config asks for (None: the standard normal, which has no parameters)."""
    kind = getattr(config, "prior", "standard")
    K = getattr(config, "prior_components", 1)
    if kind == "mog":
        return MixturePrior(K, latent_dim)
    if kind == "vamp":
        return VampPrior(K, image_shape)
    return None


def standard_prior(batch: int, latent_dim: int, device) -> DiagonalGaussian:
    """N(0, I) broadcast to (batch, D)."""
    return DiagonalGaussian.standard((batch, latent_dim), device=device, dtype=torch.float32)
