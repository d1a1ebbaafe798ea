"""MIG and DCI on codes whose disentanglement is known."""

from __future__ import annotations

import math

import numpy as np

from vaelab.evaluation.disentanglement import dci, dci_from_importance, discrete_entropy, discretize, mig


def _factors(n: int, levels, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, k, n) for k in levels], axis=1)


def test_mig_is_one_for_the_factors_themselves_and_near_zero_for_noise():
    factors = _factors(5000, (3, 6, 20, 16))
    score, gaps = mig(factors.astype(float), factors)
    # Exactly 1 but for the plug-in estimator's upward bias on the runner-up dimension,
    # about (|z| − 1)(|v| − 1) / 2N nats (Miller–Madow): ≈ 0.03 nats for 20 × 16 levels here.
    assert score > 0.985 and all(g > 0.985 for g in gaps)
    # Order and affine rescaling of the dimensions change nothing.
    permuted = np.stack([factors[:, 2], factors[:, 0], factors[:, 3] * 0.1 - 4, factors[:, 1]], axis=1)
    assert math.isclose(mig(permuted.astype(float), factors)[0], score, rel_tol=1e-12)
    noise = np.random.default_rng(1).standard_normal((5000, 10))
    assert mig(noise, factors)[0] < 0.03


def test_mig_is_zero_when_two_dimensions_share_a_factor():
    factors = _factors(4000, (4, 5))
    codes = np.stack([factors[:, 0], factors[:, 0], factors[:, 1]], axis=1).astype(float)
    score, gaps = mig(codes, factors)
    assert math.isclose(gaps[0], 0.0, abs_tol=1e-12) and gaps[1] > 0.99
    assert math.isclose(score, (gaps[0] + gaps[1]) / 2)


def test_discretisation_and_entropy():
    codes = np.linspace(0, 1, 200)[:, None]
    bins = discretize(codes, 20)
    assert bins.min() == 0 and bins.max() == 19 and np.all(np.bincount(bins[:, 0]) == 10)
    assert math.isclose(discrete_entropy(np.arange(8).repeat(3)), math.log(8))


def test_dci_rewards_one_factor_per_dimension():
    factors = _factors(3000, (3, 6, 10))
    train, test = slice(0, 2000), slice(2000, None)
    rng = np.random.default_rng(2)
    codes = factors + 0.05 * rng.standard_normal(factors.shape)
    good = dci(codes[train], factors[train], codes[test], factors[test])
    assert good["disentanglement"] > 0.9 and good["completeness"] > 0.9 and good["informativeness"] > 0.95
    noise = rng.standard_normal((3000, 3))
    bad = dci(noise[train], factors[train], noise[test], factors[test])
    assert bad["disentanglement"] < 0.2 and bad["informativeness"] < 0.5
    # The closed forms: a diagonal importance matrix is perfect, a uniform one scores 0.
    assert np.allclose(dci_from_importance(np.eye(4)), (1.0, 1.0), atol=1e-6)
    assert np.allclose(dci_from_importance(np.ones((4, 4))), (0.0, 0.0), atol=1e-9)
