"""Build the report of a run directory and write ``report.html`` (plus its PNG figures).

The report must stay quick: ``vaelab train`` and ``vaelab demo`` write it at the end of
every run. It therefore reads the full evaluation from ``RUN/metrics.json`` when
``vaelab evaluate`` wrote one for the current weights, and otherwise computes only cheap
numbers on at most 1,000 test images (ELBO parts, reconstruction quality, KL per
dimension, active units). The latent map is drawn from the same images: directly for 2-D
latents, otherwise by PCA and by t-SNE (on 500 of them, a few seconds).
"""

from __future__ import annotations

import html
import time
from pathlib import Path

import numpy as np
import torch

from .. import runs
from ..imageio import encode_png, grid, save_image, to_uint8
from ..runs import read_metrics
from . import figures
from .html import Report, figure, table

N_PAIRS = 16
N_SAMPLES = 64
MAP_POINTS = 1000     # test images encoded for the quick metrics and the latent map
TSNE_POINTS = 500     # t-SNE's share of them: about 5 s on one busy core


def _eval_split(splits):
    return splits.test if len(splits.test) else splits.val


def _test_images(config, n: int, splits=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    from ..data import load_data

    test = _eval_split(splits if splits is not None else load_data(config.data))
    return test.images[:n], (None if test.labels is None else test.labels[:n])


@torch.no_grad()
def basic_figures(run: runs.Run, splits=None) -> dict[str, bytes]:
    """Reconstructions, samples and loss curve as PNG bytes, also saved into the run directory."""
    from ..fileio import atomic_write_bytes

    run_dir, model, config = run.dir, run.model, run.config
    images, _ = _test_images(config, N_PAIRS, splits)
    x = images.float() / 255.0
    recon = to_uint8(model.reconstruct(x))
    pairs = figures.pairs_grid(images.numpy(), recon, ncols=8, scale=3)
    g = torch.Generator().manual_seed(0)
    samples = grid(to_uint8(model.sample(N_SAMPLES, generator=g)), ncols=8, scale=3)
    save_image(run_dir / "reconstructions.png", pairs)
    save_image(run_dir / "samples.png", samples)
    curve = figures.loss_curves(read_metrics(run_dir / runs.METRICS_FILE))
    atomic_write_bytes(run_dir / "loss.png", curve)
    return {"reconstructions": encode_png(pairs), "samples": encode_png(samples), "loss": curve}


def _trained(t, final: dict) -> str:
    """What training did, not only what it was allowed: "12 of 40 epochs (stopped by the 40 s time limit)"."""
    done = final.get("epoch")
    if not isinstance(done, int) or done >= t.epochs:
        return f"{t.epochs} epoch{'s' * (t.epochs != 1)}"
    if not final.get("stopped_early"):
        why = "interrupted; `vaelab train --resume` continues it"
    elif t.time_limit and final.get("seconds", 0) >= t.time_limit:
        why = f"stopped by the {t.time_limit:g} s time limit"
    else:
        why = f"stopped early: {t.early_stopping} epochs without a better validation loss"
    return f"{done} of {t.epochs} epochs ({why})"


def _config_section(config, final: dict) -> str:
    from ..config import to_toml

    m, d, t = config.model, config.data, config.train
    rows = [("model", m.describe()),
            ("data", d.name + (f", binarised ({d.binarize})" if d.binarize != "none" else "")
             + (f", first {d.limit} training images" if d.limit else "")),
            ("training", f"{_trained(t, final)}, batch {t.batch_size}, {t.optimizer} lr {t.lr:g}, {t.schedule} schedule")]
    return (table(rows) + "<details><summary>config.toml</summary>"
            f"<pre>{html.escape(to_toml(config))}</pre></details>")


def _quick_metrics(passed, run: runs.Run, final: dict) -> str:
    from ..evaluation.latent import ACTIVE_THRESHOLD, activity
    from ..evaluation.likelihood import DISCRETIZATION_NOTES, bits_per_dim, likelihood_kind
    from ..evaluation.suite import mean_stderr

    def pm(values, digits=2):
        s = mean_stderr(values)
        return f"{s['mean']:.{digits}f} ± {s['stderr']:.{digits}f}"

    model = run.model
    n = passed.mse.shape[0]
    rows = []
    if model.is_variational:
        kind = likelihood_kind(model, run.binarized)
        rows += [("−ELBO (nats/image)", pm(passed.neg_elbo)), ("  reconstruction term", pm(passed.reconstruction)),
                 ("  KL(q‖p)", pm(passed.kl)),
                 ("bits/dim (−ELBO)", f"{bits_per_dim(float(passed.neg_elbo.mean()), model.image_shape):.4f}"),
                 ("probability", DISCRETIZATION_NOTES[kind])]
        if n > 1:
            active = int((activity(passed.posterior_means) > ACTIVE_THRESHOLD).sum())
            rows.append(("active units (A_d > 0.01)", f"{active} of {model.latent_dim}"))
    rows += [("MSE", pm(passed.mse, 5)), ("PSNR (dB)", pm(passed.psnr)),
             (f"SSIM ({passed.ssim_window}×{passed.ssim_window} window)", pm(passed.ssim, 4))]
    if isinstance(final.get("test_neg_elbo"), (int, float)):
        rows.append(("test −ELBO at the end of training (whole test split)", f"{final['test_neg_elbo']:.2f}"))
    return (table(rows, ("metric", f"value (first {n} test images)")) +
            "<p>Quick numbers computed for this report. Run <code>vaelab evaluate RUN</code> for the "
            "importance-sampled log-likelihood, probes, sample quality and disentanglement; the report "
            "then shows them.</p>")


def _full_metrics(doc: dict) -> str:
    from ..evaluation.summary import headline_rows

    rows = headline_rows(doc)
    nll = doc.get("likelihood", {}).get("nll", {})
    note = (f"From <code>metrics.json</code>: <code>vaelab evaluate</code> on {doc.get('n_images')} images of the {html.escape(str(doc.get('split')))} "
            f"split ({html.escape(str(doc.get('created', '')))}, {doc.get('seconds', 0):.0f} s"
            + (f", K = {nll['k']}" if 'k' in nll else "") + "). ± is one standard error over images. "
            "Sample-quality distances use vaelab's own feature network and are not comparable with Inception FID.")
    kind_note = doc.get("likelihood", {}).get("note")
    if kind_note:
        note += f" Likelihood: {html.escape(kind_note)}."
    return table(rows, ("topic", "metric", "value")) + f"<p>{note}</p>"


def _latent_maps(means: np.ndarray, labels: np.ndarray | None, class_names, tsne: bool) -> list[tuple[bytes, str]]:
    """Figures of 2-D views of the posterior means: direct, or PCA (+ t-SNE)."""
    n = len(means)
    if means.shape[1] == 1:
        points = np.stack([means[:, 0], np.zeros(n)], axis=1)
        return [(figures.latent_map(points, labels, class_names, "the 1-D latent means",
                                    ("z", "")), "posterior means of the first test images")]
    if means.shape[1] == 2:
        return [(figures.latent_map(means, labels, class_names, "latent means μ(x)", ("z₁", "z₂")),
                 f"posterior means of {n} test images, coloured by label")]
    from ..evaluation.latent import principal_axes

    points, explained = principal_axes(means, 2)
    share = explained.sum()
    out = [(figures.latent_map(points, labels, class_names,
                               f"PCA of the latent means ({100 * share:.0f}% of the variance)", ("PC 1", "PC 2")),
            f"posterior means of {n} test images projected on their two principal axes")]
    if tsne and n >= 50:
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        m = min(n, TSNE_POINTS)
        with threadpool_limits(1):  # OpenMP spinning on a busy machine costs more than threads gain
            points = TSNE(2, init="pca", perplexity=min(30.0, (m - 1) / 3), max_iter=500, random_state=0,
                          n_jobs=1).fit_transform(means[:m].astype(np.float32))
        out.append((figures.latent_map(points, None if labels is None else labels[:m], class_names,
                                       "t-SNE of the latent means", ("t-SNE 1", "t-SNE 2")),
                    f"t-SNE (perplexity 30) of {m} posterior means: neighbourhoods are meaningful, distances "
                    "between clusters are not"))
    return out


def write_report(run_dir, tsne: bool = True) -> Path:
    """Write ``report.html`` for ``run_dir``; returns its path.

    Also writes ``reconstructions.png``, ``samples.png`` and ``loss.png``. ``tsne=False``
    leaves out the t-SNE map (its few seconds are the report's largest cost).
    """
    from ..data import load_data
    from ..evaluation.image_pass import image_pass
    from ..evaluation.suite import read_metrics_json
    from ..fileio import atomic_write_text

    started = time.perf_counter()
    run = runs.open_run(run_dir)
    run_dir, model, config = run.dir, run.model, run.config
    records = read_metrics(run_dir / runs.METRICS_FILE)
    splits = load_data(config.data)
    figs = basic_figures(run, splits)
    test = _eval_split(splits)
    n = min(len(test), MAP_POINTS)
    passed = image_pass(model, test.images[:n], batch_size=500, seed=0)
    labels = None if test.labels is None else test.labels[:n].numpy()
    doc = read_metrics_json(run_dir)
    final = next((r for r in reversed(records) if r.get("event") == "final"), {})

    report = Report(f"vaelab run: {run_dir.name} — {config.model.name} on {config.data.name}")
    report.add("Configuration", _config_section(config, final))
    report.add("Metrics", _full_metrics(doc) if doc else _quick_metrics(passed, run, final))
    report.add("Training curves",
               figure(figs["loss"], "training loss per logged step and per epoch; validation loss per epoch") +
               figure(figures.elbo_kl_curves(records), "left: validation −ELBO and the reconstruction term per "
                      "epoch; right: the KL term during training and on the validation set"))
    report.add("Reconstructions", figure(figs["reconstructions"], "test images (odd rows) and their reconstructions "
                                         "(even rows): decoder mean at the posterior mean", pixelated=True))
    report.add("Samples", figure(figs["samples"], f"{N_SAMPLES} images decoded from z ~ prior", pixelated=True))
    maps = _latent_maps(passed.posterior_means.numpy(), labels, splits.class_names, tsne)
    report.add("Latent space", "".join(figure(png, caption) for png, caption in maps))
    if model.is_variational:
        from ..evaluation.latent import ACTIVE_THRESHOLD, activity

        if doc and "kl_per_dim" in doc.get("latent", {}):
            kl, act = doc["latent"]["kl_per_dim"], doc["latent"]["activity"]
            source = f"{doc['n_images']} {doc['split']} images (metrics.json)"
        else:
            kl = passed.kl_per_dim.mean(dim=0).tolist()
            act = activity(passed.posterior_means).tolist() if n > 1 else None
            source = f"the first {n} test images"
        report.add("KL per dimension", figure(figures.kl_per_dimension(kl, act, ACTIVE_THRESHOLD),
                                              f"left: mean KL(q(z_d|x) ‖ p(z_d)) of every latent dimension over "
                                              f"{source}; right: its activity Cov_x E_q[z_d], which counts a "
                                              "dimension as active above 0.01 (Burda et al. 2015). A dimension can "
                                              "keep some KL while its mean no longer moves with the input"))
    report.add("About this report", f"<p>Written by vaelab in {time.perf_counter() - started:.1f} s. "
               "Losses are in nats per image; −ELBO = reconstruction + KL, an upper bound on −log p(x) when the "
               "likelihood is a probability (binarised data, or a Gaussian scored on 8-bit bins).</p>")
    path = run_dir / "report.html"
    atomic_write_text(path, report.render())
    return path


__all__ = ["basic_figures", "write_report"]
