"""The losses training minimises, checked through the engine against their formulas.

Each step record of ``metrics.jsonl`` holds the batch means of the loss and its parts over
``log_every`` steps; every loss here is linear in its parts, so the logged loss must equal the
formula applied to the logged parts — with the run's β, its warm-up weight at that step, its λ.
Drop β, the warm-up or λ from a loss and these tests fail.
"""

from __future__ import annotations

import pytest

from vaelab.config import from_dict
from vaelab.models import kl_warmup_weight
from vaelab.runs import RunConfig, read_metrics
from vaelab.training import train

STEPS_PER_EPOCH = 4   # 256 digits, batch 64


def _run(tmp_path, model: dict, **train_kw):
    config = from_dict(RunConfig, {"model": model, "data": {"name": "digits", "limit": 256},
                                   "train": {"epochs": 2, "batch_size": 64, "log_every": 1, "report": False,
                                             "threads": 1, **train_kw}})
    train(config, tmp_path / "run", progress=False)
    return [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["event"] == "step"]


def test_the_warm_up_weight_follows_its_schedule():
    assert [kl_warmup_weight(s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert kl_warmup_weight(0, 0) == 1.0 and kl_warmup_weight(10_000, 0) == 1.0
    assert kl_warmup_weight(2, 1000) == pytest.approx(3 / 1000)


@pytest.mark.parametrize("beta", [0.0, 4.0])
def test_beta_weighs_the_kl_of_the_trained_loss(tmp_path, beta):
    steps = _run(tmp_path, {"name": "conv-vae", "latent_dim": 3, "beta": beta})
    assert len(steps) == 2 * STEPS_PER_EPOCH
    for r in steps:
        assert r["kl_weight"] == 1.0
        assert r["loss"] == pytest.approx(r["reconstruction"] + beta * r["kl"], rel=1e-5, abs=1e-4)
    assert steps[-1]["kl"] > 0.01   # a KL there to weigh


def test_kl_warm_up_weights_the_kl_step_by_step(tmp_path):
    steps = _run(tmp_path, {"name": "mlp-vae", "latent_dim": 3, "beta": 2.0}, kl_warmup_epochs=1.5)
    warmup = int(1.5 * STEPS_PER_EPOCH)
    for r in steps:   # a record's step counts the steps taken, so its weight is the one of step − 1
        assert r["kl_weight"] == pytest.approx(kl_warmup_weight(r["step"] - 1, warmup))
        assert r["loss"] == pytest.approx(r["reconstruction"] + 2.0 * r["kl_weight"] * r["kl"], rel=1e-5, abs=1e-4)
    assert [r["kl_weight"] for r in steps][:3] == pytest.approx([1 / 6, 2 / 6, 3 / 6])


def test_the_rate_distortion_loss_warms_up_its_rate_and_weighs_distortion_by_lambda(tmp_path):
    # One quality level, so every image has the same λ and the batch means stay linear.
    steps = _run(tmp_path, {"name": "conv-rd", "hidden": [8, 8], "latent_channels": 2, "rd_lambdas": [0.7]},
                 kl_warmup_epochs=1.0)
    for r in steps:
        w = kl_warmup_weight(r["step"] - 1, STEPS_PER_EPOCH)
        assert r["kl_weight"] == pytest.approx(w)
        assert r["loss"] == pytest.approx(w * r["rate"] + 0.7 * r["distortion"], rel=1e-5, abs=1e-3)
    assert {"rate", "distortion"} <= set(steps[0]) and "kl" not in steps[0]


def test_iwae_trains_on_the_bound_and_reports_it(tmp_path):
    steps = _run(tmp_path, {"name": "mlp-vae", "latent_dim": 3, "objective": "iwae", "iw_samples": 5})
    for r in steps:   # the bound's split into reconstruction and KL adds up to it
        assert r["loss"] == pytest.approx(r["reconstruction"] + r["kl"], rel=1e-5, abs=1e-4)
