"""Build the report of a run directory and write ``report.html`` (plus its PNG figures)."""

from __future__ import annotations

import html
from pathlib import Path

import torch

from .. import runs
from ..imageio import encode_png, grid, save_image, to_uint8
from ..training.metrics import read_metrics
from . import figures
from .html import Report, figure, table

N_PAIRS = 16
N_SAMPLES = 64


def _test_images(config, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    from ..data import load_data

    splits = load_data(config.data)
    test = splits.test if len(splits.test) else splits.val
    return test.images[:n], (None if test.labels is None else test.labels[:n])


@torch.no_grad()
def basic_figures(run_dir: Path, model) -> dict[str, bytes]:
    """Reconstructions, samples and loss curve as PNG bytes, also saved into the run directory."""
    config = model.run_config
    images, _ = _test_images(config, N_PAIRS)
    x = images.float() / 255.0
    recon = to_uint8(model.reconstruct(x))
    pairs = figures.pairs_grid(images.numpy(), recon, ncols=8, scale=3)
    g = torch.Generator().manual_seed(0)
    samples = grid(to_uint8(model.sample(N_SAMPLES, generator=g)), ncols=8, scale=3)
    save_image(run_dir / "reconstructions.png", pairs)
    save_image(run_dir / "samples.png", samples)
    curve = figures.loss_curves(read_metrics(run_dir / runs.METRICS_FILE))
    from ..fileio import atomic_write_bytes

    atomic_write_bytes(run_dir / "loss.png", curve)
    return {"reconstructions": encode_png(pairs), "samples": encode_png(samples), "loss": curve}


def write_report(run_dir) -> Path:
    """Write ``report.html`` for ``run_dir``; returns its path."""
    from ..fileio import atomic_write_text

    run_dir = runs.run_path(run_dir)
    model = runs.load_model(run_dir)
    config = model.run_config
    records = read_metrics(run_dir / runs.METRICS_FILE)
    figs = basic_figures(run_dir, model)
    report = Report(f"vaelab run: {run_dir.name} — {config.model.name} on {config.data.name}")
    final = next((r for r in reversed(records) if r.get("event") == "final"), {})
    rows = [(k.replace("_", " "), v) for k, v in final.items() if k != "event" and isinstance(v, (int, float))]
    if rows:
        report.add("Results", table(rows, ("metric", "value")) +
                   "<p>Losses are in nats per image; −ELBO = reconstruction + KL, an upper bound on −log p(x).</p>")
    report.add("Reconstructions", figure(figs["reconstructions"], "test images (odd rows) and their reconstructions "
                                         "(even rows): decoder mean at the posterior mean", pixelated=True))
    report.add("Samples", figure(figs["samples"], f"{N_SAMPLES} images decoded from z ~ prior", pixelated=True))
    report.add("Training", figure(figs["loss"], "training loss per logged step and per epoch; validation loss per epoch"))
    from ..config import to_toml

    report.add("Configuration", f"<pre>{html.escape(to_toml(config))}</pre>")
    path = run_dir / "report.html"
    atomic_write_text(path, report.render())
    return path


__all__ = ["write_report", "basic_figures"]
