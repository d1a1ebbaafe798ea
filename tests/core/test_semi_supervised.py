"""cond-vae trained on partly labelled images (M2, Kingma et al. 2014): the bound for an image
without a label, which labels are kept, and the run end to end.

Truths used: M2's bound for an unlabelled image written out as loops over labels, pixels and
dimensions (Σ_y q(y|x)(−log p(x|z_y, y) + β·w·KL_y) − H(q(y|x))); counts of kept labels per class;
the labelled rows' terms equal to a call with those images alone.
"""

from __future__ import annotations

import math

import pytest
import torch

from vaelab import VaelabError
from vaelab.config import from_dict, to_dict
from vaelab.data import load_data
from vaelab.models import build_model
from vaelab.models.losses import ConditionalELBO
from vaelab.runs import RunConfig, read_metrics
from vaelab.training import train
from vaelab.training.checkpoint import load_checkpoint
from vaelab.training.labels import hide_labels
from vaelab.training.resume import check_resumable, config_changes


def run_config(labelled=0, epochs=1, **train_kw):
    return from_dict(RunConfig, {
        "model": {"name": "cond-vae", "latent_dim": 4, "labelled": labelled},
        "data": {"name": "digits", "binarize": "dynamic"},
        "train": {"epochs": epochs, "batch_size": 64, "lr": 3e-3, "report": False, "threads": 1, **train_kw},
    })


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> float:
    total = 0.0
    for logit, xp in zip(logits.flatten().tolist(), x.flatten().tolist()):
        prob = 1 / (1 + math.exp(-logit))
        total -= xp * math.log(prob) + (1 - xp) * math.log(1 - prob)
    return total


def test_an_unlabelled_image_gets_the_bound_with_the_label_summed_out():
    torch.manual_seed(0)
    model = build_model(run_config().model, (1, 8, 8)).eval()
    x = torch.bernoulli(torch.rand(4, 1, 8, 8))
    labels = torch.tensor([3, -1, 7, -1])
    out = model(x, labels=labels, generator=torch.Generator().manual_seed(0))
    beta, alpha, w = 1.7, 0.3, 0.5
    terms = ConditionalELBO(beta, alpha, semi_supervised=True)(out, x, w)
    per_label = out.per_label
    assert per_label.z.shape == (10, 2, 4 + 10)
    for row, i in enumerate((1, 3)):                     # the unlabelled images, in batch order
        logits = out.class_logits[i].double()
        q = [math.exp(v) for v in (logits - torch.logsumexp(logits, 0)).tolist()]
        expected_reconstruction = expected_kl = bound = 0.0
        for y in range(10):
            # z_y was drawn from q(z|x, y) of this very image: its label part is onehot(y), and
            # its Gaussian is the one the image alone gets under y
            assert per_label.z[y, row, 4:].argmax().item() == y
            alone = model.posterior_given(x[i:i + 1], torch.tensor([y]))
            torch.testing.assert_close(per_label.z_posterior.mean[y, row], alone.mean[0, :4])
            reconstruction = bernoulli_nll(per_label.x_hat[y, row].double(), x[i])
            mean, logvar = per_label.z_posterior.mean[y, row].double(), per_label.z_posterior.logvar[y, row].double()
            kl = sum(0.5 * (m * m + math.exp(v) - 1 - v) for m, v in zip(mean.tolist(), logvar.tolist()))
            expected_reconstruction += q[y] * reconstruction
            expected_kl += q[y] * kl
            bound += q[y] * (reconstruction + beta * w * kl + math.log(q[y]))
        assert terms.loss[i].item() == pytest.approx(bound, rel=1e-5)
        assert terms.parts["reconstruction"][i].item() == pytest.approx(expected_reconstruction, rel=1e-5)
        assert terms.parts["kl"][i].item() == pytest.approx(expected_kl, rel=1e-5, abs=1e-6)
        assert terms.parts["classification"][i].item() == 0 and terms.parts["labelled"][i].item() == 0
    # the labelled rows: the conditional ELBO and the cross-entropy, as for these images alone
    alone = model(x[[0, 2]], labels=labels[[0, 2]], generator=torch.Generator().manual_seed(0))
    alone_terms = ConditionalELBO(beta, alpha, semi_supervised=True)(alone, x[[0, 2]], w)
    assert alone.unlabelled is None and alone.per_label is None
    torch.testing.assert_close(terms.parts["classification"][[0, 2]], alone_terms.parts["classification"])
    assert terms.parts["labelled"][[0, 2]].tolist() == [1.0, 1.0]
    torch.testing.assert_close(out.z_posterior.mean[[0, 2]], alone.z_posterior.mean)   # encoded under their labels


def test_the_bound_moves_q_towards_the_labels_that_explain_the_image():
    """∂/∂logit_k of Σ_y q_y a_y + Σ_y q_y log q_y, with a_y = −ELBO_y (which the classifier does not
    change), is q_k [(a_k + log q_k) − Σ_y q_y (a_y + log q_y)]: lower a_k pulls q_k up."""
    torch.manual_seed(1)
    model = build_model(run_config().model, (1, 8, 8))
    x = torch.bernoulli(torch.rand(3, 1, 8, 8))
    out = model(x, labels=torch.tensor([-1, 2, -1]))
    out.class_logits.retain_grad()
    beta, w = 0.8, 0.6
    terms = ConditionalELBO(beta, 1.0, semi_supervised=True)(out, x, w)
    terms.loss[[0, 2]].sum().backward()
    per_label = out.per_label
    with torch.no_grad():
        a = (-per_label.likelihood.log_prob(x[[0, 2]]) + beta * w * per_label.z_posterior.kl()).T.double()  # (2, C)
        log_q = torch.log_softmax(out.class_logits[[0, 2]].double(), dim=-1)
        q = log_q.exp()
        inner = a + log_q
        expected = q * (inner - (q * inner).sum(1, keepdim=True))
    torch.testing.assert_close(out.class_logits.grad[[0, 2]].double(), expected, rtol=1e-4, atol=1e-5)
    assert out.class_logits.grad[1].abs().sum() == 0      # the labelled row's loss was not differentiated
    with pytest.raises(VaelabError, match="samples=K needs every image labelled"):
        model(x, labels=torch.tensor([-1, 2, -1]), samples=3)


def test_images_without_labels_train_the_classifier_through_the_bound():
    """With no label at all, the classifier still gets a gradient: q(y|x) weighs the per-label bounds."""
    torch.manual_seed(0)
    model = build_model(run_config().model, (1, 8, 8))
    x = torch.bernoulli(torch.rand(6, 1, 8, 8))
    out = model(x, labels=torch.full((6,), -1))
    ConditionalELBO(semi_supervised=True)(out, x).loss.mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.classifier.parameters())


def test_labels_are_kept_per_class_and_by_seed():
    labels = torch.arange(100) % 10
    kept = hide_labels(labels, 23, 10, seed=5)
    counts = torch.bincount(kept[kept >= 0], minlength=10).tolist()
    assert counts == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    assert torch.equal(kept[kept >= 0], labels[kept >= 0])      # a kept label is the true one
    assert torch.equal(hide_labels(labels, 23, 10, seed=5), kept)
    assert not torch.equal(hide_labels(labels, 23, 10, seed=6), kept)
    for keep in (5, 101):
        with pytest.raises(VaelabError, match="cannot keep a label"):
            hide_labels(labels, keep, 10, seed=0)
    skewed = torch.cat([labels, torch.zeros(50, dtype=labels.dtype)])     # 60 of class 0, 10 of the others
    with pytest.raises(VaelabError, match="15 images of class 1, but the training split has 10"):
        hide_labels(skewed, 150, 10, seed=0)


def test_a_partly_labelled_run_trains_and_resumes_exactly(tmp_path):
    config = run_config(labelled=50, epochs=2, deterministic=True)
    train(config, tmp_path / "straight", progress=False)
    epochs = [r for r in read_metrics(tmp_path / "straight" / "metrics.jsonl") if r["event"] == "epoch"]
    share = 50 / len(load_data(config.data).train)
    assert epochs[0]["train_labelled"] == pytest.approx(share, abs=0.02)      # batches are a sample of the split
    assert epochs[0]["val_labelled"] == 1.0 and 0 <= epochs[-1]["val_accuracy"] <= 1
    short = run_config(labelled=50, epochs=2, deterministic=True, time_limit=1e-9)   # stops after epoch 1
    train(short, tmp_path / "resumed", progress=False)
    short.train.time_limit = 0.0
    train(short, tmp_path / "resumed", resume=True, progress=False)
    a, b = load_checkpoint(tmp_path / "straight")["model"], load_checkpoint(tmp_path / "resumed")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_command_line_trains_with_few_labels_and_reports_the_classifier(tmp_path, cli):
    run = tmp_path / "m2"
    status, out, err = cli("train", "--model", "cond-vae", "--latent-dim", "4", "--data", "digits", "--labelled", "30",
                           "--alpha", "40", "--epochs", "1", "--batch-size", "64", "--threads", "1", "--no-report",
                           "--quiet", "--out", run)
    assert status == 0, err
    final = [r for r in read_metrics(run / "metrics.jsonl") if r["event"] == "final"][0]
    assert f"classifier accuracy {100 * final['test_accuracy']:.1f} % on the test images" in out
    status, _, err = cli("train", "--model", "cond-vae", "--data", "digits", "--labelled", "5", "--epochs", "1",
                         "--out", tmp_path / "few")
    assert status == 2 and err.count("\n") == 1 and "between 10 (one per class)" in err, err


def test_a_run_saved_before_the_field_existed_resumes():
    """A checkpoint written before `labelled` existed lacks it: that is the default (all labels), not a change."""
    current = to_dict(run_config())
    saved = to_dict(run_config())
    del saved["model"]["labelled"]
    assert config_changes(saved, current) == []
    asked = to_dict(run_config(labelled=50))
    assert config_changes(saved, asked) == [("model.labelled", 0, 50)]
    with pytest.raises(VaelabError, match="model.labelled changed from 0 to 50"):
        check_resumable(config_changes(saved, asked))
