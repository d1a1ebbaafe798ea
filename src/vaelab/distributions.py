"""Distributions of the VAE (thesis ch. 3): posterior, prior and the pixel likelihoods.

``DiagonalGaussian`` is the approximate posterior q(z|x) = N(μ, diag σ²) and the prior
N(0, I); its KL divergence to another diagonal Gaussian is the closed form behind
Def. 3.1.1 (see :mod:`vaelab.theory.divergences` for the thesis-level definitions and
their Monte Carlo checks). ``Bernoulli`` and ``Gaussian`` are the decoders' likelihoods
p(x|z) over pixels, summed per image so that log-probabilities are in nats per image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)


def _sum_per_example(t: torch.Tensor) -> torch.Tensor:
    """(B, ...) -> (B,): the sum over every axis but the first."""
    return t.reshape(t.shape[0], -1).sum(dim=1)


class DiagonalGaussian:
    """N(mean, diag(exp(logvar))) over the last axis; batch axes in front.

    ``sample`` uses the reparameterisation z = μ + σ·ε so gradients reach μ and log σ².
    """

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        self.mean = mean
        # Clamping keeps exp() finite when an untrained encoder emits huge values.
        self.logvar = logvar.clamp(-30.0, 20.0)

    @classmethod
    def standard(cls, shape: tuple[int, ...], device=None, dtype=None) -> "DiagonalGaussian":
        zeros = torch.zeros(shape, device=device, dtype=dtype)
        return cls(zeros, zeros)

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    @property
    def var(self) -> torch.Tensor:
        return torch.exp(self.logvar)

    def mode(self) -> torch.Tensor:
        return self.mean

    def sample(self, generator: torch.Generator | None = None, n: int | None = None) -> torch.Tensor:
        """Reparameterised sample; with ``n``, shape (n, *batch, D)."""
        shape = self.mean.shape if n is None else (n, *self.mean.shape)
        eps = torch.randn(shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * eps

    rsample = sample

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z) summed over the last axis; ``z`` may carry extra leading sample axes."""
        return -0.5 * ((z - self.mean) ** 2 / self.var + self.logvar + LOG_2PI).sum(dim=-1)

    def kl(self, other: "DiagonalGaussian | None" = None) -> torch.Tensor:
        """KL(self ‖ other) in nats, summed over the last axis; ``other=None`` is N(0, I)."""
        return self.kl_per_dim(other).sum(dim=-1)

    def kl_per_dim(self, other: "DiagonalGaussian | None" = None) -> torch.Tensor:
        if other is None:
            return 0.5 * (self.mean**2 + self.var - 1.0 - self.logvar)
        return 0.5 * (
            other.logvar - self.logvar + (self.var + (self.mean - other.mean) ** 2) / other.var - 1.0
        )

    def entropy(self) -> torch.Tensor:
        return 0.5 * (self.logvar + 1.0 + LOG_2PI).sum(dim=-1)

    def detach(self) -> "DiagonalGaussian":
        return DiagonalGaussian(self.mean.detach(), self.logvar.detach())

    def __getitem__(self, index) -> "DiagonalGaussian":
        return DiagonalGaussian(self.mean[index], self.logvar[index])


class Bernoulli:
    """Independent Bernoulli pixels with logits ℓ: log p(x|z) = −BCE(x, σ(ℓ)) summed.

    Computed from logits (log-sum-exp form) so it stays finite for any ℓ; ``x`` may be
    grey levels in [0, 1] (the continuous-Bernoulli-free usual practice) or binary.
    """

    def __init__(self, logits: torch.Tensor):
        self.logits = logits

    @property
    def mean(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.logits.float()
        if x.dim() < logits.dim():  # extra leading sample axes on the logits
            x = x.expand_as(logits)
        bce = F.binary_cross_entropy_with_logits(logits, x.float(), reduction="none")
        return -bce.flatten(start_dim=-3).sum(dim=-1)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(self.mean, generator=generator)


def discretized_gaussian_log_prob(loc: torch.Tensor, log_sigma: torch.Tensor | float, x: torch.Tensor,
                                  levels: int = 256) -> torch.Tensor:
    """log P(x) of 8-bit pixels under N(loc, σ²) per pixel, summed over (C, H, W) -> (*batch,).

    Each pixel value v ∈ {0, 1/255, …, 1} owns the bin [v − 1/510, v + 1/510]; the end bins
    extend to ∓∞, so the ``levels`` masses sum to one and the result is a true discrete
    log-probability (nats). Computed in float64 from log Φ (``log_ndtr``), accurate far into
    the tails: a bin entirely right of the mean is mirrored to the left, and its mass is
    Φ(b)·(1 − Φ(a)/Φ(b)) = exp(log Φ(b) + log(−expm1(log Φ(a) − log Φ(b)))).
    """
    loc = loc.double()
    sigma = torch.exp(torch.as_tensor(log_sigma, dtype=torch.float64, device=loc.device))
    x = x.double().expand_as(loc)
    half = 0.5 / (levels - 1)
    lower = torch.where(x <= 1e-6, torch.full_like(x, -math.inf), (x - half - loc) / sigma)
    upper = torch.where(x >= 1.0 - 1e-6, torch.full_like(x, math.inf), (x + half - loc) / sigma)
    right = lower > 0                       # the bin lies right of the mean: mirror it
    lo = torch.where(right, -upper, lower)
    hi = torch.where(right, -lower, upper)
    log_hi = torch.special.log_ndtr(hi)
    log_lo = torch.special.log_ndtr(lo)
    log_mass = log_hi + torch.log(-torch.expm1(log_lo - log_hi))
    return log_mass.flatten(start_dim=-3).sum(dim=-1)


class Gaussian:
    """Independent Gaussian pixels N(μ, σ²): log p(x|z) summed over pixels.

    With a fixed σ the negative log-likelihood is the thesis' MSE (Ex. 2.1.2) scaled by
    1/(2σ²) plus a constant; a learned σ lets the model find that balance itself.
    ``log_sigma`` is a scalar or broadcastable to the image.
    """

    def __init__(self, mean: torch.Tensor, log_sigma: torch.Tensor):
        self.loc = mean
        self.log_sigma = log_sigma

    @property
    def mean(self) -> torch.Tensor:
        return self.loc

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        loc = self.loc.float()
        log_sigma = torch.as_tensor(self.log_sigma, dtype=loc.dtype, device=loc.device)
        per_pixel = -0.5 * ((x.float() - loc) * torch.exp(-log_sigma)) ** 2 - log_sigma - 0.5 * LOG_2PI
        per_pixel = per_pixel.expand_as(loc) if per_pixel.shape != loc.shape else per_pixel
        return per_pixel.flatten(start_dim=-3).sum(dim=-1)

    def discretized_log_prob(self, x: torch.Tensor, levels: int = 256) -> torch.Tensor:
        """log P(x) of 8-bit pixels: the Gaussian's mass on each pixel's bin (see
        :func:`discretized_gaussian_log_prob`)."""
        return discretized_gaussian_log_prob(self.loc, self.log_sigma, x, levels)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        sigma = torch.exp(torch.as_tensor(self.log_sigma, dtype=self.loc.dtype, device=self.loc.device))
        noise = torch.randn(self.loc.shape, generator=generator, device=self.loc.device, dtype=self.loc.dtype)
        return (self.loc + sigma * noise).clamp(0.0, 1.0)


def discrete_log_prob(likelihood, x: torch.Tensor) -> torch.Tensor:
    """log P(x) of 8-bit images under a pixel likelihood: a probability, never a density.

    A density (the Gaussian) is scored by its mass on each pixel's 8-bit bin
    (``discretized_log_prob``); a probability mass (Bernoulli, autoregressive Bernoulli) as it
    is. Numbers computed this way are comparable across models and with a compressor's bits.
    """
    discretized = getattr(likelihood, "discretized_log_prob", None)
    return discretized(x) if discretized is not None else likelihood.log_prob(x)
