"""``vaelab report``: (re)write the self-contained HTML report of a run."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--no-tsne", is_flag=True, help="leave out the t-SNE map of the latent space (saves a few seconds).")
def command(run: Path, no_tsne: bool):
    """Write RUN/report.html: configuration, metrics, training curves, reconstructions,
    samples, a map of the latent space coloured by label, and the KL of every latent
    dimension — one file with every image embedded, to open in a browser or mail.

    The metrics come from RUN/metrics.json when `vaelab evaluate RUN` wrote it for the
    current weights; otherwise the report computes quick ones on 1,000 test images.
    `vaelab train` writes this report at the end of every run.

    \b
    Examples:
      vaelab report runs/fmnist
      vaelab evaluate runs/fmnist --limit 1000 && vaelab report runs/fmnist
    """
    from ..report import write_report

    path = write_report(run, tsne=not no_tsne)
    click.echo(f"report: {path}")
    for name in ("reconstructions.png", "samples.png", "loss.png"):
        click.echo(f"  {name}: {path.parent / name}")
