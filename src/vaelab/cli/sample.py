"""``vaelab sample``: new images drawn from a trained model's prior."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("sample")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("-n", "count", type=click.IntRange(1, 10_000), default=64, show_default=True, help="how many images.")
@click.option("--temperature", "-t", type=float, default=1.0, show_default=True,
              help="scale of the prior's spread: z ~ N(0, T²·I); below 1 gives more typical, less varied images.")
@click.option("--seed", type=int, default=None, help="seed for reproducible samples (default: a fresh one, printed).")
@click.option("--pixels", type=click.Choice(["mean", "sample"]), default="mean", show_default=True,
              help="mean: show E[x|z] (smooth); sample: draw the pixels too (binary for a Bernoulli decoder).")
@click.option("--label", default=None, metavar="CLASS",
              help="label-conditioned models (cond-vae): generate this class, a number or a class name (Sneaker).")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="grid image to write [default: RUN/apps/samples.png].")
@click.option("--npy", type=click.Path(path_type=Path), default=None,
              help="also save the images as a uint8 (N, C, H, W) .npy array.")
@click.option("--ncols", type=click.IntRange(1, 100), default=None, help="columns of the grid (default: square).")
@click.option("--scale", type=click.IntRange(1, 16), default=None, help="pixel zoom of the grid (default: about 64 px per tile).")
def command(run: Path, count: int, temperature: float, seed: int | None, pixels: str, label: str | None,
            out: Path | None, npy: Path | None, ncols: int | None, scale: int | None):
    """Draw new images from the prior of RUN's model and save them as a grid.

    A VAE decodes z ~ N(0, T²·I); a plain autoencoder decodes codes drawn from the Gaussian
    fitted to its training codes.

    \b
    Examples:
      vaelab sample runs/fmnist -n 64 -o grid.png
      vaelab sample runs/fmnist -n 100 --temperature 0.7 --seed 1 --npy samples.npy
      vaelab sample runs/fmnist --pixels sample      # binary pixels, as the model generates them
      vaelab sample runs/fmnist-cond --label Sneaker # a cond-vae run: one class
    """
    import secrets

    import numpy as np

    from ..apps.common import output_path
    from ..apps.sampling import run_label, sample_images
    from ..errors import VaelabError
    from ..fileio import atomic_open
    from ..imageio import grid, save_image
    from ..runs import open_run

    if not temperature > 0:
        raise VaelabError(f"--temperature must be positive, got {temperature}")
    opened = open_run(run)
    model = opened.model
    label_number = None if label is None else run_label(opened, label)
    if seed is None:
        seed = secrets.randbelow(2**31)
        click.echo(f"seed {seed} (pass --seed {seed} to draw the same images again)")
    images = sample_images(model, count, temperature=temperature, seed=seed, mean=pixels == "mean",
                           label=label_number)
    out = output_path(opened, out, "samples.png")
    H = model.image_shape[1]
    save_image(out, grid(images, ncols=ncols, scale=scale or max(1, 64 // H)))
    of_class = "" if label_number is None else f" of class {label_number}"
    click.echo(f"{count} samples{of_class} at temperature {temperature:g}: {out}")
    if npy is not None:
        with atomic_open(npy, "wb") as handle:
            np.save(handle, images, allow_pickle=False)
        click.echo(f"array {images.shape} uint8: {npy}")
