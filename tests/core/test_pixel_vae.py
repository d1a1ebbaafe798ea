"""pixel-vae: the autoregressive decoder head is causal, normalised, and samples what it scores."""

import itertools
import math

import pytest
import torch

from vaelab.config import from_dict
from vaelab.errors import VaelabError
from vaelab.models import ModelConfig, build_model, elbo, iwae
from vaelab.models.pixel import AutoregressiveBernoulli, AutoregressiveHead


def head_and_map(channels=1, height=2, width=3, features=6, kernel=3, layers=2, seed=0):
    torch.manual_seed(seed)
    head = AutoregressiveHead(channels, features, kernel, layers, "relu")
    for p in head.parameters():              # large weights: strong, varied dependencies
        torch.nn.init.normal_(p, std=1.0)
    h = torch.randn(1, features, height, width)
    return head, h


def all_binary_images(channels, height, width):
    n = channels * height * width
    grid = torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)))
    return grid.view(-1, channels, height, width)


@pytest.mark.parametrize("channels,layers", [(1, 1), (1, 3), (2, 2)])
def test_probabilities_of_every_binary_image_sum_to_one(channels, layers):
    head, h = head_and_map(channels=channels, height=2, width=2 if channels > 1 else 3, layers=layers)
    images = all_binary_images(channels, *h.shape[-2:])
    likelihood = AutoregressiveBernoulli(h.expand(len(images), -1, -1, -1), head, channels)
    with torch.no_grad():
        log_p = likelihood.log_prob(images).double()
    assert math.isclose(torch.logsumexp(log_p, 0).exp().item(), 1.0, rel_tol=1e-5)
    assert log_p.std() > 0.5      # the head is not a uniform distribution by accident


def test_each_pixel_sees_only_earlier_pixels_in_raster_order():
    head, h = head_and_map(channels=1, height=5, width=6, kernel=5, layers=3)
    torch.manual_seed(1)
    x = (torch.rand(1, 1, 5, 6) > 0.5).float()
    base = AutoregressiveBernoulli(h, head, 1).logits(x).flatten()
    for k in range(30):
        flipped = x.clone().flatten()
        flipped[k] = 1 - flipped[k]
        changed = AutoregressiveBernoulli(h, head, 1).logits(flipped.view_as(x)).flatten() != base
        assert not changed[: k + 1].any(), f"pixel {k} influenced an earlier or its own logit"
        if k < 29:
            assert changed[k + 1:].any(), f"pixel {k} influenced nothing after it"


def test_ancestral_samples_follow_the_scored_probabilities():
    head, h = head_and_map(channels=1, height=2, width=2, seed=3)
    images = all_binary_images(1, 2, 2)
    with torch.no_grad():
        p = AutoregressiveBernoulli(h.expand(16, -1, -1, -1), head, 1).log_prob(images).exp()
        n = 20000
        draws = AutoregressiveBernoulli(h.expand(n, -1, -1, -1), head, 1).sample(torch.Generator().manual_seed(0))
    index = (draws.flatten(1) * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(1).long()
    freq = torch.bincount(index, minlength=16).double() / n
    # binomial standard error of each frequency, 5 s.e. of slack
    tolerance = 5 * (p.double() * (1 - p.double()) / n).sqrt() + 1e-4
    assert ((freq - p.double()).abs() <= tolerance).all(), (freq, p)


def make(shape=(1, 8, 8), **kw):
    cfg = from_dict(ModelConfig, {"name": "pixel-vae", "latent_dim": 4, "ar_features": 8, **kw})
    torch.manual_seed(0)
    return build_model(cfg, shape)


def test_elbo_is_autoregressive_log_likelihood_plus_kl():
    model = make()
    x = (torch.rand(3, 1, 8, 8) > 0.5).float()
    out = model(x)
    terms = elbo(out, x)
    logits = model.ar_head(x, out.x_hat)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    mu, logvar = out.posterior.mean, out.posterior.logvar
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
    torch.testing.assert_close(terms.reconstruction, bce, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(terms.kl, kl)
    bound = iwae(model(x, samples=8), x).loss
    assert bound.shape == (3,) and torch.isfinite(bound).all()


def test_model_verbs_give_images_and_the_mean_is_deterministic():
    model = make(shape=(1, 7, 9)).eval()
    x = (torch.rand(2, 1, 7, 9) > 0.5).float()
    with torch.no_grad():
        a, b = model.reconstruct(x), model.reconstruct(x)
        samples = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert a.shape == (2, 1, 7, 9) and torch.equal(a, b)
    assert samples.shape == (3, 1, 7, 9) and 0 <= samples.min() and samples.max() <= 1


def test_bad_settings_are_refused():
    with pytest.raises(VaelabError, match="bernoulli"):
        make(likelihood="gaussian")
    with pytest.raises(VaelabError, match="odd"):
        make(ar_kernel=4)


def test_windowed_sampling_gives_the_full_image_logits():
    """The fast sampler's probabilities equal the full-image head's on the finished sample."""
    head, h = head_and_map(channels=2, height=6, width=7, kernel=5, layers=3, seed=4)
    h = h.expand(3, -1, -1, -1)
    likelihood = AutoregressiveBernoulli(h, head, 2)
    sample, probs = likelihood._generate(torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = torch.sigmoid(likelihood.logits(sample))
    torch.testing.assert_close(probs, full, rtol=1e-5, atol=1e-6)
    assert 0 < sample.mean() < 1
