"""``vaelab manifold``: the decoded latent grid (Kingma & Welling's Fig. 4)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("manifold")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--steps", type=click.IntRange(2, 60), default=15, show_default=True, help="images per side of the grid.")
@click.option("--images", "sources", multiple=True, type=click.Path(path_type=Path),
              help="images whose codes give the principal directions (repeatable) [default: the run's validation images].")
@click.option("--count", type=click.IntRange(3, 100_000), default=2000, show_default=True,
              help="without --images: how many validation images of the run's data set.")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="grid image to write [default: RUN/apps/manifold.png].")
def command(run: Path, steps: int, sources: tuple[Path, ...], count: int, out: Path | None):
    """Decode a regular grid over the latent space of RUN's model.

    A 2-D VAE: the grid of the prior's quantiles Φ⁻¹((i + ½)/steps) in both coordinates,
    each tile standing for the same prior mass. More dimensions: the same quantiles along
    the two main principal directions of the codes of the run's validation images (or
    --images), scaled by the codes' spread along them.

    \b
    Examples:
      vaelab manifold runs/fmnist-2d --steps 20
      vaelab manifold runs/fmnist --images shoes/ -o manifold.png
    """
    from ..apps.common import load_inputs, output_path, run_images
    from ..apps.figures import annotated_grid
    from ..apps.manifold import decode_grid, manifold_latents, quantile_grid
    from ..fileio import atomic_write_bytes
    from ..runs import open_run

    opened = open_run(run)
    model = opened.model
    model.latent_gaussian()   # a model without a Gaussian latent says so before any slow work
    images = None
    needs_codes = not (model.latent_dim == 2 and model.is_variational)
    if sources:
        images, _, notices = load_inputs(model, sources)
        for notice in notices:
            click.echo(f"note: {notice}", err=True)
    elif needs_codes and model.is_variational:
        images = run_images(opened, "val", count)
    z, axes = manifold_latents(model, steps, images)
    grid = decode_grid(model, z)
    q = quantile_grid(steps)
    out = output_path(opened, out, "manifold.png")
    atomic_write_bytes(out, annotated_grid(grid, row_labels=[f"{v:+.2f}" for v in q[::-1]],
                                           col_labels=[f"{v:+.2f}" for v in q], title=axes, tile_px=48))
    click.echo(f"{steps}×{steps} grid over {axes}: {out}")
