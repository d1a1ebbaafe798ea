"""β-TCVAE (Chen et al. 2018): the total correlation estimator against a loop over its formula,
its value where the answer is known, and the loss the engine trains on."""

from __future__ import annotations

import math

import pytest
import torch

from vaelab.distributions import DiagonalGaussian
from vaelab.models.losses import total_correlation


def _normal_log_pdf(x, mean, logvar):
    return -0.5 * ((x - mean) ** 2 / math.exp(logvar) + logvar + math.log(2 * math.pi))


def test_the_estimator_is_its_formula():
    g = torch.Generator().manual_seed(0)
    B, D, N = 5, 3, 1000
    q = DiagonalGaussian(torch.randn(B, D, generator=g, dtype=torch.float64),
                         0.5 * torch.randn(B, D, generator=g, dtype=torch.float64))
    z = q.sample(torch.Generator().manual_seed(1))
    got = total_correlation(q, z, N)
    for i in range(B):
        joint = math.log(sum(math.exp(sum(_normal_log_pdf(float(z[i, d]), float(q.mean[j, d]), float(q.logvar[j, d]))
                                          for d in range(D))) for j in range(B))) - math.log(N * B)
        marginals = sum(math.log(sum(math.exp(_normal_log_pdf(float(z[i, d]), float(q.mean[j, d]), float(q.logvar[j, d])))
                                     for j in range(B))) - math.log(N * B) for d in range(D))
        assert float(got[i]) == pytest.approx(joint - marginals, rel=1e-10, abs=1e-10)


def test_independent_dimensions_have_no_total_correlation_and_dependent_ones_do():
    g = torch.Generator().manual_seed(2)
    same = DiagonalGaussian(torch.zeros(64, 4, dtype=torch.float64), torch.zeros(64, 4, dtype=torch.float64))
    z = same.sample(g)
    assert torch.allclose(total_correlation(same, z, 1), torch.zeros(64, dtype=torch.float64), atol=1e-12)
    # posteriors strung along one line: every dimension says the same thing
    t = torch.linspace(-3, 3, 64, dtype=torch.float64)[:, None]
    line = DiagonalGaussian(t.expand(64, 4).clone(), torch.full((64, 4), -4.0, dtype=torch.float64))
    assert float(total_correlation(line, line.sample(g), 1).mean()) > 1.0


def test_the_engine_trains_on_kl_plus_beta_minus_one_times_tc(tmp_path):
    from vaelab.config import from_dict
    from vaelab.runs import RunConfig, read_metrics
    from vaelab.training import train

    config = from_dict(RunConfig, {"model": {"name": "conv-vae", "latent_dim": 3, "objective": "tcvae", "beta": 4.0},
                                   "data": {"name": "digits", "limit": 256},
                                   "train": {"epochs": 1, "batch_size": 64, "log_every": 1, "report": False,
                                             "threads": 1}})
    train(config, tmp_path / "run", progress=False)
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    start = records[0]
    assert start["objective"] == f"BetaTCVAE(beta=4, dataset_size={start['train_images']})"
    for r in (r for r in records if r["event"] == "step"):
        assert r["loss"] == pytest.approx(r["reconstruction"] + r["kl"] + 3.0 * r["tc"], rel=1e-5, abs=1e-4)
    final = records[-1]
    assert final["test_neg_elbo"] == pytest.approx(final["test_reconstruction"] + final["test_kl"])
