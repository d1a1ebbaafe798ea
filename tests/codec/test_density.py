"""Discretised densities: the tables match the formula P(k) = F((k+½)Δ) − F((k−½)Δ)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from vaelab import VaelabError
from vaelab.coding.density import TAIL_MASS, FactorisedDensity, coding_tables


def _check_rows(tables, cdf):
    """Each row's entries against the CDF at the bin edges (an independent loop)."""
    for d in range(len(tables.steps)):
        step = tables.steps[d]
        for i in range(int(tables.sizes[d])):
            k = tables.offsets[d] + i
            expected = cdf(d, (k + 0.5) * step) - cdf(d, (k - 0.5) * step)
            assert tables.probabilities[d, i] == pytest.approx(expected, abs=1e-12)
        assert np.all(tables.probabilities[d, int(tables.sizes[d]):] == 0)
        # the support leaves out at most TAIL_MASS on each side (plus half a bin of slack)
        assert tables.probabilities[d].sum() >= 1 - 2 * TAIL_MASS - 1e-12


def test_normal_tables():
    loc, scale = np.array([0.0, 1.5, -3.0]), np.array([1.0, 0.3, 4.0])
    density = FactorisedDensity("normal", {"loc": loc, "scale": scale})
    tables = coding_tables(density, np.array([0.5, 0.1, 2.0]))
    _check_rows(tables, lambda d, t: stats.norm.cdf(t, loc[d], scale[d]))


def test_laplace_tables():
    loc, scale = np.array([0.0, 2.0]), np.array([0.7, 3.0])
    density = FactorisedDensity("laplace", {"loc": loc, "scale": scale})
    tables = coding_tables(density, np.array([0.25, 1.0]))
    _check_rows(tables, lambda d, t: stats.laplace.cdf(t, loc[d], scale[d]))


def test_logistic_mixture_tables():
    rng = np.random.default_rng(0)
    logits, locs, log_scales = rng.normal(size=(3, 2, 4))
    density = FactorisedDensity("logistic-mixture", {"logits": logits, "locs": locs, "log_scales": log_scales})

    def cdf(d, t):  # Σ_k π_k σ((t − μ_k)/s_k), written out
        w = [math.exp(v) for v in logits[d]]
        return sum(w[k] / sum(w) / (1 + math.exp(-(t - locs[d, k]) / math.exp(log_scales[d, k]))) for k in range(4))

    _check_rows(coding_tables(density, np.array([0.3, 0.05])), cdf)


def test_far_tail_keeps_its_digits():
    # 30σ out, F(b) − F(a) would be 0 in float64; the survival-function form keeps it positive
    density = FactorisedDensity("normal", {"loc": np.zeros(1), "scale": np.ones(1)})
    mass = density.interval_mass(np.array([[30.0]]), np.array([[30.5]]))
    assert mass[0, 0] == pytest.approx(stats.norm.sf(30.0) - stats.norm.sf(30.5), rel=1e-9)
    assert mass[0, 0] > 0


def test_symbols_and_values():
    density = FactorisedDensity("normal", {"loc": np.zeros(2), "scale": np.ones(2)})
    tables = coding_tables(density, np.array([0.5, 0.25]))
    y = np.array([[0.74, -0.3], [100.0, -100.0]])
    values = tables.values(tables.symbols(y))
    assert values[0].tolist() == [0.5, -0.25]                   # Δ·round(y/Δ)
    lo = tables.offsets * tables.steps
    hi = (tables.offsets + tables.sizes - 1) * tables.steps
    assert values[1].tolist() == [hi[0], lo[1]]                 # clamped to the support's edges


def test_ideal_bits_are_minus_log2_p():
    density = FactorisedDensity("normal", {"loc": np.zeros(1), "scale": np.ones(1)})
    tables = coding_tables(density, np.array([1.0]))
    symbols = tables.symbols(np.array([[0.0], [1.0]]))
    p0 = stats.norm.cdf(0.5) - stats.norm.cdf(-0.5)
    p1 = stats.norm.cdf(1.5) - stats.norm.cdf(0.5)
    assert tables.bits(symbols) == pytest.approx([-math.log2(p0), -math.log2(p1)], rel=1e-7)


def test_too_fine_steps_are_refused():
    density = FactorisedDensity("normal", {"loc": np.zeros(1), "scale": np.ones(1)})
    with pytest.raises(VaelabError, match="too finely"):
        coding_tables(density, np.array([1e-5]))
    with pytest.raises(VaelabError, match="positive and finite"):
        coding_tables(density, np.array([0.0]))
