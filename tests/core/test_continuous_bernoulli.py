"""The continuous Bernoulli likelihood against numerical integration of its density (independent truth)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaelab.distributions import ContinuousBernoulli

ETAS = [-30.0, -4.0, -0.7, -1e-3, 0.0, 5e-4, 0.3, 2.0, 9.0, 40.0]


def _density(eta: float, x: np.ndarray) -> np.ndarray:
    """C(η) λ^x (1 − λ)^(1−x) with C(η) integrated numerically, not from its closed form."""
    log_lam, log_not = -np.logaddexp(0, -eta), -np.logaddexp(0, eta)     # log λ, log(1 − λ)
    unnormalised = lambda t: np.exp(t * log_lam + (1 - t) * log_not)     # noqa: E731
    grid = np.linspace(0, 1, 200_001)
    return unnormalised(x) / np.trapezoid(unnormalised(grid), grid)


@pytest.mark.parametrize("eta", ETAS)
def test_density_mean_and_cdf_match_the_integrals(eta):
    dist = ContinuousBernoulli(torch.full((1, 1, 1, 1), eta, dtype=torch.float64))
    grid = np.linspace(0, 1, 200_001)
    p = _density(eta, grid)
    for i in (0, 26_000, 100_000, 174_000, 200_000):    # x = 0, 0.13, 0.5, 0.87, 1 on the grid
        x = float(grid[i])
        got = float(dist.log_prob(torch.full((1, 1, 1, 1), x, dtype=torch.float64)))
        assert got == pytest.approx(float(np.log(_density(eta, np.array(x)))), abs=2e-5)
        expected_cdf = np.trapezoid(p[: i + 1], grid[: i + 1])
        assert float(dist.cdf(torch.full((1, 1, 1, 1), x, dtype=torch.float64))) == pytest.approx(expected_cdf, abs=2e-6)
    assert float(dist.mean) == pytest.approx(np.trapezoid(grid * p, grid), abs=2e-6)


@pytest.mark.parametrize("eta", [-3.0, 0.0, 1e-4, 2.5])
def test_samples_follow_the_cdf(eta):
    dist = ContinuousBernoulli(torch.full((40_000,), eta, dtype=torch.float64).view(-1, 1, 1, 1))
    x = dist.sample(torch.Generator().manual_seed(0)).flatten()
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    for q in (0.2, 0.5, 0.9):
        empirical = float((x <= q).double().mean())
        assert empirical == pytest.approx(float(dist.cdf(torch.tensor(q).view(1, 1, 1, 1))[0]), abs=0.01)


@pytest.mark.parametrize("eta", [-6.0, -0.2, 0.0, 1.5, 12.0])
def test_the_8_bit_masses_sum_to_one(eta):
    levels = torch.arange(256, dtype=torch.float64).view(256, 1, 1, 1) / 255
    dist = ContinuousBernoulli(torch.full((256, 1, 1, 1), eta, dtype=torch.float64))
    assert float(dist.discretized_log_prob(levels).exp().sum()) == pytest.approx(1.0, abs=1e-9)


def test_a_vae_trains_on_it_and_evaluates_as_a_discrete_likelihood(tmp_path):
    from vaelab.config import from_dict
    from vaelab.evaluation import evaluate_run
    from vaelab.runs import RunConfig
    from vaelab.training import train

    config = from_dict(RunConfig, {"model": {"name": "conv-vae", "latent_dim": 3, "likelihood": "continuous-bernoulli"},
                                   "data": {"name": "digits", "limit": 256},
                                   "train": {"epochs": 1, "batch_size": 64, "report": False, "threads": 1}})
    result = train(config, tmp_path / "run", progress=False)
    assert math.isfinite(result.final["test_neg_elbo"])
    doc = evaluate_run(tmp_path / "run", progress=False, write=False,
                       settings=__import__("vaelab").evaluation.EvaluationSettings(
                           nll_samples=4, limit=20, skip=("samples", "representation")))
    lik = doc["likelihood"]
    assert lik["kind"] == "discretized-continuous-bernoulli-8bit"
    # a probability of 8-bit images: each pixel costs at least 0 nats, so the NLL bound is positive
    assert lik["nll"]["mean"] > 0
