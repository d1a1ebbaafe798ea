"""The rate–distortion model: its rate is −log₂ of the discretised density, its verbs work."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaelab import VaelabError
from vaelab.apps.codec import coder_for
from vaelab.config import from_dict
from vaelab.models import ModelConfig, build_model
from vaelab.models.rd import GDN, RateDistortionConfig, ResidualBlock


def training_loss(model, x):
    """The loss training minimises: the config's rate–distortion loss on the model's output."""
    return model.config.loss()(model(x), x)


def _model(levels=(0.1, 1.0, 10.0), shape=(1, 8, 8), channels=4, seed=0, **options):
    torch.manual_seed(seed)
    config = RateDistortionConfig(hidden=[8, 8], latent_channels=channels, rd_lambdas=list(levels), **options)
    return build_model(config, shape)


def test_rate_is_minus_log2_of_the_mixture_bin_probability():
    model = _model()
    with torch.no_grad():  # give the density some shape
        for p in model.density.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    y = torch.randn(3, model.latent_dim) * 2
    steps = torch.rand(3, model.latent_dim) + 0.2
    with torch.no_grad():
        bits = model.rate_bits(y, steps)
    logits, locs, log_scales = (t.detach().double().numpy() for t in
                                (model.density.logits, model.density.locs, model.density.log_scales))
    for b in range(3):
        total = 0.0
        for d in range(model.latent_dim):
            w = np.exp(logits[d]) / np.exp(logits[d]).sum()
            F = lambda t: sum(w[k] / (1 + math.exp(-(t - locs[d, k]) / math.exp(log_scales[d, k]))) for k in range(4))  # noqa: E731
            c, s = float(y[b, d]), float(steps[b, d])
            total -= math.log2(max(F(c + s / 2) - F(c - s / 2), 1e-9))
        assert float(bits[b]) == pytest.approx(total, rel=1e-4)


def test_the_codec_tables_agree_with_the_model_rate(tiny_rd, digit_images):
    """float64 tables of the codec vs the network's own float32 rate, at every trained level."""
    coder = coder_for(tiny_rd)
    x = torch.from_numpy(digit_images).float() / 255
    for level in range(tiny_rd.levels):
        tables = coder.tables(level + 1.0)
        y = coder.analysis(digit_images)
        ideal = tables.bits(tables.symbols(y))
        with torch.no_grad():
            steps = torch.exp(tiny_rd.log_steps[level]).expand(len(x), -1)
            model_bits = tiny_rd.rate_bits(torch.round(tiny_rd.encode(x) / steps) * steps, steps).numpy()
        assert ideal == pytest.approx(model_bits, rel=1e-3, abs=0.05)


def test_levels_interpolate_geometrically():
    model = _model()
    w = model.level_weights(torch.tensor([0.0, 1.0, 2.0, 0.25, 1.5]))
    assert torch.allclose(w.sum(1), torch.ones(5))
    assert torch.equal(w[:3], torch.eye(3))
    assert torch.allclose(w[3], torch.tensor([0.75, 0.25, 0.0]))
    steps = model.steps(w)
    expected = torch.exp(0.5 * (model.log_steps[1] + model.log_steps[2]))
    assert torch.allclose(steps[4], expected)
    lam = model.level_lambda(w)
    assert lam[:3].tolist() == pytest.approx([0.1, 1.0, 10.0])
    assert float(lam[4]) == pytest.approx(math.sqrt(10.0))


def test_loss_is_rate_plus_lambda_times_distortion():
    model = _model(levels=(2.5,)).eval()
    x = torch.rand(4, 1, 8, 8)
    terms = training_loss(model, x)
    assert torch.allclose(terms.loss, terms.rate + 2.5 * terms.distortion)
    # eval mode: the code is rounded; distortion is the MSE of the decoded mean in [0,255]² units
    with torch.no_grad():
        out = model(x)
        mse = ((model.likelihood(out.x_hat).mean - x) * 255).pow(2).flatten(1).mean(1)
    assert torch.allclose(terms.distortion, mse, rtol=1e-5)


@pytest.mark.parametrize("shape, options", [((1, 8, 8), {}), ((3, 7, 9), {}), ((1, 28, 28), {}),
                                            ((3, 7, 9), {"rd_residual": 2}),
                                            ((1, 28, 28), {"rd_context": 6, "rd_straight_through": True})])
def test_verbs_and_shapes(shape, options):
    model = _model(shape=shape, **options).eval()
    x = torch.rand(2, *shape)
    y = model.encode(x)
    M, h, w = model.latent_grid
    assert y.shape == (2, model.latent_dim) and model.latent_dim == M * h * w == 4 * h * w
    assert model.decode(y).shape == (2, *shape)
    out = model(x)
    assert out.x_hat.shape == (2, *shape) and out.z.shape == y.shape
    with torch.no_grad():
        r = model.reconstruct(x)
    assert r.shape == x.shape and float(r.min()) >= 0 and float(r.max()) <= 1
    assert model.sample(3, generator=torch.Generator().manual_seed(0)).shape == (3, *shape)


def test_straight_through_decoder_sees_the_rounded_code_and_the_rate_the_noisy_one():
    """rd_straight_through: distortion of exactly the code the codec sends; rate still of y + noise."""
    model = _model(levels=(2.5,), rd_straight_through=True).train()
    x = torch.rand(4, 1, 8, 8)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        terms = training_loss(model, x)
        torch.manual_seed(1)   # the same noise, by hand
        steps = model.steps(model.level_weights(torch.rand(4)))
        y = model.encode(x)
        noisy = y + steps * (torch.rand_like(y) - 0.5)
    rounded = torch.round(y / steps) * steps
    with torch.no_grad():
        mse = ((model.likelihood(model.decode(rounded)).mean - x) * 255).pow(2).flatten(1).mean(1)
        assert torch.allclose(terms.distortion, mse, rtol=1e-5)
        assert torch.allclose(terms.rate, model.rate_bits(noisy, steps), rtol=1e-5)
    # gradients pass the rounding: the encoder learns from the distortion, and so do the steps
    (terms.distortion.sum()).backward()
    assert float(model.encoder.net[0].weight.grad.abs().sum()) > 0
    assert float(model.raw_log_steps.grad.abs().sum()) > 0


def test_training_lowers_the_loss(tiny_rd, digit_images):
    x = torch.from_numpy(digit_images).float() / 255
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(0)
        trained = training_loss(tiny_rd, x).loss.mean()
        torch.manual_seed(0)
        fresh = training_loss(_model(levels=(0.05, 0.5, 5.0)).eval(), x).loss.mean()
    assert float(trained) < 0.5 * float(fresh)


def test_gdn_is_the_formula():
    torch.manual_seed(0)
    gdn = GDN(3)
    with torch.no_grad():
        gdn.gamma_root.copy_(torch.rand(3, 3))
        gdn.beta_root.copy_(torch.rand(3) + 0.5)
    x = torch.randn(1, 3, 2, 2)
    out = gdn(x).detach()
    beta, gamma = gdn.beta_root.detach() ** 2 + 1e-6, gdn.gamma_root.detach() ** 2
    for i in range(3):
        for a in range(2):
            for b in range(2):
                norm = beta[i] + sum(gamma[i, j] * x[0, j, a, b] ** 2 for j in range(3))
                assert float(out[0, i, a, b]) == pytest.approx(float(x[0, i, a, b] / norm.sqrt()), rel=1e-5)
    assert torch.allclose(GDN(3, inverse=True).eval()(GDN(3).eval()(x)), x, atol=0.2)  # ≈ inverse at init


def test_a_new_residual_block_is_the_identity_and_then_learns():
    block = ResidualBlock(3)
    x = torch.randn(2, 3, 5, 5)
    assert torch.equal(block(x), x)
    block(x).pow(2).sum().backward()
    assert float(block.body[-1].weight.grad.abs().sum()) > 0


def test_config_errors():
    with pytest.raises(VaelabError, match="'objective' is not a setting of the conv-rd model"):
        from_dict(ModelConfig, {"name": "conv-rd", "objective": "elbo"})
    with pytest.raises(VaelabError, match="distinct"):
        build_model(RateDistortionConfig(rd_lambdas=[1.0, 1.0]), (1, 8, 8))
