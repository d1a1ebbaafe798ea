"""Distributions against torch.distributions and analytic facts."""

import math

import torch

from vaelab.distributions import Bernoulli, DiagonalGaussian, Gaussian


def test_diagonal_gaussian_matches_torch():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    mu2, logvar2 = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    q, p = DiagonalGaussian(mu, logvar), DiagonalGaussian(mu2, logvar2)
    tq = torch.distributions.Independent(torch.distributions.Normal(mu, (0.5 * logvar).exp()), 1)
    tp = torch.distributions.Independent(torch.distributions.Normal(mu2, (0.5 * logvar2).exp()), 1)
    z = q.sample(g)
    torch.testing.assert_close(q.log_prob(z), tq.log_prob(z))
    torch.testing.assert_close(q.kl(p), torch.distributions.kl_divergence(tq, tp))
    torch.testing.assert_close(q.entropy(), tq.entropy())
    prior = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(5, 3), torch.ones(5, 3)), 1)
    torch.testing.assert_close(q.kl(), torch.distributions.kl_divergence(tq, prior))
    assert (q.kl_per_dim() >= 0).all()


def test_reparameterised_sample_has_the_right_moments_and_gradients():
    mu = torch.tensor([[1.0, -2.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, math.log(4.0)]], requires_grad=True)
    z = DiagonalGaussian(mu, logvar).sample(torch.Generator().manual_seed(1), n=200_000)
    assert torch.allclose(z.mean(dim=(0, 1)), torch.tensor([1.0, -2.0]), atol=0.02)
    assert torch.allclose(z.std(dim=(0, 1)), torch.tensor([1.0, 2.0]), atol=0.02)
    z.sum().backward()
    assert mu.grad is not None and logvar.grad is not None


def test_bernoulli_log_prob_is_minus_bce_summed_and_stable():
    logits = torch.tensor([[[[0.3, -2.0], [1000.0, -1000.0]]]])
    x = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    p = torch.sigmoid(torch.tensor([0.3, -2.0]))
    expected = math.log(p[0]) + math.log(1 - p[1]) + 0.0 + 0.0
    assert torch.allclose(Bernoulli(logits).log_prob(x), torch.tensor([expected]), atol=1e-5)
    assert torch.isfinite(Bernoulli(logits).log_prob(1 - x)).all()


def test_gaussian_discretised_masses_sum_to_one():
    # one pixel, all 256 levels: the bins partition the real line
    levels = torch.arange(256, dtype=torch.float32) / 255
    x = levels.view(256, 1, 1, 1)
    for mean, sigma in ((0.3, 0.05), (0.99, 0.2), (0.0, 0.001)):
        dist = Gaussian(torch.full((256, 1, 1, 1), mean), torch.tensor(math.log(sigma)))
        total = dist.discretized_log_prob(x).exp().sum()
        assert abs(total.item() - 1.0) < 1e-3, (mean, sigma, total)


def test_gaussian_log_prob_is_scaled_mse_plus_constant():
    mean = torch.rand(2, 1, 3, 3)
    x = torch.rand(2, 1, 3, 3)
    sigma = 0.1
    ll = Gaussian(mean, torch.tensor(math.log(sigma))).log_prob(x)
    mse = ((x - mean) ** 2).flatten(1).sum(1)  # the thesis' MSE (Ex. 2.1.2): a sum over pixels
    expected = -mse / (2 * sigma**2) - 9 * (math.log(sigma) + 0.5 * math.log(2 * math.pi))
    torch.testing.assert_close(ll, expected)


def test_per_image_mixture_matches_torch_and_draws_components_by_their_weights():
    """PerImageMixture (cond-vae's q(y|x) q(z|x, y)) against torch's MixtureSameFamily, image by image."""
    from vaelab.distributions import PerImageMixture

    g = torch.Generator().manual_seed(0)
    C, B, D = 3, 4, 2
    logits = torch.randn(B, C, generator=g)
    mean, logvar = 3 * torch.randn(C, B, D, generator=g), 0.3 * torch.randn(C, B, D, generator=g)
    q = PerImageMixture(logits, DiagonalGaussian(mean, logvar))
    z = q.sample(g, n=200_000)                                                   # (n, B, D)
    for b in range(B):
        torch_q = torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(logits=logits[b]),
            torch.distributions.Independent(torch.distributions.Normal(mean[:, b], (0.5 * logvar[:, b]).exp()), 1))
        torch.testing.assert_close(q.log_prob(z[:5])[:, b], torch_q.log_prob(z[:5, b]))
        torch.testing.assert_close(z[:, b].mean(0), torch_q.mean, atol=0.03, rtol=0)
        torch.testing.assert_close(z[:, b].var(0), torch_q.variance, atol=0.1, rtol=0.02)
    torch.testing.assert_close(q.mean, torch.einsum("bc,cbd->bd", torch.softmax(logits, -1), mean))
    assert q.sample(g).shape == (B, D) and q.log_prob(q.sample(g)).shape == (B,)
