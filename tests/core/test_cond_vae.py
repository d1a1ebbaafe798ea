"""cond-vae: the label conditions the model, the loss is the formula, labels travel with their images.

Truths used: a logistic regression fitted on the real digits (independent of the model) to
classify samples drawn with a fixed label; the ELBO and cross-entropy written out as loops over
pixels, dimensions and classes; labels looked up through the split's positions in the source
(scikit-learn's own copy of the digits); the single-process batch for DDP and resume.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import vaelab
from vaelab import VaelabError
from vaelab.config import from_dict
from vaelab.data import BatchLoader, load_data
from vaelab.models import build_model
from vaelab.models.cond_vae import LABEL_LOGVAR
from vaelab.models.losses import ConditionalELBO
from vaelab.runs import RunConfig, read_metrics
from vaelab.training import train
from vaelab.training.checkpoint import load_checkpoint


def run_config(epochs=2, data=None, **train_kw):
    return from_dict(RunConfig, {
        "model": {"name": "cond-vae", "latent_dim": 4},
        "data": data or {"name": "digits"},
        "train": {"epochs": epochs, "batch_size": 64, "lr": 3e-3, "report": False, "threads": 1, **train_kw},
    })




@pytest.fixture(scope="module")
def trained(cond_vae_run):
    """The session's cond-vae run (tests/conftest.py): latent 4 + 10 classes, 15 epochs on the 8×8 digits."""
    return cond_vae_run


@pytest.fixture(scope="module")
def digits():
    return load_data(run_config().data)


# -- the label conditions the model -----------------------------------------------------------------
def test_decoding_one_z_under_two_labels_gives_two_images(trained):
    model = vaelab.load(trained)
    z = torch.randn(8, model.z_dim, generator=torch.Generator().manual_seed(0))
    onehot = lambda k: torch.nn.functional.one_hot(torch.full((8,), k), 10).float()  # noqa: E731
    three, seven = (model.decode_mean(torch.cat([z, onehot(k)], 1)) for k in (3, 7))
    # mean absolute difference of pixel probabilities: a different digit, not a nudge
    assert (three - seven).abs().mean() > 0.1


def test_samples_of_a_label_are_that_class_for_an_independent_classifier(trained, digits):
    from sklearn.linear_model import LogisticRegression

    flat = lambda images: images.float().div(255).flatten(1).numpy()  # noqa: E731
    judge = LogisticRegression(max_iter=2000).fit(flat(digits.train.images), digits.train.labels.numpy())
    assert judge.score(flat(digits.test.images), digits.test.labels.numpy()) > 0.9   # the judge is competent
    model = vaelab.load(trained)
    hits, own = [], []
    for k in range(10):
        samples = model.sample(40, torch.Generator().manual_seed(k), label=k)
        hits.append(np.mean(judge.predict(samples.flatten(1).numpy()) == k))
        own.append((model.classify(samples).argmax(1) == k).float().mean().item())
    assert np.mean(hits) > 0.8 and min(hits) > 0.3, hits   # chance is 0.1
    assert np.mean(own) > 0.8, own


def test_the_generic_verbs_use_the_classifiers_label(trained, digits):
    model = vaelab.load(trained)
    x = digits.test.images[:50].float().div(255)
    predicted = model.classify(x).argmax(1)
    codes = model.encode_mean(x)
    assert codes.shape == (50, model.z_dim + 10) == (50, model.latent_dim)
    assert torch.equal(codes[:, model.z_dim:].argmax(1), predicted)
    assert torch.equal(codes[:, model.z_dim:].sum(1), torch.ones(50))
    accuracy = (predicted == digits.test.labels[:50]).float().mean()
    assert accuracy > 0.8


def test_sample_fixes_the_label_and_keeps_z_across_labels(trained):
    model = vaelab.load(trained)
    a = model.sample_latents(6, torch.Generator().manual_seed(1), label=2)
    b = model.sample_latents(6, torch.Generator().manual_seed(1), label=5)
    assert torch.equal(a[:, :model.z_dim], b[:, :model.z_dim])
    assert (a[:, model.z_dim:].argmax(1) == 2).all() and (b[:, model.z_dim:].argmax(1) == 5).all()
    drawn = model.sample_latents(400, torch.Generator().manual_seed(2))[:, model.z_dim:].argmax(1)
    assert len(torch.unique(drawn)) == 10       # y ~ uniform p(y) without a label
    for bad in (10, -1, 2.0, True):
        with pytest.raises(VaelabError, match="class number"):
            model.sample(2, label=bad)


# -- the loss is the formula -------------------------------------------------------------------------
def test_the_conditional_elbo_equals_a_loop_over_the_formula():
    torch.manual_seed(0)
    model = build_model(run_config().model, (1, 8, 8)).eval()
    x = torch.bernoulli(torch.rand(3, 1, 8, 8))
    labels = torch.tensor([4, 0, 9])
    out = model(x, labels=labels, generator=torch.Generator().manual_seed(0))
    beta, alpha, w = 1.7, 0.3, 0.5
    terms = ConditionalELBO(beta, alpha)(out, x, w)
    logits = out.x_hat.double()
    mean = out.z_posterior.mean.double()
    logvar = out.z_posterior.logvar.double()
    class_logits = out.class_logits.double()
    for i in range(3):
        reconstruction = 0.0
        for p in range(64):
            prob = 1 / (1 + math.exp(-logits[i].flatten()[p].item()))
            xp = x[i].flatten()[p].item()
            reconstruction -= xp * math.log(prob) + (1 - xp) * math.log(1 - prob)
        kl = sum(0.5 * (mean[i, d].item() ** 2 + math.exp(logvar[i, d].item()) - 1 - logvar[i, d].item())
                 for d in range(4))
        log_norm = math.log(sum(math.exp(class_logits[i, k].item()) for k in range(10)))
        ce = log_norm - class_logits[i, labels[i]].item()
        assert terms.parts["reconstruction"][i].item() == pytest.approx(reconstruction, rel=1e-5, abs=1e-5)
        assert terms.parts["kl"][i].item() == pytest.approx(kl, rel=1e-5, abs=1e-5)
        assert terms.parts["classification"][i].item() == pytest.approx(ce, rel=1e-5, abs=1e-5)
        assert terms.loss[i].item() == pytest.approx(reconstruction + beta * w * kl + alpha * ce, rel=1e-5, abs=1e-5)
        assert terms.negative_elbo[i].item() == pytest.approx(reconstruction + kl, rel=1e-5, abs=1e-5)
    # the encoder saw the given labels: the label part of the latent is their one-hot
    assert torch.equal(out.z[:, 4:].argmax(1), labels)


def test_the_generic_log_weight_is_the_conditional_one_minus_log_c():
    """log p(z, ŷ) − log q(z, ŷ|x) over the generic latent = log N(z; 0, I) − log q(z|x, ŷ) − log C."""
    torch.manual_seed(0)
    model = build_model(run_config().model, (1, 8, 8)).eval()
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        out = model(x, samples=3, generator=torch.Generator().manual_seed(0))       # labels = the classifier's
    z = out.z                                                                      # (3, 5, 4 + 10)
    generic = out.prior.log_prob(z) - out.posterior.log_prob(z)
    normal = -0.5 * (z[..., :4].double() ** 2 + math.log(2 * math.pi)).sum(-1)
    conditional = normal - out.z_posterior.log_prob(z[..., :4]).double()
    torch.testing.assert_close(generic.double(), conditional - math.log(10), atol=2e-3, rtol=0)
    assert LABEL_LOGVAR < -10      # a near point mass: the decoder reads the one-hot


def test_the_likelihood_bound_sums_the_labels_out(trained, digits):
    """evaluation's IWAE bound for a cond-vae is on −log p(x) = −log Σ_y p(x|y) p(y): it matches the sum over
    labels of per-label importance-sampling estimates of p(x|y) written from the formula, and lies below the
    bound on −log p(x, ŷ) that the classifier's label alone gives, on average over the images its classifier
    is least sure of (where the label sum matters)."""
    from vaelab.evaluation.likelihood import iwae_bound

    model = vaelab.load(trained)
    with torch.no_grad():       # the images the classifier is least sure of: there the label sum matters
        sure = torch.softmax(model.classify(digits.test.images.float() / 255), -1).max(-1).values
    images = digits.test.images[sure.argsort()[:6]]
    x = images.float() / 255
    K, C, D = 4000, model.classes, model.z_dim
    g = torch.Generator().manual_seed(1)
    per_label = []
    with torch.no_grad():
        for y in range(C):
            labels = torch.full((len(x),), y)
            posterior = model.posterior_given(x, labels)
            mean, logvar = posterior.mean[:, :D].double(), posterior.logvar[:, :D].double()
            z = mean + (0.5 * logvar).exp() * torch.randn((K, *mean.shape), generator=g, dtype=torch.float64)
            onehot = model.onehot(labels).expand(K, -1, -1)
            logits = model.decode(torch.cat([z.float(), onehot], -1).flatten(0, 1)).view(K, *x.shape).double()
            log_px_z = -torch.nn.functional.binary_cross_entropy_with_logits(
                logits, x.double().expand_as(logits), reduction="none").flatten(2).sum(-1)
            log_pz = (-0.5 * (z**2 + math.log(2 * math.pi))).sum(-1)
            log_qz = (-0.5 * ((z - mean) ** 2 / logvar.exp() + logvar + math.log(2 * math.pi))).sum(-1)
            per_label.append(torch.logsumexp(log_px_z + log_pz - log_qz, 0) - math.log(K))     # log p(x|y)
    truth = -(torch.logsumexp(torch.stack(per_label), 0) - math.log(C))
    marginal = iwae_bound(model, images, K, seed=2).nll
    # An upper bound on −log p(x) that K = 4,000 samples bring within a few tenths of the 40,000-sample truth
    assert (marginal > truth - 0.05).all() and (marginal - truth).max() < 0.3
    model.importance_proposal = model.encode                 # the classifier's label only: −log p(x, ŷ)
    joint = iwae_bound(model, images, K, seed=2).nll
    # Fixing ŷ misses the other labels' mass (2.4 nats on the least sure image here); per image, with finite
    # K, the mixture can also be the looser one where ŷ was right but q(y|x) spread its samples.
    assert marginal.mean() < joint.mean() - 0.2


# -- labels through the loader ----------------------------------------------------------------------
def position_images(n: int) -> torch.Tensor:
    """(n, 1, 2, 2) uint8 images that spell their own position: (i mod 256, i div 256)."""
    i = torch.arange(n)
    return torch.stack([i % 256, i // 256, i % 7, i % 11], 1).view(n, 1, 2, 2).to(torch.uint8)


def positions(x: torch.Tensor) -> torch.Tensor:
    flat = (x.flatten(1) * 255).round().long()
    return flat[:, 0] + 256 * flat[:, 1]


def test_the_loader_yields_each_images_own_label(digits):
    from sklearn.datasets import load_digits

    train_set = digits.train
    source_labels = torch.from_numpy(load_digits().target)          # scikit-learn's copy, by source position
    loader = BatchLoader(position_images(len(train_set)), 64, seed=3, labels=train_set.labels)
    seen = []
    for x, y in loader:
        where = positions(x)
        assert torch.equal(y, train_set.labels[where])
        assert torch.equal(y, source_labels[train_set.indices[where]])
        seen.append(where)
    assert len(torch.unique(torch.cat(seen))) == len(loader) * 64   # a permutation, no repeats


def test_resuming_mid_epoch_gives_the_same_pairs_and_noise(digits):
    train_set = digits.train
    loader = BatchLoader(train_set.images, 64, seed=1, binarize=True, labels=train_set.labels)
    loader.set_epoch(2)
    straight = list(loader.batches())
    resumed = list(loader.batches(start=5))
    assert len(resumed) == len(straight) - 5
    for (x, y), (x2, y2) in zip(straight[5:], resumed):
        assert torch.equal(x, x2) and torch.equal(y, y2)
    plain = BatchLoader(train_set.images, 64, seed=1, binarize=True)      # labels take no random numbers
    plain.set_epoch(2)
    assert all(torch.equal(x, x2) for (x, _), x2 in zip(straight, plain.batches()))


def test_ddp_rank_slices_keep_the_pairs(digits):
    train_set = digits.train
    images = position_images(len(train_set))
    single = BatchLoader(images, 64, seed=4, labels=train_set.labels)
    ranks = [BatchLoader(images, 64, seed=4, labels=train_set.labels, rank=r, world_size=2) for r in (0, 1)]
    for (x, y), *parts in zip(single, *ranks):
        pairs = {(int(p), int(label)) for p, label in zip(positions(x), y)}
        rank_pairs = {(int(p), int(label)) for xr, yr in parts for p, label in zip(positions(xr), yr)}
        assert rank_pairs == pairs
        for xr, yr in parts:
            assert torch.equal(yr, train_set.labels[positions(xr)])


def test_two_processes_train_the_classifier_as_one(tmp_path):
    """Under torchrun each rank draws its own reparameterisation noise, so the VAE's weights differ
    from a single process' by design; the classifier's gradient depends on the (image, label)
    pairs alone, so its weights must match — and would not if a rank's labels were not its images'."""
    args = ["train", "--data", "digits", "--limit", "256", "--model", "cond-vae", "--latent-dim", "3",
            "--epochs", "1", "--batch-size", "32", "--deterministic", "--threads", "1", "--precision", "fp32",
            "--no-report", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "vaelab", *args, "--out", str(tmp_path / "one")],
                         capture_output=True, env=env, timeout=600)
    assert one.returncode == 0, one.stderr.decode()
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "vaelab", *args, "--out", str(tmp_path / "two")], capture_output=True, env=env,
                         timeout=600)
    assert two.returncode == 0, two.stderr.decode()[-3000:]
    a, b = load_checkpoint(tmp_path / "one")["model"], load_checkpoint(tmp_path / "two")["model"]
    classifier = [name for name in a if name.startswith("classifier.")]
    assert classifier
    for name in classifier:
        torch.testing.assert_close(b[name], a[name], atol=2e-5, rtol=1e-4, msg=name)
    assert all(torch.isfinite(value).all() for value in b.values())


# -- training ----------------------------------------------------------------------------------------
def test_training_resumes_exactly(tmp_path):
    data = {"name": "digits", "limit": 256, "binarize": "dynamic"}
    train(run_config(epochs=2, data=data, deterministic=True), tmp_path / "straight", progress=False)
    short = run_config(epochs=2, data=data, deterministic=True, time_limit=1e-9)   # stops after epoch 1
    train(short, tmp_path / "resumed", progress=False)
    assert load_checkpoint(tmp_path / "resumed")["state"]["epoch"] == 1
    short.train.time_limit = 0.0
    train(short, tmp_path / "resumed", resume=True, progress=False)
    a, b = load_checkpoint(tmp_path / "straight")["model"], load_checkpoint(tmp_path / "resumed")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_data_set_without_labels_is_refused_at_setup(tmp_path, digits):
    import dataclasses

    unlabelled = dataclasses.replace(digits, train=dataclasses.replace(digits.train, labels=None))
    with pytest.raises(VaelabError, match="no labels") as info:
        train(run_config(epochs=1), tmp_path / "run", progress=False, data=unlabelled)
    assert "\n" not in str(info.value)
    with pytest.raises(VaelabError, match="has 3 classes") as info:
        config = run_config(epochs=1)
        config.model.classes = 3
        train(config, tmp_path / "run3", progress=False)
    assert "\n" not in str(info.value)


def test_the_run_records_test_accuracy_and_the_conditional_elbo(trained):
    final = [r for r in read_metrics(trained / "metrics.jsonl") if r["event"] == "final"][0]
    assert final["test_accuracy"] > 0.8
    assert final["test_neg_elbo"] == pytest.approx(final["test_reconstruction"] + final["test_kl"])


# -- the command line ----------------------------------------------------------------------------------
def test_sample_label_by_number_and_name_and_refusals(trained, tiny_vae_run, tmp_path, cli):
    status, out, err = cli("sample", trained, "--label", "7", "-n", "4", "--seed", "0", "--npy", tmp_path / "a.npy",
                           "-o", tmp_path / "a.png")
    assert status == 0, err
    assert "of class 7" in out
    status, _, err = cli("sample", trained, "--label", "7", "-n", "4", "--seed", "0", "--npy", tmp_path / "b.npy",
                         "-o", tmp_path / "b.png")
    assert status == 0 and np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    for label, message in (("12", "out of range"), ("seven", "unknown label 'seven'"), ("²", "unknown label"),
                           ("9" * 5000, "unknown label")):       # int() of these two would raise, not refuse
        status, _, err = cli("sample", trained, "--label", label, "-o", tmp_path / "c.png")
        assert status == 2 and err.count("\n") == 1 and message in err, err
    status, _, err = cli("sample", tiny_vae_run, "--label", "3", "-o", tmp_path / "d.png")
    assert status == 2 and err.count("\n") == 1 and "not conditioned on labels" in err


def test_train_evaluate_sample_by_class_name_on_fashion_mnist(tmp_path, cli, fmnist_available):
    if not fmnist_available:
        pytest.skip("needs Debian's dataset-fashion-mnist")
    run = tmp_path / "fmnist"
    status, _, err = cli("train", "--model", "cond-vae", "--latent-dim", "4", "--data", "fashion-mnist", "--limit",
                         "1024", "--binarize", "dynamic", "--epochs", "1", "--batch-size", "64", "--threads", "1",
                         "--no-report", "--quiet", "--out", run)
    assert status == 0, err
    final = [r for r in read_metrics(run / "metrics.jsonl") if r["event"] == "final"][0]
    assert math.isfinite(final["test_neg_elbo"]) and final["test_accuracy"] > 0.3    # chance is 0.1
    status, out, err = cli("evaluate", run, "--limit", "50", "-k", "2", "--skip", "samples,representation",
                           "--no-save")
    assert status == 0, err
    status, out, err = cli("sample", run, "--label", "sneaker", "-n", "4", "--seed", "0", "-o", run / "s.png")
    assert status == 0 and "of class 7" in out, err          # Fashion-MNIST's class 7 is Sneaker


def test_evaluate_scores_the_models_own_classifier(trained):
    """`representation.classifier` is the share of test images whose argmax q(y|x) is the label,
    counted here one image at a time; models without a classifier have no such entry."""
    from vaelab.evaluation import EvaluationSettings, evaluate_run

    settings = EvaluationSettings(limit=60, probe_train_images=60,
                                  skip=("likelihood", "samples", "disentanglement"))
    result = evaluate_run(trained, settings=settings, progress=False, write=False)
    run = vaelab.open_run(trained)
    model, test = run.model, load_data(run.config.data).test        # the run's own test split
    images, labels = test.images[:60], test.labels[:60]
    with torch.no_grad():
        right = sum(int(model.classify(images[i:i + 1].float() / 255).argmax()) == int(labels[i]) for i in range(60))
    assert result["representation"]["classifier"] == right / 60
