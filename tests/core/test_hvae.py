"""The hierarchical VAE (models/hvae.py): its densities against the formulas written out with scipy,
the per-layer KL against the Monte Carlo estimate, the IWAE bound's order, and a run through training, evaluation,
sampling, the likelihood scores and the codec."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from vaelab.config import from_dict
from vaelab.models import ModelConfig, build_model
from vaelab.models.losses import kl_divergence, kl_per_dimension, log_weights
from vaelab.models.outputs import decoded_output


def make(**kw) -> torch.nn.Module:
    torch.manual_seed(0)
    config = from_dict(ModelConfig, {"name": "hvae", "latent_dim": 3, "top_latent_dim": 2, "top_down_width": 16,
                                     "dense_width": 32, **kw})
    model = build_model(config, (1, 8, 8)).double().eval()
    with torch.no_grad():   # p(z₁|z₂) starts as N(0, I); make it depend on z₂, as a trained one does
        torch.nn.init.normal_(model.top_down[-1].weight, std=0.5)
        torch.nn.init.normal_(model.top_down[-1].bias, std=0.5)
    return model


def images(n=4, seed=0):
    return (torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) < 0.4).double()


def test_prior_and_posterior_densities_follow_the_two_layer_factorisation():
    model = make()
    x = images(3)
    with torch.no_grad():
        posterior = model.encode(x)
        prior = model.prior(3)
        z = posterior.sample(torch.Generator().manual_seed(1))                      # (3, 5): [z₂ (2), z₁ (3)]
        z2, z1 = z[:, :2], z[:, 2:]
        h = model.up_activation(model.encoder(x))
        top_mean, top_logvar = model.up_top(h).chunk(2, -1)
        p_mean, p_logvar = model.top_down(z2).chunk(2, -1)
        shift, log_scale = model.correction(torch.cat([h, z2], -1)).chunk(2, -1)
        bound = lambda v: 8.0 * torch.tanh(v / 8.0)                                  # noqa: E731
        top_sd, p_var = (bound(top_logvar) / 2).exp(), bound(p_logvar).exp()
        q1_mean = p_mean + shift                                                     # NVAE's residual form
        q1_var = p_var * bound(log_scale).exp()
        for i in range(3):
            log_q = (norm.logpdf(z2[i].numpy(), top_mean[i].numpy(), top_sd[i].numpy()).sum()
                     + norm.logpdf(z1[i].numpy(), q1_mean[i].numpy(), q1_var[i].sqrt().numpy()).sum())
            log_p = (norm.logpdf(z2[i].numpy()).sum()
                     + norm.logpdf(z1[i].numpy(), p_mean[i].numpy(), p_var[i].sqrt().numpy()).sum())
            assert float(posterior.log_prob(z)[i]) == pytest.approx(log_q, rel=1e-10)
            assert float(prior.log_prob(z)[i]) == pytest.approx(log_p, rel=1e-10)


def test_the_per_layer_kl_is_the_expectation_of_log_q_minus_log_p():
    model = make()
    x = images(2)
    with torch.no_grad():
        posterior, prior = model.encode(x), model.prior(2)
        z = posterior.sample(torch.Generator().manual_seed(0), n=200_000)             # (K, 2, 5)
        monte_carlo = (posterior.log_prob(z) - prior.log_prob(z)).mean(0)
        exact_given_z2 = kl_divergence(posterior, prior, z)
        assert torch.allclose(exact_given_z2, monte_carlo, atol=0.01)
        assert torch.all(exact_given_z2 >= 0)
        per_dim = kl_per_dimension(posterior, prior, z[:4])
        assert per_dim.shape == (4, 2, 5)
        assert torch.allclose(per_dim.sum(-1).mean(0), kl_divergence(posterior, prior, z[:4]))


def test_noise_maps_to_latents_top_down_and_gradients_reach_every_network():
    model = make().float().train()
    x = images(4).float()
    eps = torch.randn(4, 5, generator=torch.Generator().manual_seed(2))
    posterior = model.encode(x)
    z = posterior.reparameterise(eps)
    changed = eps.clone()
    changed[:, 3] += 1.0                                                             # a bottom-layer noise only
    assert torch.equal(posterior.reparameterise(changed)[:, :2], z[:, :2])          # z₂ does not see z₁'s noise
    moved = z.detach().clone()
    moved[:, :2] += 1.0
    assert torch.equal(model.decode(moved), model.decode(z.detach()))                # x is generated from z₁
    terms = model.config.loss()(decoded_output(model, posterior, z), x)
    terms.loss.mean().backward()
    for name in ("up_top", "correction", "top_down", "encoder", "decoder"):
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0, name


def test_the_importance_bound_is_above_the_elbo_for_every_image():
    model = make()
    x = images(5)
    with torch.no_grad():
        posterior = model.encode(x)
        z = posterior.sample(torch.Generator().manual_seed(3), n=500)
        log_w = log_weights(decoded_output(model, posterior, z), x)                # (K, B)
        bound = torch.logsumexp(log_w, 0) - math.log(500)
        elbo = log_w.mean(0)
    assert torch.all(bound >= elbo)


def test_ancestral_samples_have_the_prior_moments_and_temperature_shrinks_them():
    model = make().float()
    draws = model.sample_latents(100_000, torch.Generator().manual_seed(1))
    mean, cov = model.latent_gaussian()                    # from 16,384 draws of another seed
    spread = draws.std(0)
    assert torch.all((draws.mean(0) - mean).abs() < 4 * spread / math.sqrt(16_384))
    assert torch.allclose(torch.cov(draws.T), cov, atol=0.06 * float(spread.max()) ** 2)
    cold = model.sample_latents(20_000, torch.Generator().manual_seed(0), temperature=0.5)
    assert float(cold[:, :2].std(0).mean()) == pytest.approx(0.5, abs=0.02)        # z₂ ~ N(0, T²)
    assert torch.equal(model.latent_gaussian()[1], cov)                              # fixed: the codec relies on it


def test_a_hierarchical_vae_trains_evaluates_samples_scores_and_compresses(tmp_path, capsys):
    from vaelab.apps import codec
    from vaelab.apps.common import run_images
    from vaelab.apps.likelihood import likelihood_bits
    from vaelab.cli import main
    from vaelab.runs import open_run

    run = tmp_path / "hvae"
    assert main(["train", "--data", "digits", "--limit", "256", "--model", "hvae", "--latent-dim", "3",
                 "--top-latent-dim", "2", "--epochs", "2", "--batch-size", "64", "--threads", "1", "--quiet",
                 "--no-report", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "-k", "16", "--limit", "30", "--skip", "samples,representation", "--no-save",
                 "--json", "-q"]) == 0
    lik = json.loads(capsys.readouterr().out)["likelihood"]
    assert lik["nll"]["mean"] <= lik["neg_elbo"]["mean"] + 3 * lik["neg_elbo"]["stderr"]
    assert main(["sample", str(run), "-n", "4", "--seed", "0", "-o", str(tmp_path / "s.png")]) == 0
    assert main(["traverse", str(run), "--steps", "3", "--top", "2", "-o", str(tmp_path / "t.png")]) == 0
    opened = open_run(run)
    pictures = run_images(opened, "test", 6)
    bits = likelihood_bits(opened.model, pictures, samples=8)
    assert np.all(bits["nll"] <= bits["elbo"] + 1e-6)
    data = codec.compress(opened.model, pictures, quality=10)
    assert codec.decompress(data, opened.model).shape == pictures.shape
    # only z₁ is sent: z₂ is never read by the decoder, and comes back as the prior's mean
    coder = opened.model.entropy_model()
    assert coder.tables_at(10.0).steps.shape == (3,)
    sent = coder.decompress_latents(coder.compress_latents(coder.analysis(pictures), 10.0), 10.0)
    assert np.allclose(sent[:, :2], opened.model.latent_gaussian()[0][:2].numpy()[None])
    # traversals and the explorer move the coordinates the decoder reads first
    from vaelab.apps.traversal import dims_by_kl

    assert sorted(dims_by_kl(opened.model, pictures)[:3]) == [2, 3, 4]


def test_the_pixel_head_ends_the_decoder_and_stays_autoregressive():
    from vaelab.errors import VaelabError

    model = make(ar_features=4, ar_layers=2).float()
    x = images(2).float()
    out = model(x)
    terms = model.config.loss()(out, x)
    terms.loss.mean().backward()
    assert float(model.ar_head.out.weight.grad.abs().sum()) > 0                      # the head is trained
    logits = out.likelihood.logits(x)
    later = x.clone()
    later[:, :, 5:, :] = 1 - later[:, :, 5:, :]                                     # flip rows 5 and below
    assert torch.equal(out.likelihood.logits(later)[:, :, :5], logits[:, :, :5])   # earlier pixels unmoved
    assert not torch.equal(out.likelihood.logits(later)[:, :, 6:], logits[:, :, 6:])
    assert model.sample(2, torch.Generator().manual_seed(0)).shape == (2, 1, 8, 8)
    with pytest.raises(VaelabError, match="binary pixels"):
        make(ar_features=4, likelihood="gaussian")
