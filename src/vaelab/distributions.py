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

    std = property(lambda self: torch.exp(0.5 * self.logvar), doc="σ = exp(½ log σ²)")
    var = property(lambda self: torch.exp(self.logvar), doc="σ² = exp(log σ²)")

    def mode(self) -> torch.Tensor:
        return self.mean

    def sample(self, generator: torch.Generator | None = None, n: int | None = None) -> torch.Tensor:
        """Reparameterised sample; with ``n``, shape (n, *batch, D)."""
        shape = self.mean.shape if n is None else (n, *self.mean.shape)
        eps = torch.randn(shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.reparameterise(eps)

    rsample = sample

    def reparameterise(self, eps: torch.Tensor) -> torch.Tensor:
        """Latents z = μ + σ·ε for given standard normal noise ε (…, *batch, D)."""
        return self.mean + self.std * eps

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z) summed over the last axis; ``z`` may carry extra leading sample axes."""
        return self.log_prob_per_dim(z).sum(dim=-1)

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        """(…, D) log N(z_d; μ_d, σ²_d) of every coordinate (broadcasting leading sample axes)."""
        return -0.5 * ((z - self.mean) ** 2 / self.var + self.logvar + LOG_2PI)

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


class GaussianMixture:
    """p(z) = Σ_k π_k N(z; μ_k, diag σ²_k) over the last axis: a mixture prior (MoG, VampPrior).

    means, logvars: (K, D); logits: (K,) unnormalised log π. ``log_prob`` broadcasts over any
    leading axes of z; there is no closed-form KL to a Gaussian, so the ELBO's KL becomes the
    Monte Carlo term log q(z|x) − log p(z) (models/losses.py).
    """

    def __init__(self, means: torch.Tensor, logvars: torch.Tensor, logits: torch.Tensor):
        self.means = means
        self.logvars = logvars.clamp(-30.0, 20.0)
        self.logits = logits

    @property
    def log_weights(self) -> torch.Tensor:
        return torch.log_softmax(self.logits, dim=-1)

    def _component_log_probs(self, z: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., K, D): log N(z_d; μ_kd, σ²_kd) for every component and dimension."""
        z = z.unsqueeze(-2)
        return -0.5 * ((z - self.means) ** 2 / torch.exp(self.logvars) + self.logvars + LOG_2PI)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) summed over the last axis: (..., D) -> (...)."""
        return torch.logsumexp(self.log_weights + self._component_log_probs(z).sum(-1), dim=-1)

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., D): the log density of each coordinate under its marginal mixture."""
        return torch.logsumexp(self.log_weights[:, None] + self._component_log_probs(z), dim=-2)

    def sample(self, generator: torch.Generator | None = None, n: int = 1) -> torch.Tensor:
        """(n, D) draws: a component by its weight, then its Gaussian."""
        pick = torch.multinomial(torch.softmax(self.logits.detach().float(), -1), n, replacement=True,
                                 generator=generator)
        eps = torch.randn((n, self.means.shape[-1]), generator=generator, device=self.means.device,
                          dtype=self.means.dtype)
        return self.means[pick] + torch.exp(0.5 * self.logvars[pick]) * eps

    def moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixture's mean (D,) and covariance (D, D): the Gaussian that matches them."""
        w = torch.softmax(self.logits, dim=-1)
        mean = w @ self.means
        centred = self.means - mean
        cov = (centred.T * w) @ centred + torch.diag(w @ torch.exp(self.logvars))
        return mean, cov


class PerImageMixture:
    """q(z|x) = Σ_c π_c(x) N(z; μ_c(x), diag σ²_c(x)): a mixture whose weights and components
    differ per image — cond-vae's q(y|x) q(z|x, y) over its generic latent [z, onehot(y)].

    log_pi: (B, C) log π; components: a DiagonalGaussian with mean and logvar (C, B, D). The
    IWAE bound samples from it and scores its density (``sample``, ``log_prob``); it has no
    closed-form KL, and ``mean`` is the mixture's mean (used for the batch size only).
    """

    def __init__(self, log_pi: torch.Tensor, components: DiagonalGaussian):
        self.log_pi = torch.log_softmax(log_pi, dim=-1)
        self.components = components

    @property
    def mean(self) -> torch.Tensor:
        """(B, D) Σ_c π_c μ_c."""
        return torch.einsum("bc,cbd->bd", self.log_pi.exp().to(self.components.mean.dtype), self.components.mean)

    def sample(self, generator: torch.Generator | None = None, n: int | None = None) -> torch.Tensor:
        """(n, B, D) draws (or (B, D) without ``n``): a component c ~ π(x) per draw, then its Gaussian."""
        count = 1 if n is None else n
        B = self.log_pi.shape[0]
        pick = torch.multinomial(self.log_pi.exp().float(), count, replacement=True, generator=generator).T  # (n, B)
        images = torch.arange(B, device=pick.device).expand_as(pick)
        mean, std = self.components.mean[pick, images], self.components.std[pick, images]        # (n, B, D)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        z = mean + std * eps
        return z if n is not None else z[0]

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x) = log Σ_c π_c N(z; μ_c, σ²_c): (..., B, D) -> (..., B).

        A running log-sum-exp over the components: the memory of one component's densities, not C's."""
        total = None
        for c in range(self.log_pi.shape[1]):
            term = self.log_pi[:, c] + self.components[c].log_prob(z)
            total = term if total is None else torch.logaddexp(total, term)
        return total


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


class ContinuousBernoulli:
    """The continuous Bernoulli (Loaiza-Ganem & Cunningham 2019): a proper density on [0, 1] per pixel.

    Training a VAE with the Bernoulli's cross-entropy on grey levels maximises something that is
    not a likelihood (the Bernoulli is a distribution on {0, 1}); the continuous Bernoulli adds
    the normaliser that makes it one on [0, 1]:

        p(x | η) = C(η) · λ^x (1 − λ)^(1−x),   λ = σ(η),   C(η) = η / tanh(η/2)   (C(0) = 2)

    with mean 1/(1 − e^{−η}) − 1/η (not λ) and CDF F(x) = expm1(xη)/expm1(η). Everything is in
    terms of the logit η, in float64 where a cancellation could bite, with series near η = 0.
    """

    SMALL = 1e-2     # |η| below which the closed forms are replaced by their Taylor series

    def __init__(self, logits: torch.Tensor):
        self.logits = logits

    def _eta(self) -> torch.Tensor:
        return self.logits.double().clamp(-80.0, 80.0)

    @staticmethod
    def log_normaliser(eta: torch.Tensor) -> torch.Tensor:
        """log C(η) = log(η / tanh(η/2)); 2 + η²/6 − η⁴/360 near 0."""
        small = eta.abs() < ContinuousBernoulli.SMALL
        safe = torch.where(small, torch.ones_like(eta), eta)
        exact = torch.log(safe.abs()) - torch.log(torch.tanh(safe / 2).abs())
        series = torch.log(2 + eta**2 / 6 - eta**4 / 360)
        return torch.where(small, series, exact)

    @property
    def mean(self) -> torch.Tensor:
        """E[x] = 1/(1 − e^{−η}) − 1/η; 1/2 + η/12 − η³/720 near 0."""
        eta = self._eta()
        small = eta.abs() < self.SMALL
        safe = torch.where(small, torch.ones_like(eta), eta)
        exact = -1.0 / torch.expm1(-safe) - 1.0 / safe
        series = 0.5 + eta / 12 - eta**3 / 720
        return torch.where(small, series, exact).to(self.logits.dtype)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) per image (summed over C, H, W), in nats of a density on [0, 1]^(C·H·W)."""
        logits = self.logits.float()
        if x.dim() < logits.dim():
            x = x.expand_as(logits)
        bce = F.binary_cross_entropy_with_logits(logits, x.float(), reduction="none")
        per_pixel = -bce + self.log_normaliser(logits.double().clamp(-80.0, 80.0)).float()
        return per_pixel.flatten(start_dim=-3).sum(dim=-1)

    def cdf(self, x: torch.Tensor) -> torch.Tensor:
        """F(x) = expm1(xη)/expm1(η), written so that neither side overflows; x for η = 0."""
        eta = self._eta()
        x = x.double().expand_as(eta)
        small = eta.abs() < 1e-6
        safe = torch.where(small, torch.ones_like(eta), eta)
        negative = torch.expm1(x * safe) / torch.expm1(safe)
        positive = torch.exp((x - 1) * safe) * torch.expm1(-x * safe) / torch.expm1(-safe)
        return torch.where(small, x, torch.where(safe < 0, negative, positive))

    def discretized_log_prob(self, x: torch.Tensor, levels: int = 256) -> torch.Tensor:
        """log P(x) of 8-bit pixels: the density's mass on each pixel value's bin of width 1/255
        (the end bins [0, 1/510] and [1 − 1/510, 1]); the masses of the 256 values sum to one."""
        eta = self._eta()
        x = x.double().expand_as(eta)
        half = 0.5 / (levels - 1)
        lower, upper = (x - half).clamp(0.0, 1.0), (x + half).clamp(0.0, 1.0)
        mass = self.cdf(upper) - self.cdf(lower)
        return torch.log(mass.clamp_min(1e-300)).flatten(start_dim=-3).sum(dim=-1)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Inverse-CDF draws x = log1p(u·expm1(η))/η, u ~ U(0, 1)."""
        eta = self._eta()
        u = torch.rand(eta.shape, generator=generator, device=eta.device, dtype=torch.float64)
        small = eta.abs() < 1e-6
        safe = torch.where(small, torch.ones_like(eta), eta)
        x = torch.log1p(u * torch.expm1(safe)) / safe
        return torch.where(small, u, x).clamp(0.0, 1.0).to(self.logits.dtype)


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
