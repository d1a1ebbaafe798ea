"""Truth checks of the likelihood estimates against probabilistic PCA, whose log p(x) is
closed form (conftest.LinearGaussianModel), and against a decoder whose likelihood is exact."""

from __future__ import annotations

import math

import torch

from vaelab.distributions import Bernoulli, DiagonalGaussian, Gaussian, discrete_log_prob
from vaelab.evaluation.image_pass import image_pass
from vaelab.evaluation.likelihood import bits_per_dim, iwae_bound, iwae_nll, plan_chunks


def _gaps(model, images, k, seeds):
    """(seeds, N) differences L_K − log p(x) for several noise seeds."""
    exact = model.exact_log_prob(images.float() / 255)
    return torch.stack([-iwae_nll(model, images, k, seed=s) - exact for s in seeds])


def test_bound_converges_to_the_exact_log_likelihood(ppca):
    images = ppca.draw(50)
    far = _gaps(ppca, images, 1, [0]).mean()
    near = _gaps(ppca, images, 5000, [0])
    assert far < -0.3                       # the imperfect encoder leaves a wide gap at K = 1 …
    assert abs(near.mean()) < 0.01          # … that K = 5000 closes to a hundredth of a nat
    assert near.abs().max() < 0.05          # for every single image, not only on average


def test_bound_stays_below_the_truth_in_expectation(ppca):
    images = ppca.draw(50)
    for k in (1, 3):
        gaps = _gaps(ppca, images, k, range(8)).mean(dim=0)     # average out the noise per image
        stderr = gaps.std() / math.sqrt(len(gaps))
        assert gaps.mean() + 2 * stderr < 0, f"K = {k}: the bound is not below log p(x)"
    gaps = _gaps(ppca, images, 2000, range(4)).mean(dim=0)
    assert gaps.mean() < 4 * gaps.std() / math.sqrt(len(gaps))  # never above, beyond the noise


def test_bound_tightens_with_k_and_never_drops_below_the_elbo(ppca):
    images = ppca.draw(50)
    x = images.float() / 255
    elbo = ppca.exact_elbo(x)                     # closed form for this encoder
    exact = ppca.exact_log_prob(x)
    means = []
    for k in (1, 3, 10, 100, 1000):
        bounds = torch.stack([-iwae_nll(ppca, images, k, seed=s) for s in range(4)]).mean(dim=0)
        means.append(float(bounds.mean()))
    # L_1 is an unbiased estimate of the ELBO; every larger K lies above it, and the
    # sequence rises towards log p(x).
    stderr = float((bounds - exact).std()) / math.sqrt(len(exact))
    assert abs(means[0] - float(elbo.mean())) < 0.1
    assert all(a < b for a, b in zip(means, means[1:3])), means
    assert means[-1] > float(elbo.mean()) + 0.4
    assert means[-1] <= float(exact.mean()) + 4 * stderr + 1e-3
    # Per image and per draw: log mean w ≥ mean log w (Jensen), so the bound is never below the
    # K-sample ELBO it is computed from.
    result = iwae_bound(ppca, images, 50, seed=3)
    assert torch.all(-result.nll >= result.mean_log_weight - 1e-9)


def test_image_pass_elbo_matches_the_closed_form(ppca):
    images = ppca.draw(400)
    passed = image_pass(ppca, images, batch_size=64, seed=0)
    elbo = ppca.exact_elbo(images.float() / 255)
    diff = -passed.neg_elbo - elbo                # one-sample Monte Carlo noise around 0
    assert abs(float(diff.mean())) < 4 * float(diff.std()) / math.sqrt(len(diff))


class _UniformBernoulliModel(torch.nn.Module):
    """p(x|z) = 2^(−d) for every binary image, and q(z|x) = p(z): every importance weight is
    exactly 2^(−d), so log p(x) = −d·ln 2 and every bound equals it for every K."""

    is_variational = True
    image_shape, latent_dim = (1, 4, 5), 3

    def encode(self, x):
        B = x.shape[0]
        return DiagonalGaussian.standard((B, 3))

    def decode(self, z):
        return torch.zeros(z.shape[0], *self.image_shape)

    def likelihood(self, x_hat):
        return Bernoulli(x_hat)

    def prior(self, batch=1):
        return DiagonalGaussian.standard((batch, 3))


def test_bits_per_dim_follows_from_nats_by_its_formula():
    model = _UniformBernoulliModel()
    images = (torch.rand(7, 1, 4, 5, generator=torch.Generator().manual_seed(0)) < 0.5).to(torch.uint8) * 255
    for k in (1, 37, 5000):
        nll = iwae_nll(model, images, k, seed=0, max_decodes=1000)
        assert torch.allclose(nll, torch.full_like(nll, 20 * math.log(2)), atol=1e-5)
        assert torch.allclose(bits_per_dim(nll, model.image_shape), torch.ones_like(nll), atol=1e-6)
    for nats, shape in [(80.0, (1, 28, 28)), (3000.0, (3, 32, 32))]:
        C, H, W = shape
        assert math.isclose(bits_per_dim(nats, shape), nats / (C * H * W) / math.log(2), rel_tol=1e-12)
        assert math.isclose(bits_per_dim(nats, shape) * C * H * W * math.log(2), nats, rel_tol=1e-12)


class _DecodeCounter(torch.nn.Module):
    """Wraps a model and records how many latents each decode call receives."""

    is_variational = True

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.image_shape, self.latent_dim = inner.image_shape, inner.latent_dim
        self.sizes: list[int] = []

    def encode(self, x):
        return self.inner.encode(x)

    def decode(self, z):
        self.sizes.append(z.shape[0])
        return self.inner.decode(z)

    def likelihood(self, x_hat):
        return self.inner.likelihood(x_hat)

    def prior(self, batch=1):
        return self.inner.prior(batch)


def test_large_k_is_decoded_in_bounded_chunks(ppca):
    counter = _DecodeCounter(ppca)
    images = ppca.draw(5)
    nll = iwae_nll(counter, images, 5000, max_decodes=700, seed=0)
    assert max(counter.sizes) <= 700
    assert sum(counter.sizes) == 5 * 5000          # every sample of every image decoded once
    exact = -ppca.exact_log_prob(images.float() / 255)
    assert torch.allclose(nll, exact, atol=0.05)   # chunked accumulation still converges
    from vaelab.evaluation.likelihood import default_max_decodes

    assert default_max_decodes("cpu", (1, 28, 28)) == 8192 and default_max_decodes("cuda", (1, 28, 28)) == 32768
    assert default_max_decodes("cpu", (3, 64, 64)) < default_max_decodes("cpu", (1, 28, 28)) // 10
    for n, k, budget, batch in [(10, 5000, 8192, 500), (1000, 1, 8192, 500), (3, 7, 5, 100), (50, 100, 1000, 8)]:
        images_per_batch, samples = plan_chunks(n, k, budget, batch)
        assert images_per_batch * samples <= max(budget, 1) and 1 <= images_per_batch <= min(batch, n)
        assert 1 <= samples <= k


def _log_bin_mass(mean: float, sigma: float, value: int) -> float:
    """log of the Gaussian's mass on one 8-bit bin, in 60-digit arithmetic (mpmath)."""
    import mpmath

    with mpmath.workdps(60):
        lo = -mpmath.inf if value == 0 else (mpmath.mpf(value) - mpmath.mpf("0.5")) / 255
        hi = mpmath.inf if value == 255 else (mpmath.mpf(value) + mpmath.mpf("0.5")) / 255
        if lo > mean:   # by the symmetry of the normal: no cancellation of two numbers near 1
            mass = mpmath.ncdf(-lo, -mean, sigma) - mpmath.ncdf(-hi, -mean, sigma)
        else:
            mass = mpmath.ncdf(hi, mean, sigma) - mpmath.ncdf(lo, mean, sigma)
        return float(mpmath.log(mass))


def test_gaussian_decoders_are_scored_by_their_discretised_mass():
    means = [0.5, 0.02, 0.97, 0.3]
    sigmas = [0.1, 0.01, 0.05, 2.0]
    values = [0, 10, 128, 255, 1, 254, 77]
    loc = torch.tensor([[m] * len(values) for m in means]).reshape(len(means), 1, 1, len(values))
    log_sigma = torch.tensor(sigmas).log().reshape(len(means), 1, 1, 1)
    x = torch.tensor(values, dtype=torch.float32).reshape(1, 1, 1, len(values)) / 255
    scored = discrete_log_prob(Gaussian(loc, log_sigma), x)
    for i, (m, s) in enumerate(zip(means, sigmas)):
        expected = sum(_log_bin_mass(float(torch.tensor(m)), float(torch.tensor(s)), v) for v in values)
        # Masses far below the smallest float64 (log-masses of −10⁴ nats) still come out right.
        assert math.isclose(float(scored[i]), expected, rel_tol=1e-6), (m, s, float(scored[i]), expected)


def test_discretised_masses_sum_to_one():
    from vaelab.evaluation.likelihood import discretized_gaussian_log_prob

    levels = torch.arange(256, dtype=torch.float64).reshape(256, 1, 1, 1) / 255
    for mean, sigma in [(0.5, 0.1), (0.0, 0.003), (1.0, 0.05), (0.3, 5.0)]:
        loc = torch.full((256, 1, 1, 1), mean)
        total = discretized_gaussian_log_prob(loc, math.log(sigma), levels).exp().sum()
        assert abs(float(total) - 1.0) < 1e-9
