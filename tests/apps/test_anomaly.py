"""Anomaly scores, the fitted threshold and its cache, AUROC/AUPRC, and `vaelab anomaly`."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score

from vaelab.apps.anomaly import AnomalyDetector, anomaly_scores, score_names, score_table
from vaelab.apps.common import likelihood_view
from vaelab.apps.complexity import compressed_bits
from vaelab.apps.likelihood import _log_weights, likelihood_bits, likelihood_regret_bits
from vaelab.apps.roc import auprc, auroc
from vaelab.errors import VaelabError
from vaelab.models import log_weights
from vaelab.models.outputs import decoded_output


def binarized_scores(model, images, kind, **settings):
    """Scores as for a run trained on binarised images (its likelihood then sees binary images)."""
    return anomaly_scores(model, images, kind, binarized=True, **settings)


def test_score_names():
    assert score_names() == ["nll", "elbo", "complexity", "regret", "reconstruction"]


def test_log_weights_match_the_core_importance_weights(vae, digits):
    x = torch.from_numpy(digits[:6]).float() / 255
    with torch.no_grad():
        posterior = vae.encode(x)
        z = posterior.sample(torch.Generator().manual_seed(3), n=5)
        theirs = log_weights(decoded_output(vae, posterior, z), x, discrete=True)
        eps = torch.randn((5, 6, vae.latent_dim), generator=torch.Generator().manual_seed(3))
        ours = _log_weights(vae, x, posterior, eps)
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_one_sample_nll_equals_the_elbo_and_more_samples_tighten_it(vae, digits):
    one = likelihood_bits(vae, digits, samples=1)
    assert np.allclose(one["nll"], one["elbo"])
    many = likelihood_bits(vae, digits, samples=64)
    assert (many["nll"] <= many["elbo"] + 1e-9).all()   # Jensen: log mean w ≥ mean log w
    assert many["nll"].mean() < one["nll"].mean()


def test_scores_do_not_depend_on_the_batch(vae, digits):
    alone = binarized_scores(vae, digits[3:4], "nll")
    together = binarized_scores(vae, digits[:10], "nll")
    # the same random numbers; only float32 rounding may differ with the batch size
    assert alone[0] == pytest.approx(together[3], abs=1e-4)


def test_binarised_view_is_a_seeded_bernoulli_sample_per_image(vae, digits):
    view = likelihood_view(digits, True)
    assert set(np.unique(view)) <= {0, 255}
    assert np.array_equal(likelihood_view(digits[::-1], True), view[::-1])
    assert np.array_equal(likelihood_view(view, True), view)   # binary images pass unchanged
    assert likelihood_view(digits, False) is digits            # a grey-level run sees grey levels
    # Over many seeds a pixel is white with probability value/255.
    grey = np.full((1, 1, 8, 8), 77, np.uint8)
    share = np.mean([likelihood_view(grey, True, seed).mean() / 255 for seed in range(300)])
    assert abs(share - 77 / 255) < 0.01


def test_binarizations_average_the_scores_of_the_seeded_views(vae, digits):
    images = digits[:4]
    averaged = binarized_scores(vae, images, "elbo", samples=4, seed=7, binarizations=3)
    each = [binarized_scores(vae, likelihood_view(images, True, 7 + v), "elbo", samples=4,
                             seed=7 + v, binarizations=1) for v in range(3)]
    assert np.allclose(averaged, np.mean(each, axis=0), atol=1e-9)


def _png_bits(image: np.ndarray) -> float:
    buffer = io.BytesIO()   # bilevel images are stored with 1 bit per pixel, as PNG optimisers do
    Image.fromarray(image[0]).convert("1", dither=Image.Dither.NONE).save(buffer, format="PNG", optimize=True)
    return 8.0 * len(buffer.getvalue())


def test_complexity_is_nll_bits_minus_png_bits(vae, digits):
    images = digits[:5]
    for views in (1, 3):   # with several binarised views, both terms are averaged over the same views
        nll = binarized_scores(vae, images, "nll", seed=4, binarizations=views)
        complexity = binarized_scores(vae, images, "complexity", seed=4, compressor="png", binarizations=views)
        png = np.mean([[_png_bits(im) for im in likelihood_view(images, True, 4 + v)]
                       for v in range(views)], axis=0)
        assert np.allclose(complexity, nll - png, atol=1e-6)


def test_compressors_give_plausible_lengths():
    rng = np.random.default_rng(0)
    flat = np.zeros((1, 1, 28, 28), np.uint8)
    noise = (rng.random((1, 1, 28, 28)) < 0.5).astype(np.uint8) * 255
    for method in ("png", "zlib", "bz2", "lzma", "context"):
        flat_bits, noise_bits = compressed_bits(np.concatenate([flat, noise]), method)
        assert flat_bits < noise_bits
        assert noise_bits > 784 * 0.9   # random bits do not compress below their entropy (784 bits)
    with pytest.raises(VaelabError):
        compressed_bits(flat, "flif")


def _context_bits_by_loop(image: np.ndarray) -> float:
    """The context coder written plainly: one image, one plane, one pixel at a time, dict counts."""
    from vaelab.apps.complexity import TEMPLATE

    C, H, W = image.shape
    total = 0.0
    for c in range(C):
        gray = image[c] ^ (image[c] >> 1)
        for plane in range(8):
            bits = (gray >> plane) & 1
            total += 1.0
            if bits.min() == bits.max():
                continue
            counts: dict[tuple[int, int], float] = {}
            for y in range(H):
                for x in range(W):
                    context = 0
                    for k, (dy, dx) in enumerate(TEMPLATE):
                        yy, xx = y + dy, x + dx
                        inside = 0 <= yy < H and 0 <= xx < W
                        context |= (int(bits[yy, xx]) if inside else 0) << k
                    n0, n1 = counts.get((context, 0), 0.0), counts.get((context, 1), 0.0)
                    bit = int(bits[y, x])
                    total -= math.log2(((n1 if bit else n0) + 0.5) / (n0 + n1 + 1.0))
                    counts[(context, bit)] = counts.get((context, bit), 0.0) + 1.0
    return total


def test_context_coder_matches_a_plain_loop():
    rng = np.random.default_rng(1)
    binary = (rng.random((2, 1, 9, 7)) < 0.3).astype(np.uint8) * 255
    grey = rng.integers(0, 256, (1, 3, 5, 6)).astype(np.uint8)
    for images in (binary, grey):
        ours = compressed_bits(images, "context")
        assert np.allclose(ours, [_context_bits_by_loop(im) for im in images], rtol=1e-12)


def test_regret_is_a_non_negative_gain_and_vanishes_without_steps_size(vae, digits):
    regret = likelihood_regret_bits(vae, digits[:8], steps=10, lr=0.1)
    assert (regret >= 0).all() and regret.max() > 0
    assert np.allclose(likelihood_regret_bits(vae, digits[:8], steps=3, lr=1e-9), 0.0, atol=1e-4)


def test_regret_works_under_inference_mode(vae, digits):
    # The web app scores under torch.inference_mode(); the re-fit still needs gradients.
    expected = likelihood_regret_bits(vae, digits[:3], steps=4)
    with torch.inference_mode():
        assert np.allclose(likelihood_regret_bits(vae, digits[:3], steps=4), expected)


def test_score_table_shares_work_and_matches_single_scores(vae, digits):
    table = score_table(vae, digits[:6], ["nll", "complexity", "reconstruction"])
    assert set(table) == {"nll", "complexity", "reconstruction"}
    assert np.allclose(table["nll"], anomaly_scores(vae, digits[:6], "nll"))


def test_autoencoders_have_no_likelihood(ae, digits):
    with pytest.raises(VaelabError, match="needs a VAE"):
        anomaly_scores(ae, digits[:3], "nll")
    assert anomaly_scores(ae, digits[:3], "reconstruction").shape == (3,)


def test_unknown_scores_and_settings_are_refused(vae, digits):
    with pytest.raises(VaelabError, match="unknown anomaly score"):
        anomaly_scores(vae, digits[:2], "entropy")
    with pytest.raises(VaelabError, match="compressor"):
        anomaly_scores(vae, digits[:2], "complexity", compressor="gif")


# -- AUROC and AUPRC ------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_auroc_and_auprc_agree_with_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 20, 60).astype(float)          # many ties on purpose
    b = rng.integers(5, 25, 40).astype(float)
    labels = np.r_[np.zeros(60), np.ones(40)]
    assert auroc(a, b) == pytest.approx(roc_auc_score(labels, np.r_[a, b]), abs=1e-12)
    assert auprc(a, b) == pytest.approx(average_precision_score(labels, np.r_[a, b]), abs=1e-12)


def test_auroc_extremes():
    assert auroc([0, 1], [2, 3]) == 1.0 and auroc([2, 3], [0, 1]) == 0.0 and auroc([1, 1], [1]) == 0.5
    with pytest.raises(VaelabError):
        auroc([], [1.0])


# -- the detector and its cache ----------------------------------------------------------------
def test_threshold_is_the_quantile_of_the_fit_scores(vae, digits):
    detector = AnomalyDetector(vae, "nll", quantile=0.9).fit(digits)
    fit_scores = anomaly_scores(vae, digits, "nll")
    assert detector.threshold == pytest.approx(np.quantile(fit_scores, 0.9))
    flags = detector.is_anomaly(digits)
    assert np.array_equal(flags, fit_scores > detector.threshold)
    assert 0.05 <= flags.mean() <= 0.15


def test_threshold_is_cached_in_the_run_and_reused(tiny_vae_run, digits, monkeypatch):
    import vaelab

    run = vaelab.open_run(tiny_vae_run)
    model = run.model
    (tiny_vae_run / "anomaly.json").unlink(missing_ok=True)
    first = AnomalyDetector(model, "elbo", samples=4, run=run).fit_cached("val", 50)
    cache = json.loads((tiny_vae_run / "anomaly.json").read_text())
    assert cache["detectors"][0]["threshold"] == first.threshold

    def no_scoring(*args, **kwargs):
        raise AssertionError("a cached threshold must not be refitted")

    second = AnomalyDetector(model, "elbo", samples=4, run=run)
    monkeypatch.setattr(second, "score", no_scoring)
    assert second.fit_cached("val", 50).threshold == first.threshold
    # Other settings are another entry: they are fitted, not taken from the cache.
    third = AnomalyDetector(model, "elbo", samples=5, run=run)
    assert not third.load("run val split, 50 images")


def test_an_unfitted_detector_says_so(vae, digits):
    with pytest.raises(VaelabError, match="no threshold"):
        AnomalyDetector(vae, "nll").is_anomaly(digits[:2])


# -- the command ----------------------------------------------------------------------------------
def test_cli_evaluate_prints_auroc_matching_scikit_learn(tiny_vae_run, vae, digits, cli, tmp_path):
    inside = digits[:30]
    outside = np.ascontiguousarray(np.flip(digits[30:60], axis=2))
    np.save(tmp_path / "in.npy", inside)
    np.save(tmp_path / "out.npy", outside)
    status, out, _ = cli("anomaly", tiny_vae_run, "--evaluate", tmp_path / "in.npy", tmp_path / "out.npy",
                         "--score", "nll", "--score", "reconstruction", "--samples", 8, "-o", tmp_path / "r.json")
    assert status == 0
    results = json.loads((tmp_path / "r.json").read_text())["scores"]
    labels = np.r_[np.zeros(30), np.ones(30)]
    for kind in ("nll", "reconstruction"):
        scores = np.r_[anomaly_scores(vae, inside, kind, samples=8), anomaly_scores(vae, outside, kind, samples=8)]
        expected = roc_auc_score(labels, scores)
        assert results[kind]["auroc"] == pytest.approx(expected, abs=1e-9)
        assert results[kind]["auprc"] == pytest.approx(average_precision_score(labels, scores), abs=1e-9)
        line = next(l for l in out.splitlines() if l.startswith(kind))
        assert float(line.split()[1]) == pytest.approx(expected, abs=1e-4)


def test_cli_scores_images_against_the_cached_threshold(tiny_vae_run, digit_files, cli, tmp_path):
    import csv

    paths, _ = digit_files
    status, out, _ = cli("anomaly", tiny_vae_run, *paths, "--score", "complexity", "--score", "regret",
                         "--regret-steps", 5, "--fit-images", 40, "-o", tmp_path / "s.csv")
    assert status == 0 and "threshold" in out
    with open(tmp_path / "s.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    for row in rows:
        assert (row["complexity_anomaly"] == "true") == (float(row["complexity"]) > float(row["complexity_threshold"]))


def test_cli_all_scores_for_an_autoencoder_is_reconstruction_only(tiny_ae_run, digit_files, cli, tmp_path):
    _, npy = digit_files
    status, out, _ = cli("anomaly", tiny_ae_run, "--evaluate", npy, npy, "-o", tmp_path / "r.json")
    assert status == 0
    assert list(json.loads((tmp_path / "r.json").read_text())["scores"]) == ["reconstruction"]
    assert "0.5000" in out   # the same images in and out: no separation at all


def test_cli_refuses_likelihood_scores_for_an_autoencoder(tiny_ae_run, digit_files, cli):
    paths, _ = digit_files
    status, _, err = cli("anomaly", tiny_ae_run, paths[0], "--score", "nll")
    assert status == 2 and "needs a VAE" in err and err.count("\n") == 1
