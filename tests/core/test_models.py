"""Every registry model: the DESIGN.md §2 verb set, shapes, and its losses against formulas."""

import math

import pytest
import torch

from vaelab.config import from_dict
from vaelab.errors import VaelabError
from vaelab.models import ModelConfig, build_model, elbo, iwae, log_weights, model_names
from vaelab.models.outputs import decoded_output
from vaelab.theory import Decoder, Encoder

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 64, 64), (3, 7, 9)]
BASE_MODELS = ["mlp-ae", "conv-ae", "mlp-vae", "conv-vae"]


def make(name, shape, **kw):
    cfg = from_dict(ModelConfig, {"name": name, "latent_dim": 4, **kw})
    torch.manual_seed(0)
    return build_model(cfg, shape)


def training_loss(model, x):
    """The loss training minimises for ``model``: its config's loss on its forward output."""
    loss = model.config.loss()
    return loss(model(x, **loss.forward_options), x)


def test_registry_lists_the_four_base_models():
    assert set(BASE_MODELS) <= set(model_names())


@pytest.mark.parametrize("name", BASE_MODELS)
@pytest.mark.parametrize("shape", SHAPES)
def test_verbs_and_shapes(name, shape):
    model = make(name, shape)
    x = torch.rand(3, *shape)
    out = model(x)
    assert out.x_hat.shape == (3, *shape)
    assert out.z.shape == (3, 4)
    assert out.likelihood.log_prob(x).shape == (3,)
    assert (out.posterior is not None) == model.is_variational
    with torch.no_grad():
        for images in (model.reconstruct(x), model.sample(5, generator=torch.Generator().manual_seed(0))):
            assert images.min() >= 0 and images.max() <= 1
        assert model.sample(5).shape == (5, *shape)
        assert model.decode(torch.zeros(2, 4)).shape == (2, *shape)
        assert model.encode_mean(x).shape == (3, 4)


def test_mlp_models_are_the_thesis_networks():
    model = make("mlp-vae", (1, 28, 28), hidden=[400, 100])
    assert isinstance(model.encoder.net, Encoder) and isinstance(model.decoder.net, Decoder)
    assert tuple(model.encoder.net.widths) == (784, 400, 100, 8)   # μ and log σ² for 4 latents
    assert tuple(model.decoder.net.widths) == (4, 100, 400, 784)


def test_increasing_encoder_widths_are_refused():
    with pytest.raises(VaelabError, match="Def. 2.1.4"):
        make("mlp-ae", (1, 8, 8), hidden=[128])


def test_elbo_equals_its_formula():
    model = make("conv-vae", (1, 28, 28))
    x = (torch.rand(4, 1, 28, 28) > 0.5).float()
    out = model(x)
    terms = elbo(out, x, beta=2.5)
    p = torch.sigmoid(out.x_hat)
    bce = -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).flatten(1).sum(1)
    mu, logvar = out.posterior.mean, out.posterior.logvar
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
    torch.testing.assert_close(terms.reconstruction, bce, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(terms.kl, kl)
    torch.testing.assert_close(terms.loss, bce + 2.5 * kl, rtol=1e-4, atol=1e-3)


def test_gaussian_likelihood_with_learned_sigma_trains_sigma():
    model = make("mlp-vae", (1, 8, 8), likelihood="gaussian", learn_sigma=True, sigma=0.5)
    x = torch.rand(8, 1, 8, 8)
    training_loss(model, x).loss.mean().backward()
    assert model.head.log_sigma.grad is not None and model.head.log_sigma.grad.abs().sum() > 0


def test_iwae_bound_tightens_with_k_and_k1_is_the_elbo_in_expectation():
    model = make("mlp-vae", (1, 8, 8))
    x = (torch.rand(2, 1, 8, 8) > 0.5).float()
    with torch.no_grad():
        posterior = model.encode(x)
        z = posterior.sample(torch.Generator().manual_seed(0), n=4000)      # (K, B, D)
        log_w = log_weights(decoded_output(model, posterior, z), x)
        elbo_mc = log_w.mean(0)                               # E_q[log w] = ELBO
        bound_k = {k: (torch.logsumexp(log_w[:k], 0) - math.log(k)) for k in (1, 10, 1000)}
        closed = -elbo(model(x), x).negative_elbo             # one-sample ELBO, noisy
        analytic_elbo = -(torch.stack([training_loss(model, x).negative_elbo for _ in range(400)]).mean(0))
    torch.testing.assert_close(elbo_mc, analytic_elbo, atol=0.3, rtol=0)
    assert (bound_k[1000] >= elbo_mc).all()
    assert torch.isfinite(closed).all()
    terms = iwae(model(x, samples=16), x)
    assert terms.loss.shape == (2,)


def test_autoencoder_samples_follow_the_fitted_code_distribution():
    model = make("mlp-ae", (1, 8, 8))
    cov = torch.tensor([[1.0, 0.5, 0, 0], [0.5, 2.0, 0, 0], [0, 0, 0.25, 0], [0, 0, 0, 0.5]])
    model.code_mean.copy_(torch.tensor([3.0, -1.0, 0.0, 2.0]))
    model.code_cov.copy_(cov)
    drawn = []
    model.decode_mean = lambda z: drawn.append(z) or torch.zeros(z.shape[0], 1, 8, 8)
    model.sample(50_000, generator=torch.Generator().manual_seed(0))
    z = drawn[0]
    assert torch.allclose(z.mean(0), model.code_mean, atol=0.03)
    assert torch.allclose(torch.cov(z.T), cov, atol=0.05)


def test_autoencoder_tracks_code_statistics_in_training():
    model = make("mlp-ae", (1, 8, 8)).train()
    x = torch.rand(256, 1, 8, 8)
    model.momentum = 0.1
    for _ in range(150):  # the running estimate converges to the batch statistics
        model(x)
    with torch.no_grad():
        z = model.encode(x)
    assert torch.allclose(model.code_mean, z.mean(0), atol=1e-3)
    assert torch.allclose(model.code_cov, torch.cov(z.T), atol=1e-3)


def test_wrong_input_shape_is_named():
    model = make("conv-vae", (1, 28, 28))
    with pytest.raises(VaelabError, match=r"\(B, 1, 28, 28\); got \(2, 3, 28, 28\)"):
        model.encode(torch.rand(2, 3, 28, 28))


def test_the_width_error_names_the_latent_dimension_asked_for():
    with pytest.raises(VaelabError) as err:
        make("mlp-vae", (1, 28, 28), hidden=[256, 512], latent_dim=10)
    assert "20 = μ and log σ² of latent dimension 10" in str(err.value) and "latent dimension 20" not in str(err.value)
