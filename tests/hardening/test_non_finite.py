"""NaN/Inf in the loss: stop with a diagnostic (step, term) keeping the last good checkpoint, or skip.

A fault is injected into one term of the objective at chosen training steps (counted from 1
over the whole run), so the expected step, epoch and term of the diagnostic are known exactly.
"""

from __future__ import annotations

import pytest
import torch

from vaelab.errors import VaelabError
from vaelab.runs import read_metrics
from vaelab.training import train
from vaelab.training.checkpoint import load_checkpoint

STEPS_PER_EPOCH = 8


@pytest.fixture
def poison(monkeypatch):
    """``poison({step: (term, value)})``: that training step's ``term`` becomes ``value`` (NaN or ±Inf)."""
    from vaelab.models.losses import ELBO

    def install(faults: dict[int, tuple[str, float]]):
        real = ELBO.__call__
        calls = {"n": 0}

        def faulty(self, output, x, kl_weight=1.0):
            terms = real(self, output, x, kl_weight)
            if torch.is_grad_enabled():  # validation and test evaluations (no_grad) are not training steps
                calls["n"] += 1
                if calls["n"] in faults:
                    term, value = faults[calls["n"]]
                    terms.parts[term] = terms.parts[term] + value
                    terms.loss = terms.loss + value
            return terms

        monkeypatch.setattr(ELBO, "__call__", faulty)

    return install


@pytest.mark.parametrize("term, value", [("kl", float("nan")), ("reconstruction", float("inf"))])
def test_a_non_finite_term_stops_training_naming_step_and_term_and_keeps_the_last_checkpoint(
        tmp_path, poison, tiny_config, term, value):
    train(tiny_config(epochs=1), tmp_path / "one-epoch", progress=False)  # the last good checkpoint, made apart
    step = STEPS_PER_EPOCH + 3  # the 3rd step of epoch 2
    poison({step: (term, value)})
    with pytest.raises(VaelabError) as err:
        train(tiny_config(epochs=3), tmp_path / "run", progress=False)
    message = str(err.value)
    assert "\n" not in message
    assert f"training stopped at step {step} (epoch 2): the {term} term is not finite" in message
    assert "the last good checkpoint (epoch 1) is kept" in message
    kept = load_checkpoint(tmp_path / "run")
    assert kept["state"]["epoch"] == 1 and kept["state"]["step"] == STEPS_PER_EPOCH
    good = load_checkpoint(tmp_path / "one-epoch")["model"]
    assert all(torch.equal(kept["model"][k], good[k]) for k in good)
    (event,) = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["event"] == "non_finite"]
    assert event["term"] == term and event["step"] == step - 1  # the step counter before the failed step


def test_the_cli_reports_a_non_finite_loss_on_one_line(tmp_path, poison, cli, one_error_line):
    poison({2: ("kl", float("nan"))})
    status, _, err = cli("train", "--data", "digits", "--limit", "256", "--model", "mlp-vae", "--latent-dim", "3",
                         "--epochs", "1", "--batch-size", "32", "--threads", "1", "--quiet", "--no-report",
                         "--out", tmp_path / "run")
    line = one_error_line(err)
    assert status == 2
    assert "step 2 (epoch 1): the kl term is not finite; no checkpoint had been written yet" in line


def test_skip_policy_skips_exactly_the_bad_steps_and_trains_on(tmp_path, poison, tiny_config):
    bad = {3: ("kl", float("nan")), 12: ("reconstruction", float("-inf")), 13: ("kl", float("inf"))}
    poison(bad)
    result = train(tiny_config(epochs=2, nan_policy="skip"), tmp_path / "run", progress=False)
    assert result.final["skipped_steps"] == len(bad)
    assert result.steps == 2 * STEPS_PER_EPOCH - len(bad)  # a skipped step takes no optimiser step
    events = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["event"] == "non_finite"]
    # logged with the step counter before the bad step; earlier skips hold the counter back
    taken_before = [s - 1 - sum(1 for b in bad if b < s) for s in sorted(bad)]
    assert [(e["step"], e["term"]) for e in events] == [(t, bad[s][0]) for t, s in zip(taken_before, sorted(bad))]
    assert all(torch.isfinite(v).all() for v in load_checkpoint(tmp_path / "run")["model"].values())
