"""Defs. 3.1.1–3.1.3 and Remark 3.1.4: closed forms, Monte Carlo, and torch.distributions."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, Laplace, Normal, kl_divergence

from vaelab.errors import VaelabError
from vaelab.theory import (
    cross_entropy_diag_gaussians,
    cross_entropy_monte_carlo,
    entropy_diag_gaussian,
    entropy_monte_carlo,
    kl_diag_gaussians,
    kl_monte_carlo,
)


def _diag(mu, logvar):
    return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(7)
    mu_p, mu_q = torch.randn(2, 3, dtype=torch.float64, generator=g)
    lv_p, lv_q = torch.randn(2, 3, dtype=torch.float64, generator=g) * 0.5
    return mu_p, lv_p, mu_q, lv_q


def test_closed_forms_agree_with_torch_distributions(pair):
    mu_p, lv_p, mu_q, lv_q = pair
    p, q = _diag(mu_p, lv_p), _diag(mu_q, lv_q)
    assert kl_diag_gaussians(mu_p, lv_p, mu_q, lv_q).item() == pytest.approx(kl_divergence(p, q).item(), rel=1e-12)
    assert entropy_diag_gaussian(mu_p, lv_p).item() == pytest.approx(p.entropy().item(), rel=1e-12)
    cross = kl_divergence(p, q) + p.entropy()
    assert cross_entropy_diag_gaussians(mu_p, lv_p, mu_q, lv_q).item() == pytest.approx(cross.item(), rel=1e-12)
    # q defaults to the standard normal
    standard = _diag(torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    assert kl_diag_gaussians(mu_p, lv_p).item() == pytest.approx(kl_divergence(p, standard).item(), rel=1e-12)


def test_closed_forms_equal_the_integrals_by_quadrature():
    # Def. 3.1.1–3.1.3 in one dimension, integrated numerically on a fine grid
    mu_p, s_p, mu_q, s_q = 0.3, 0.8, -0.5, 1.3
    x = torch.linspace(-12, 12, 200_001, dtype=torch.float64)
    dx = x[1] - x[0]
    f64 = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731 (Python floats would make float32 parameters)
    log_p, log_q = Normal(f64(mu_p), f64(s_p)).log_prob(x), Normal(f64(mu_q), f64(s_q)).log_prob(x)
    p = torch.exp(log_p)
    args = [torch.tensor([v], dtype=torch.float64) for v in (mu_p, 2 * math.log(s_p), mu_q, 2 * math.log(s_q))]
    assert kl_diag_gaussians(*args).item() == pytest.approx((p * (log_p - log_q)).sum().item() * dx.item(), rel=1e-8)
    assert entropy_diag_gaussian(*args[:2]).item() == pytest.approx(-(p * log_p).sum().item() * dx.item(), rel=1e-8)
    assert cross_entropy_diag_gaussians(*args).item() == pytest.approx(-(p * log_q).sum().item() * dx.item(), rel=1e-8)


def test_remark_3_1_4_in_closed_form(pair):
    mu_p, lv_p, mu_q, lv_q = pair
    kl = kl_diag_gaussians(mu_p, lv_p, mu_q, lv_q)
    difference = cross_entropy_diag_gaussians(mu_p, lv_p, mu_q, lv_q) - entropy_diag_gaussian(mu_p, lv_p)
    assert kl.item() == pytest.approx(difference.item(), rel=1e-13, abs=1e-13)


def test_kl_is_nonnegative_and_zero_only_for_equal_distributions():
    g = torch.Generator().manual_seed(3)
    mu_p, mu_q = torch.randn(2, 500, 4, dtype=torch.float64, generator=g) * 2
    lv_p, lv_q = torch.randn(2, 500, 4, dtype=torch.float64, generator=g)
    kl = kl_diag_gaussians(mu_p, lv_p, mu_q, lv_q)
    assert kl.shape == (500,)
    assert (kl > 0).all()
    assert torch.equal(kl_diag_gaussians(mu_p, lv_p, mu_p, lv_p), torch.zeros(500, dtype=torch.float64))
    # differing in a single coordinate's mean, or a single variance, already gives KL > 0
    shifted = mu_p.clone()
    shifted[:, 0] += 1e-3
    assert (kl_diag_gaussians(mu_p, lv_p, shifted, lv_p) > 0).all()
    wider = lv_p.clone()
    wider[:, 2] += 1e-3
    assert (kl_diag_gaussians(mu_p, lv_p, mu_p, wider) > 0).all()


def test_closed_form_kl_matches_monte_carlo(pair):
    mu_p, lv_p, mu_q, lv_q = pair
    p, q = _diag(mu_p, lv_p), _diag(mu_q, lv_q)
    estimate, error = kl_monte_carlo(p, q, n=20_000, generator=torch.Generator().manual_seed(11))
    exact = kl_diag_gaussians(mu_p, lv_p, mu_q, lv_q).item()
    assert abs(estimate.item() - exact) < 4 * error.item()
    estimate, error = entropy_monte_carlo(p, n=20_000, generator=torch.Generator().manual_seed(12))
    assert abs(estimate.item() - entropy_diag_gaussian(mu_p, lv_p).item()) < 4 * error.item()
    estimate, error = cross_entropy_monte_carlo(p, q, n=20_000, generator=torch.Generator().manual_seed(13))
    assert abs(estimate.item() - cross_entropy_diag_gaussians(mu_p, lv_p, mu_q, lv_q).item()) < 4 * error.item()


def test_monte_carlo_works_for_any_distribution_pair():
    # Normal vs Laplace has no closed form in torch's registry in this direction; the estimate
    # must still be nonnegative beyond noise and agree with a quadrature of eq. (3.1)
    p, q = Normal(torch.tensor(0.0, dtype=torch.float64), 1.0), Laplace(torch.tensor(0.5, dtype=torch.float64), 1.0)
    x = torch.linspace(-15, 15, 300_001, dtype=torch.float64)
    exact = (torch.exp(p.log_prob(x)) * (p.log_prob(x) - q.log_prob(x))).sum().item() * (x[1] - x[0]).item()
    estimate, error = kl_monte_carlo(p, q, n=20_000, generator=torch.Generator().manual_seed(2))
    assert exact > 0
    assert abs(estimate.item() - exact) < 4 * error.item()


def test_remark_3_1_4_in_monte_carlo(pair):
    mu_p, lv_p, mu_q, lv_q = pair
    p, q = _diag(mu_p, lv_p), _diag(mu_q, lv_q)
    kl, _ = kl_monte_carlo(p, q, n=2_000, generator=torch.Generator().manual_seed(21))
    cross, _ = cross_entropy_monte_carlo(p, q, n=2_000, generator=torch.Generator().manual_seed(21))
    entropy, _ = entropy_monte_carlo(p, n=2_000, generator=torch.Generator().manual_seed(21))
    # the same samples: KL = H_q − H holds draw by draw, so up to rounding only
    assert kl.item() == pytest.approx((cross - entropy).item(), rel=1e-12, abs=1e-12)


def test_monte_carlo_is_seeded_and_leaves_the_global_rng_alone(pair):
    mu_p, lv_p, mu_q, lv_q = pair
    p, q = _diag(mu_p, lv_p), _diag(mu_q, lv_q)
    state = torch.get_rng_state()
    a = kl_monte_carlo(p, q, n=100, generator=torch.Generator().manual_seed(5))
    b = kl_monte_carlo(p, q, n=100, generator=torch.Generator().manual_seed(5))
    c = kl_monte_carlo(p, q, n=100, generator=torch.Generator().manual_seed(6))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    g = torch.Generator().manual_seed(5)
    first, second = kl_monte_carlo(p, q, n=100, generator=g), kl_monte_carlo(p, q, n=100, generator=g)
    assert not torch.equal(first[0], second[0])  # the generator advances


def test_batched_monte_carlo_and_gradients():
    mu = torch.zeros(4, 2, dtype=torch.float64, requires_grad=True)
    p = _diag(mu, torch.zeros(4, 2, dtype=torch.float64))
    q = _diag(torch.ones(4, 2, dtype=torch.float64), torch.zeros(4, 2, dtype=torch.float64))
    estimate, error = kl_monte_carlo(p, q, n=500, generator=torch.Generator().manual_seed(0))
    assert estimate.shape == (4,) and error.shape == (4,)
    estimate.sum().backward()  # reparameterised samples: gradients reach p's parameters
    assert mu.grad is not None and torch.isfinite(mu.grad).all()


def test_differential_entropy_can_be_negative():
    # Defs. 3.1.2–3.1.3 call entropy nonnegative; for densities that fails below σ² = 1/(2πe)
    small = torch.tensor([math.log(0.01)], dtype=torch.float64)
    assert entropy_diag_gaussian(torch.zeros(1, dtype=torch.float64), small).item() < 0


def test_bad_arguments_are_refused(pair):
    mu_p, lv_p, mu_q, lv_q = pair
    p = _diag(mu_p, lv_p)
    with pytest.raises(VaelabError, match="event shapes"):
        kl_monte_carlo(p, _diag(mu_q[:2], lv_q[:2]))
    with pytest.raises(VaelabError):
        entropy_monte_carlo(p, n=1)
    with pytest.raises(VaelabError):
        kl_monte_carlo(p, "q")
