"""Fixtures of the evaluation tests: a linear-Gaussian model with a closed-form likelihood,
and a tiny run on the shapes data set (which has known generative factors)."""

from __future__ import annotations

import math

import pytest
import torch

from vaelab.distributions import DiagonalGaussian


class DensityGaussian:
    """Independent Gaussian pixels with a *density* log_prob (what PPCA's marginal is about)."""

    def __init__(self, loc: torch.Tensor, log_sigma: float):
        self.loc, self.log_sigma = loc, log_sigma

    @property
    def mean(self) -> torch.Tensor:
        return self.loc

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        per = -0.5 * ((x - self.loc) / math.exp(self.log_sigma)) ** 2 - self.log_sigma - 0.5 * math.log(2 * math.pi)
        return per.flatten(start_dim=-3).sum(dim=-1)


class LinearGaussianModel(torch.nn.Module):
    """Probabilistic PCA with the VAE verbs: z ~ N(0, I_m), x = W z + μ + ε, ε ~ N(0, σ² I_d).

    Images are shaped (C, H, W) = (1, 1, d). The exact marginal is N(μ, W Wᵀ + σ² I); the exact
    posterior has a full covariance, and the encoder here is deliberately imperfect: a
    diagonal Gaussian whose mean is shifted and whose variances are inflated, so every bound
    is strictly below log p(x) at small K.
    """

    is_variational = True

    def __init__(self, d: int = 6, m: int = 2, sigma: float = 0.05, shift: float = 0.5, inflate: float = 2.0,
                 seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("W", 0.12 * torch.randn(d, m, generator=g))
        self.register_buffer("mu", 0.5 + 0.05 * torch.randn(d, generator=g))
        self.sigma, self.d, self.m = sigma, d, m
        self.image_shape, self.latent_dim = (1, 1, d), m
        eye = torch.eye(m, dtype=torch.float64)
        W = self.W.double()
        post_cov = sigma**2 * torch.linalg.inv(W.T @ W + sigma**2 * eye)          # (m, m)
        self.register_buffer("A", (post_cov @ W.T / sigma**2).float())             # posterior mean = A (x − μ)
        self.register_buffer("q_logvar", torch.log(post_cov.diagonal() * inflate).float())
        self.register_buffer("q_shift", (shift * post_cov.diagonal().sqrt()).float())

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        v = x.reshape(x.shape[0], self.d) - self.mu
        mean = v @ self.A.T + self.q_shift
        return DiagonalGaussian(mean, self.q_logvar.expand_as(mean))

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x).mean

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.W.T + self.mu).reshape(z.shape[0], 1, 1, self.d)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode(z)

    def likelihood(self, x_hat: torch.Tensor) -> DensityGaussian:
        return DensityGaussian(x_hat, math.log(self.sigma))

    def prior(self, batch: int = 1) -> DiagonalGaussian:
        return DiagonalGaussian.standard((batch, self.m))

    # -- closed forms (float64) ---------------------------------------------------------------
    def exact_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 1, d) -> (B,) log N(x; μ, W Wᵀ + σ² I)."""
        W = self.W.double()
        cov = W @ W.T + self.sigma**2 * torch.eye(self.d, dtype=torch.float64)
        mvn = torch.distributions.MultivariateNormal(self.mu.double(), covariance_matrix=cov)
        return mvn.log_prob(x.reshape(x.shape[0], self.d).double())

    def exact_elbo(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 1, d) -> (B,) E_q[log p(x|z)] − KL(q ‖ p) for this encoder, in closed form."""
        q = self.encode(x.float())
        m, s2 = q.mean.double(), q.var.double()
        W, x = self.W.double(), x.reshape(x.shape[0], self.d).double()
        resid = x - (m @ W.T + self.mu.double())
        # E_q ‖x − Wz − μ‖² = ‖x − W m − μ‖² + tr(W diag(s²) Wᵀ)
        expected_sq = (resid**2).sum(1) + (W**2 @ s2.T).sum(0)
        log_lik = -0.5 * expected_sq / self.sigma**2 - self.d * (math.log(self.sigma) + 0.5 * math.log(2 * math.pi))
        kl = 0.5 * (m**2 + s2 - 1 - torch.log(s2)).sum(1)
        return log_lik - kl

    def draw(self, n: int, seed: int = 1) -> torch.Tensor:
        """n images from the model, quantised to uint8 (N, 1, 1, d) (the exact density is
        evaluated at the quantised points, so quantising costs no truth)."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.m, generator=g)
        x = z @ self.W.T + self.mu + self.sigma * torch.randn(n, self.d, generator=g)
        return (x.clamp(0, 1) * 255).round().to(torch.uint8).reshape(n, 1, 1, self.d)


@pytest.fixture
def fresh_copy(tmp_path):
    """Copy a shared run directory before a test writes into it (metrics.json, caches)."""
    import shutil

    def copy(run_dir):
        target = tmp_path / run_dir.name
        shutil.copytree(run_dir, target)
        return target

    return copy


@pytest.fixture
def ppca() -> LinearGaussianModel:
    return LinearGaussianModel()


@pytest.fixture(scope="session")
def tiny_shapes_run(tmp_path_factory):
    """An MLP VAE (latent 4) trained briefly on 600 16×16 shapes with their 5 factors."""
    from vaelab.config import from_dict
    from vaelab.runs import RunConfig
    from vaelab.training import train

    run_dir = tmp_path_factory.mktemp("runs") / "tiny-shapes"
    config = from_dict(RunConfig, {
        "model": {"name": "mlp-vae", "latent_dim": 4},
        "data": {"name": "shapes", "shapes_count": 600, "image_size": 16},
        "train": {"epochs": 2, "batch_size": 64, "lr": 2e-3, "report": False},
    })
    train(config, run_dir, progress=False)
    return run_dir


@pytest.fixture(scope="session")
def tiny_gaussian_run(tmp_path_factory):
    """An MLP VAE with a learned-σ Gaussian decoder, trained one epoch on the 8×8 digits."""
    from vaelab.config import from_dict
    from vaelab.runs import RunConfig
    from vaelab.training import train

    run_dir = tmp_path_factory.mktemp("runs") / "tiny-gaussian"
    config = from_dict(RunConfig, {
        "model": {"name": "mlp-vae", "latent_dim": 3, "likelihood": "gaussian", "learn_sigma": True},
        "data": {"name": "digits"},
        "train": {"epochs": 1, "batch_size": 64, "lr": 2e-3, "report": False},
    })
    train(config, run_dir, progress=False)
    return run_dir
