"""Mixture priors (mog, VampPrior): densities against their formulas, the Monte Carlo KL against the
closed form, and a VAE with each prior through training, the likelihood bound, sampling and the codec."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from vaelab.config import from_dict
from vaelab.distributions import DiagonalGaussian, GaussianMixture
from vaelab.models import ModelConfig, build_model
from vaelab.models.losses import kl_divergence, kl_per_dimension


def _mixture(seed=0, K=3, D=2):
    g = torch.Generator().manual_seed(seed)
    return GaussianMixture(torch.randn(K, D, generator=g, dtype=torch.float64),
                           0.5 * torch.randn(K, D, generator=g, dtype=torch.float64),
                           torch.randn(K, generator=g, dtype=torch.float64))


def test_the_mixture_density_is_the_weighted_sum_of_its_gaussians():
    mix = _mixture()
    w = torch.softmax(mix.logits, -1).numpy()
    mu, sd = mix.means.numpy(), np.exp(0.5 * mix.logvars.numpy())
    z = torch.tensor([[0.3, -1.2], [2.0, 0.5], [-0.7, 0.0]], dtype=torch.float64)
    for i, point in enumerate(z.numpy()):
        joint = sum(w[k] * np.prod(norm.pdf(point, mu[k], sd[k])) for k in range(3))
        assert float(mix.log_prob(z)[i]) == pytest.approx(math.log(joint), rel=1e-12)
        for d in range(2):
            marginal = sum(w[k] * norm.pdf(point[d], mu[k, d], sd[k, d]) for k in range(3))
            assert float(mix.log_prob_per_dim(z)[i, d]) == pytest.approx(math.log(marginal), rel=1e-12)
    assert mix.log_prob(z.expand(4, 3, 2)).shape == (4, 3)        # leading sample axes broadcast


def test_samples_and_moments_agree():
    mix = _mixture(1)
    draws = mix.sample(torch.Generator().manual_seed(0), 200_000)
    mean, cov = mix.moments()
    assert torch.allclose(draws.mean(0), mean, atol=0.02)
    assert torch.allclose(torch.cov(draws.T), cov, atol=0.04)


def test_the_monte_carlo_kl_estimates_the_closed_form():
    """With a one-component mixture equal to N(0, I), E_q[log q − log p] must be the closed-form KL."""
    q = DiagonalGaussian(torch.tensor([[0.5, -1.0, 0.2]], dtype=torch.float64),
                         torch.tensor([[-0.4, 0.3, -1.5]], dtype=torch.float64))
    standard = GaussianMixture(torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64),
                               torch.zeros(1, dtype=torch.float64))
    z = q.sample(torch.Generator().manual_seed(0), n=200_000)                        # (K, 1, 3)
    assert float(kl_divergence(q, standard, z)) == pytest.approx(float(q.kl()), abs=0.01)
    per_dim = kl_per_dimension(q, standard, z).mean(0)
    assert torch.allclose(per_dim, q.kl_per_dim()[0], atol=0.01)


def make(prior, **kw):
    torch.manual_seed(0)
    config = from_dict(ModelConfig, {"name": "conv-vae", "latent_dim": 3, "prior": prior, "prior_components": 4, **kw})
    return build_model(config, (1, 8, 8))


def test_the_vampprior_is_the_mean_of_the_posteriors_at_its_pseudo_inputs():
    model = make("vamp").eval()
    z = torch.randn(5, 3, dtype=torch.float32)
    with torch.no_grad():
        prior = model.prior(5)
        u = model.prior_net.pseudo_inputs()
        by_hand = torch.stack([model.encode(u[k:k + 1]).log_prob(z) for k in range(4)])    # (K, 5)
        expected = torch.logsumexp(by_hand, 0) - math.log(4)
        assert torch.allclose(prior.log_prob(z), expected, atol=1e-5)


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_the_prior_is_learned_and_the_kl_is_its_monte_carlo_term(prior):
    model = make(prior)
    x = torch.rand(6, 1, 8, 8)
    torch.manual_seed(1)
    out = model(x)
    terms = model.config.loss()(out, x)
    expected_kl = out.posterior.log_prob(out.z) - out.prior.log_prob(out.z)
    assert torch.allclose(terms.kl, expected_kl)
    terms.loss.mean().backward()
    learned = model.prior_net.means if prior == "mog" else model.prior_net.pseudo_logits
    assert learned.grad is not None and float(learned.grad.abs().sum()) > 0


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_a_vae_with_a_mixture_prior_trains_evaluates_samples_and_compresses(prior, tmp_path, capsys):
    from vaelab.apps import codec
    from vaelab.apps.common import run_images
    from vaelab.cli import main
    from vaelab.runs import open_run

    run = tmp_path / prior
    assert main(["train", "--data", "digits", "--limit", "256", "--model", "conv-vae", "--latent-dim", "3",
                 "--prior", prior, "--prior-components", "5", "--epochs", "2", "--batch-size", "64", "--threads",
                 "1", "--quiet", "--no-report", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "-k", "16", "--limit", "30", "--skip", "samples,representation", "--no-save",
                 "--json", "-q"]) == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    lik = doc["likelihood"]
    assert lik["nll"]["mean"] <= lik["neg_elbo"]["mean"] + 3 * lik["neg_elbo"]["stderr"]
    assert main(["sample", str(run), "-n", "4", "--seed", "0", "-o", str(tmp_path / "s.png")]) == 0
    assert main(["traverse", str(run), "--steps", "3", "--top", "2", "-o", str(tmp_path / "t.png")]) == 0
    opened = open_run(run)
    images = run_images(opened, "test", 6)
    data = codec.compress(opened.model, images, quality=10)
    assert codec.decompress(data, opened.model).shape == images.shape
