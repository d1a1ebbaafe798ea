"""``vaelab embed``: latent codes of images, for downstream machine learning."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("embed")
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="file to write, format by suffix: .npy, .csv or .npz [default: RUN/apps/latents.npy].")
@click.option("--count", type=click.IntRange(1, 1_000_000), default=16, show_default=True,
              help="without IMAGES: how many test images of the run's data set to embed.")
def command(run: Path, images: tuple[Path, ...], out: Path | None, count: int):
    """Encode IMAGES with RUN's model: posterior means μ(x) and log-variances log σ²(x).

    .npy writes the means (N, D) and, for a VAE, the log-variances to NAME.logvar.npy;
    .csv writes one row per image (name, mu_0…, logvar_0…); .npz holds means, logvars and
    names (np.load(..., allow_pickle=False) reads all three). A plain autoencoder has codes
    but no variances.

    \b
    Examples:
      vaelab embed runs/fmnist photos/ -o latents.npy
      vaelab embed runs/fmnist a.png b.png -o latents.csv
    """
    from ..apps.common import inputs_or_run_images, output_path
    from ..apps.embedding import check_format, embed, save_embeddings
    from ..runs import open_run

    if out is not None:
        check_format(out)
    opened = open_run(run)
    model = opened.model
    originals, names, notices = inputs_or_run_images(opened, images, count)
    for notice in notices:
        click.echo(f"note: {notice}", err=True)
    out = output_path(opened, out, "latents.npy")
    means, logvars = embed(model, originals, progress=True)
    written = save_embeddings(out, means, logvars, names)
    what = "means and log-variances" if logvars is not None else "codes"
    click.echo(f"{len(names)} images → {means.shape[1]}-dimensional {what}:")
    for path in written:
        click.echo(f"  {path}")
