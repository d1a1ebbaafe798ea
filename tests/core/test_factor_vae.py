"""FactorVAE (Kim & Mnih 2018): permute_dims against its definition, the density-ratio TC against a loop over
the paper's formula and against a Gaussian whose total correlation is known, the discriminator's own
optimiser (kept out of the main one, saved, resumed exactly after a SIGKILL), and the verbs that must not
touch the discriminator."""

from __future__ import annotations

import math
import signal

import pytest
import torch

import vaelab
from vaelab.config import from_dict
from vaelab.errors import VaelabError
from vaelab.models import ModelConfig, build_model
from vaelab.models.factor_vae import Discriminator
from vaelab.models.losses import density_ratio_tc, discriminator_loss, permute_dims
from vaelab.runs import RunConfig, read_metrics
from vaelab.training import train
from vaelab.training.checkpoint import load_checkpoint
from vaelab.training.auxiliary import main_parameters

SMALL = {"name": "factor-vae", "latent_dim": 3, "discriminator_hidden": [16, 16]}


def small_model(**settings):
    torch.manual_seed(0)
    return build_model(from_dict(ModelConfig, {**SMALL, **settings}), (1, 8, 8))


def run_config(epochs=2, **train_kw):
    return from_dict(RunConfig, {"model": SMALL, "data": {"name": "digits", "limit": 256},
                                 "train": {"epochs": epochs, "batch_size": 64, "report": False, "threads": 1,
                                           "deterministic": True, "log_every": 1, **train_kw}})


# -- permute_dims -------------------------------------------------------------------------------
def test_permute_dims_keeps_every_column_and_breaks_the_joint():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(2000, 1, generator=g, dtype=torch.float64)
    z = torch.cat([t, t, -t, torch.randn(2000, 1, generator=g, dtype=torch.float64)], dim=1)  # three dims say one thing
    shuffled = permute_dims(z, torch.Generator().manual_seed(1))
    for d in range(z.shape[1]):   # the same multiset in each column: the marginals q(z_d) are kept
        assert torch.equal(shuffled[:, d].sort().values, z[:, d].sort().values)
    assert not torch.equal(shuffled, z)
    before = torch.corrcoef(z.T)
    after = torch.corrcoef(shuffled.T)
    assert before[0, 1] == pytest.approx(1.0) and before[0, 2] == pytest.approx(-1.0)
    off_diagonal = after[~torch.eye(4, dtype=torch.bool)]
    assert off_diagonal.abs().max() < 0.1          # independent columns: |ρ| ≈ 1/√2000
    # each column moved by its own permutation, not all by one (which would keep the rows' joint)
    assert (shuffled[:, 0] == shuffled[:, 1]).float().mean() < 0.01


# -- the TC estimate and the discriminator's loss against the paper's formulas, as loops ---------------
def test_the_loss_is_the_papers_formula_written_as_a_loop():
    model = small_model(gamma=3.5).train()
    loss = model.config.loss()
    x = torch.rand(6, 1, 8, 8)
    torch.manual_seed(1)
    with torch.no_grad():
        output = model(x)
        terms = loss(output, x)
    for i in range(6):
        p = torch.softmax(output.discriminator_logits[i].double(), 0)
        d = float(p[0])                                   # D(z): the probability that z is a draw of q(z)
        tc = math.log(d / (1 - d))                        # eq. 3: log D(z)/(1 − D(z))
        reconstruction = -float(output.likelihood.log_prob(x)[i])
        kl = sum(0.5 * (float(m) ** 2 + math.exp(float(lv)) - float(lv) - 1)
                 for m, lv in zip(output.posterior.mean[i], output.posterior.logvar[i]))
        assert float(terms.tc[i]) == pytest.approx(tc, rel=1e-5, abs=1e-5)
        assert float(terms.kl[i]) == pytest.approx(kl, rel=1e-5, abs=1e-6)   # float32 KL
        assert float(terms.loss[i]) == pytest.approx(reconstruction + kl + 3.5 * tc, rel=1e-5, abs=1e-4)


def test_the_discriminator_loss_is_the_papers_cross_entropy():
    g = torch.Generator().manual_seed(3)
    real, permuted = torch.randn(7, 2, generator=g), torch.randn(5, 2, generator=g)
    log_d = [math.log(float(torch.softmax(r, 0)[0])) for r in real]          # log D(z)
    log_not_d = [math.log(float(torch.softmax(p, 0)[1])) for p in permuted]  # log(1 − D(z̃))
    expected = -0.5 * (sum(log_d) / 7 + sum(log_not_d) / 5)
    assert float(discriminator_loss(real, permuted)) == pytest.approx(expected, rel=1e-6)


# -- against a Gaussian whose total correlation is known: TC = −½ log(1 − ρ²) ----------------------------
def _correlated(n, rho, g):
    a, b = torch.randn(n, generator=g), torch.randn(n, generator=g)
    return torch.stack([a, rho * a + math.sqrt(1 - rho ** 2) * b], dim=1)


def _log_ratio(z, rho):
    """log N(z; 0, [[1, ρ], [ρ, 1]]) − log N(z₁; 0, 1) − log N(z₂; 0, 1): the optimal discriminator's logit."""
    a, b = z[:, 0], z[:, 1]
    quad = (a ** 2 - 2 * rho * a * b + b ** 2) / (1 - rho ** 2)
    return -0.5 * quad - 0.5 * math.log(1 - rho ** 2) + 0.5 * (a ** 2 + b ** 2)


def test_the_optimal_discriminator_gives_the_true_tc_and_minimises_the_loss():
    rho, g = 0.8, torch.Generator().manual_seed(4)
    z = _correlated(200_000, rho, g)
    optimal = lambda v, scale=1.0: torch.stack([scale * _log_ratio(v, rho), torch.zeros(len(v))], 1)  # noqa: E731
    assert float(density_ratio_tc(optimal(z)).mean()) == pytest.approx(-0.5 * math.log(1 - rho ** 2), rel=0.02)
    shuffled = permute_dims(z, g)
    best = float(discriminator_loss(optimal(z), optimal(shuffled)))
    for worse in (0.7, 1.3, -1.0):      # a scaled or sign-flipped ratio separates the two worse
        assert float(discriminator_loss(optimal(z, worse), optimal(shuffled, worse))) > best + 1e-3


@pytest.fixture
def one_thread():
    """One torch thread: this many tiny steps ran 20× slower with a thread pool fighting other processes for 2 cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("rho", [0.0, 0.9])
def test_a_trained_discriminator_estimates_the_known_tc(rho, one_thread):
    torch.manual_seed(5)
    g = torch.Generator().manual_seed(6)
    disc = Discriminator(2, [64, 64])
    opt = torch.optim.Adam(disc.parameters(), lr=3e-3)
    for _ in range(600):
        z = _correlated(512, rho, g)
        opt.zero_grad()
        discriminator_loss(disc(z), disc(permute_dims(z, g))).backward()
        opt.step()
    with torch.no_grad():
        estimate = float(density_ratio_tc(disc(_correlated(20_000, rho, g))).mean())
    assert estimate == pytest.approx(-0.5 * math.log(1 - rho ** 2), abs=0.12)


# -- the discriminator: out of the main optimiser, out of sampling and encoding -----------------------
def test_the_discriminator_is_no_main_parameter_and_the_vae_loss_leaves_it_alone():
    model = small_model().train()
    disc = {id(p) for p in model.discriminator.parameters()}
    assert {id(p) for p in model.auxiliary_parameters()} == disc
    main = main_parameters(model)
    assert not disc & {id(p) for p in main}
    assert len(main) + len(disc) == len(list(model.parameters()))
    x = torch.rand(4, 1, 8, 8)
    model.config.loss()(model(x), x).loss.mean().backward()
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_sampling_encoding_and_the_codec_never_call_the_discriminator():
    model = small_model().eval()

    def refuse(*args):
        raise AssertionError("the discriminator was called")

    model.discriminator.forward = refuse
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert model.sample(2, torch.Generator().manual_seed(0)).shape == (2, 1, 8, 8)
        assert model.encode(x).mean.shape == (3, 3)
        assert model.reconstruct(x).shape == (3, 1, 8, 8)
        coder = model.entropy_model()
        images = (x * 255).to(torch.uint8).numpy()
        codes = coder.analysis(images)
        assert coder.synthesis(coder.decompress_latents(coder.compress_latents(codes, 9.0), 9.0), 9.0).shape \
            == images.shape


def test_bad_settings_are_refused_in_one_line():
    for bad, match in (({"discriminator_lr": 0.0}, "discriminator_lr"), ({"gamma": -1.0}, "gamma"),
                       ({"discriminator_hidden": [0]}, "discriminator_hidden"), ({"beta": 4.0}, "not a setting")):
        with pytest.raises(VaelabError, match=match) as err:
            from_dict(ModelConfig, {**SMALL, **bad})
        assert "\n" not in str(err.value)


# -- training: the second optimiser steps, is saved, and resumes exactly ----------------------------------
def test_training_steps_the_discriminator_with_its_own_adam(tmp_path):
    config = run_config(epochs=1)
    train(config, tmp_path / "run", progress=False)
    initial = small_model()       # the weights training started from (the same seed)
    ck = load_checkpoint(tmp_path / "run")
    n_disc = len(list(initial.discriminator.parameters()))
    n_main = len(list(initial.parameters())) - n_disc
    assert len(ck["optimizer"]["param_groups"][0]["params"]) == n_main
    aux = ck["auxiliary"]["param_groups"][0]
    assert len(aux["params"]) == n_disc and aux["betas"] == (0.5, 0.9) and aux["lr"] == pytest.approx(1e-4)
    steps = read_metrics(tmp_path / "run" / "metrics.jsonl")[-1]["step"]
    assert all(int(s["step"]) == steps for s in ck["auxiliary"]["state"].values())
    for name, value in initial.discriminator.state_dict().items():
        assert not torch.equal(value, ck["model"][f"discriminator.{name}"]), name
    records = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["event"] == "step"]
    for r in records:
        assert r["loss"] == pytest.approx(r["reconstruction"] + r["kl"] + 6.4 * r["tc"], rel=1e-5, abs=1e-4)
    loaded = vaelab.load(tmp_path / "run")    # model.safetensors (the one epoch's weights) carries the discriminator
    for name, value in loaded.discriminator.state_dict().items():
        assert torch.equal(value, ck["model"][f"discriminator.{name}"]), name


def test_a_run_without_auxiliary_parameters_writes_no_auxiliary_state(tmp_path):
    config = from_dict(RunConfig, {"model": {"name": "conv-vae", "latent_dim": 3},
                                   "data": {"name": "digits", "limit": 128},
                                   "train": {"epochs": 1, "batch_size": 64, "report": False, "threads": 1}})
    train(config, tmp_path / "run", progress=False)
    assert load_checkpoint(tmp_path / "run")["auxiliary"] is None
    assert "auxiliary" not in (tmp_path / "run" / "checkpoint.json").read_text()


ARGS = ["train", "--data", "digits", "--limit", "256", "--model", "factor-vae", "--latent-dim", "3",
        "--discriminator-hidden", "16-16", "--discriminator-lr", "1e-3", "--binarize", "dynamic", "--epochs", "4",
        "--batch-size", "32", "--deterministic", "--threads", "1", "--no-report", "--quiet"]


def test_sigkill_then_resume_matches_an_uninterrupted_run_discriminator_and_its_adam_included(tmp_path, processes):
    straight = processes.start(*ARGS, "--out", str(tmp_path / "straight"))          # alongside the killed run
    killed_dir = tmp_path / "killed"
    killed = processes.kill_at("forward:12", *ARGS, "--out", killed_dir)    # step 12 of 32: inside epoch 2
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    straight.communicate(timeout=600)
    assert straight.returncode == 0
    epoch_at_kill = load_checkpoint(killed_dir)["state"]["epoch"]
    resumed = processes.start("train", "--out", str(killed_dir), "--resume", "--quiet", "--threads", "1")
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err.decode()
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(killed_dir)
    assert epoch_at_kill < 4 and a["state"]["epoch"] == b["state"]["epoch"] == 4
    assert any(name.startswith("discriminator.") for name in a["model"])
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    for key, state in a["auxiliary"]["state"].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["auxiliary"]["state"][key][name])), name


def test_resuming_without_the_auxiliary_state_starts_it_afresh(tmp_path):
    """A checkpoint that holds no auxiliary state (as every checkpoint before it existed) still resumes."""
    from vaelab.training.auxiliary import load_auxiliary

    model = small_model()
    optimizer = model.config.loss().auxiliary_optimizer(model.auxiliary_parameters())
    fresh = optimizer.state_dict()
    load_auxiliary(optimizer, {"auxiliary": None}, tmp_path / "checkpoint.safetensors")
    assert optimizer.state_dict() == fresh
    other = torch.optim.SGD(model.auxiliary_parameters(), lr=0.1)
    with pytest.raises(VaelabError, match="another auxiliary optimiser"):
        load_auxiliary(optimizer, {"auxiliary": other.state_dict()}, tmp_path / "checkpoint.safetensors")
    smaller = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], betas=(0.5, 0.9))
    with pytest.raises(VaelabError, match="does not fit this run's model"):
        load_auxiliary(optimizer, {"auxiliary": smaller.state_dict()}, tmp_path / "checkpoint.safetensors")


def test_evaluate_and_sample_work_on_a_factor_vae_run(tmp_path):
    from vaelab.cli import main

    train(run_config(epochs=1), tmp_path / "run", progress=False)
    assert main(["evaluate", str(tmp_path / "run"), "--limit", "20", "-k", "2", "--skip", "samples,representation",
                "--no-save"]) == 0
    assert main(["sample", str(tmp_path / "run"), "-n", "2", "--seed", "0", "-o", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").exists()
