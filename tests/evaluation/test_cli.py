"""`vaelab evaluate`, `vaelab report` and `vaelab compare` end to end on tiny trained runs."""

from __future__ import annotations

import json
import math

import pytest

from vaelab.cli import main
from vaelab.evaluation.suite import TOPICS

FAST = ["-q", "--threads", "1", "--probe-images", "300", "--sample-images", "200"]


def _evaluate_json(capsys, run, *args) -> dict:
    assert main(["evaluate", str(run), "--json", *FAST, *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_evaluate_json_has_every_topic_and_is_consistent(capsys, tiny_vae_run, fresh_copy):
    tiny_vae_run = fresh_copy(tiny_vae_run)
    doc = _evaluate_json(capsys, tiny_vae_run, "-k", "20", "--limit", "120")
    assert doc["schema"] == 1 and doc["split"] == "test" and doc["n_images"] == 120
    assert set(TOPICS) <= set(doc)
    lik = doc["likelihood"]
    assert lik["nll"]["k"] == 20 and lik["dims"] == 64
    # bits/dim from nats by its formula; the bound below the ELBO it tightens.
    assert math.isclose(lik["bits_per_dim"]["nll"], lik["nll"]["mean"] / (64 * math.log(2)), rel_tol=1e-12)
    assert lik["nll"]["mean"] <= lik["neg_elbo"]["mean"] + 3 * lik["neg_elbo"]["stderr"]
    assert lik["nll"]["gap_to_elbo"]["mean"] >= 0
    assert math.isclose(lik["neg_elbo"]["mean"], lik["reconstruction"]["mean"] + lik["kl"]["mean"], rel_tol=1e-9)
    assert len(doc["latent"]["kl_per_dim"]) == 4 and 0 <= doc["latent"]["active_units"] <= 4
    assert math.isclose(sum(doc["latent"]["kl_per_dim"]), lik["kl"]["mean"], rel_tol=1e-6)
    assert 0 <= doc["representation"]["latent"]["linear_probe"] <= 1
    assert doc["representation"]["pixels"]["knn"] > 0.8          # raw 8×8 digits are easy for k-NN
    smp = doc["samples"]
    assert smp["frechet_distance"] >= 0 and 0 <= smp["precision"] <= 1 and 0 <= smp["recall"] <= 1
    assert "skipped" in doc["disentanglement"]
    # metrics.json holds the same document.
    stored = json.loads((tiny_vae_run / "metrics.json").read_text())
    assert stored["likelihood"]["nll"]["mean"] == lik["nll"]["mean"]


def test_evaluate_is_deterministic_and_the_table_names_the_metrics(capsys, tiny_vae_run):
    args = ["-k", "5", "--limit", "40", "--skip", "samples,representation", "--no-save"]
    first = _evaluate_json(capsys, tiny_vae_run, *args)
    second = _evaluate_json(capsys, tiny_vae_run, *args)
    for doc in (first, second):
        for volatile in ("created", "seconds", "seconds_per_topic"):
            doc.pop(volatile)
        doc["likelihood"]["nll"].pop("seconds")
        doc["likelihood"]["nll"].pop("images_per_s")
    assert first == second
    assert first["samples"] == {"skipped": "skipped on request"}
    assert main(["evaluate", str(tiny_vae_run), *args, "-q"]) == 0
    out = capsys.readouterr().out
    for words in ("−ELBO", "IWAE, K = 5", "bits/dim", "PSNR", "SSIM", "active units"):
        assert words in out


def test_evaluate_an_autoencoder_skips_what_needs_a_posterior(capsys, tiny_ae_run):
    doc = _evaluate_json(capsys, tiny_ae_run, "--limit", "60", "--skip", "samples", "--no-save")
    assert "skipped" in doc["likelihood"] and "skipped" in doc["latent"]
    assert doc["reconstruction"]["ssim_window"] == 7 and doc["reconstruction"]["psnr_db"]["mean"] > 0
    assert doc["representation"]["latent"]["knn"] > 0.2


def test_evaluate_binarised_fashion_mnist(capsys, fmnist_vae_run, fresh_copy):
    fmnist_vae_run = fresh_copy(fmnist_vae_run)
    doc = _evaluate_json(capsys, fmnist_vae_run, "-k", "30", "--limit", "150")
    assert doc["likelihood"]["kind"] == "discrete-binary"
    assert doc["samples"]["binary_samples"] is True
    assert doc["samples"]["feature_net"]["test_accuracy"] > 0.6     # the feature space knows the classes
    assert doc["reconstruction"]["ssim_window"] == 11
    assert (fmnist_vae_run / "feature_net.safetensors").is_file()
    again = _evaluate_json(capsys, fmnist_vae_run, "-k", "1", "--limit", "50", "--no-save",
                           "--skip", "representation")
    assert again["samples"]["feature_net"]["cached"] is True


def test_degenerate_sizes_give_json_not_a_crash(capsys, tiny_vae_run):
    doc = _evaluate_json(capsys, tiny_vae_run, "-k", "3", "--limit", "1", "--no-save")
    assert doc["n_images"] == 1 and doc["latent"]["active_units"] is None
    assert doc["likelihood"]["nll"]["stderr"] == 0.0 and "skipped" in doc["samples"]
    doc = _evaluate_json(capsys, tiny_vae_run, "-k", "2", "--limit", "30", "--split", "train", "--no-save",
                         "--skip", "samples,representation")
    assert doc["split"] == "train" and doc["n_images"] == 30


def test_gaussian_decoders_are_evaluated_as_8_bit_probabilities(capsys, tiny_gaussian_run):
    doc = _evaluate_json(capsys, tiny_gaussian_run, "-k", "50", "--limit", "60", "--no-save",
                         "--skip", "samples,representation")
    lik = doc["likelihood"]
    assert lik["kind"] == "discretized-gaussian-8bit"
    # A discrete probability is at most 1, so −log P(x) ≥ 0 (a density could go below 0).
    assert 0 < lik["nll"]["mean"] <= lik["neg_elbo"]["mean"] + 3 * lik["neg_elbo"]["stderr"]
    assert math.isclose(lik["bits_per_dim"]["nll"], lik["nll"]["mean"] / (64 * math.log(2)), rel_tol=1e-12)


def test_evaluate_reports_disentanglement_on_shapes(capsys, tiny_shapes_run):
    doc = _evaluate_json(capsys, tiny_shapes_run, "--skip", "likelihood,samples", "--no-save")
    dis = doc["disentanglement"]
    assert dis["factors"] == ["shape", "scale", "orientation", "x", "y"]
    assert 0 <= dis["mig"] <= 1 and set(dis["mig_per_factor"]) == set(dis["factors"])
    assert {"disentanglement", "completeness", "informativeness"} <= set(dis["dci"])
    assert len(dis["dci"]["importance"]) == 4 and len(dis["dci"]["importance"][0]) == 5


def test_evaluate_errors_are_one_line(capsys, tmp_path, tiny_vae_run):
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vaelab: error:") and err.count("\n") == 1
    assert main(["evaluate", str(tiny_vae_run), "--skip", "everything"]) == 2
    assert "unknown topic" in capsys.readouterr().err


def test_report_uses_metrics_json_only_for_the_current_weights(capsys, tiny_vae_run, fresh_copy):
    run = fresh_copy(tiny_vae_run)
    _evaluate_json(capsys, run, "-k", "5", "--limit", "40")
    assert main(["report", str(run), "--no-tsne"]) == 0
    assert "report.html" in capsys.readouterr().out
    page = (run / "report.html").read_text()
    assert "From <code>metrics.json</code>" in page and "IWAE, K = 5" in page
    for name in ("reconstructions.png", "samples.png", "loss.png"):
        assert (run / name).is_file()
    # New weights make the stored evaluation stale: the report falls back to quick numbers.
    doc = json.loads((run / "metrics.json").read_text())
    doc["run"]["model_sha256"] = "0" * 64
    (run / "metrics.json").write_text(json.dumps(doc))
    assert main(["report", str(run), "--no-tsne"]) == 0
    page = (run / "report.html").read_text()
    assert "Quick numbers" in page and "From <code>metrics.json</code>" not in page


def test_compare_prints_a_table_and_writes_a_figure(capsys, tmp_path, tiny_vae_run, tiny_ae_run, fresh_copy):
    from PIL import Image

    evaluated = fresh_copy(tiny_vae_run)
    _evaluate_json(capsys, evaluated, "-k", "5", "--limit", "40", "--skip", "samples,representation")

    out = tmp_path / "cmp.png"
    assert main(["compare", str(evaluated), str(tiny_ae_run), "-o", str(out), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["run"] for r in rows] == [evaluated.name, tiny_ae_run.name]
    assert rows[0]["source"] == "metrics.json (40 test images)" and rows[0]["nll"] is not None
    assert rows[1]["source"] == "training log (test −ELBO)" and rows[1]["nll"] is None
    with Image.open(out) as im:
        assert im.size[0] > 400
    assert main(["compare", str(tiny_vae_run), str(tiny_ae_run), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "−ELBO" in text and tiny_ae_run.name in text
    assert main(["compare", str(tiny_vae_run), str(tiny_vae_run)]) == 2


@pytest.mark.parametrize("name", ["evaluate", "report", "compare"])
def test_help_has_an_example(capsys, name):
    assert main([name, "--help"]) == 0
    assert f"vaelab {name} runs/" in capsys.readouterr().out


def test_a_partial_evaluation_never_replaces_a_fuller_one(capsys, tiny_vae_run, fresh_copy):
    run = fresh_copy(tiny_vae_run)
    base = ["evaluate", str(run), "--threads", "1", "--skip", "samples,representation"]
    assert main([*base, "-k", "8", "--limit", "60"]) == 0
    err = capsys.readouterr().err
    # the plan and its estimate come first
    assert "evaluating 60 test images: log-likelihood bound with K = 8 (≈ " in err and "images/s" in err
    full = json.loads((run / "metrics.json").read_text())
    assert main([*base, "-k", "8", "--limit", "30", "-q"]) == 0           # fewer images: beside it
    assert "metrics-partial.json" in capsys.readouterr().out
    assert json.loads((run / "metrics.json").read_text()) == full
    assert json.loads((run / "metrics-partial.json").read_text())["n_images"] == 30
    assert main([*base, "-k", "4", "--limit", "60", "-q", "--overwrite"]) == 0   # asked for: replaced
    assert json.loads((run / "metrics.json").read_text())["likelihood"]["nll"]["k"] == 4
    assert main([*base, "-k", "8", "--limit", "80", "-q"]) == 0           # fuller in every way: the main file
    assert json.loads((run / "metrics.json").read_text())["n_images"] == 80


def test_limit_bounds_the_probes_too(capsys, tiny_vae_run):
    doc = _evaluate_json(capsys, tiny_vae_run, "-k", "2", "--limit", "70", "--skip", "samples", "--no-save",
                         "--probe-images", "1000")
    assert doc["representation"]["train_images"] == 70
