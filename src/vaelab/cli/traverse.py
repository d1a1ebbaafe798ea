"""``vaelab traverse``: one latent dimension varied per row, dimensions ordered by KL."""

from __future__ import annotations

from pathlib import Path

import click


def _parse_dims(text: str | None) -> list[int] | None:
    from ..errors import VaelabError

    if text is None:
        return None
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise VaelabError(f"--dims takes comma-separated dimension numbers like 0,3,5; got '{text}'") from None


@click.command("traverse")
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("image", required=False, type=click.Path(path_type=Path))
@click.option("--dims", default=None, help="comma-separated latent dimensions to vary, e.g. 0,3,5 [default: the --top most informative].")
@click.option("--top", type=click.IntRange(1, 4096), default=10, show_default=True,
              help="without --dims: how many dimensions, in order of decreasing KL.")
@click.option("--range", "value_range", type=float, default=3.0, show_default=True,
              help="vary each dimension from −RANGE to +RANGE prior standard deviations.")
@click.option("--steps", type=click.IntRange(2, 50), default=9, show_default=True, help="images per row.")
@click.option("--kl-images", type=click.IntRange(1, 100_000), default=500, show_default=True,
              help="validation images of the run's data set over which each dimension's KL is averaged.")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="grid image to write [default: RUN/apps/traversal.png].")
def command(run: Path, image: Path | None, dims: str | None, top: int, value_range: float, steps: int,
            kl_images: int, out: Path | None):
    """Vary one latent dimension per row of a grid, starting from IMAGE's code (or the prior's centre).

    Rows are labelled with the dimension and its KL divergence from the prior, averaged over
    the run's validation images: the information that dimension carries, in nats. Dimensions
    with KL ≈ 0 are unused and their rows do not change.

    \b
    Examples:
      vaelab traverse runs/fmnist                       # the 10 most informative dimensions
      vaelab traverse runs/fmnist shoe.png --dims 3,7 --range 2.5 --steps 11
    """
    import numpy as np

    from ..apps.common import load_one, output_path, run_images
    from ..apps.figures import annotated_grid
    from ..apps.traversal import kl_per_dim, traversal_values, traverse
    from ..errors import VaelabError
    from ..fileio import atomic_write_bytes
    from ..runs import open_run

    chosen = _parse_dims(dims)
    opened = open_run(run)
    model = opened.model
    model.latent_gaussian()   # a model without a Gaussian latent says so before any slow work
    base = None
    if image is not None:
        base, _, notices = load_one(model, image)
        for notice in notices:
            click.echo(f"note: {notice}", err=True)
    try:
        reference = run_images(opened, "val", kl_images)
    except VaelabError as exc:
        if base is None:
            raise VaelabError(f"the run's data set is not available to rank dimensions ({exc}); "
                              "give an IMAGE or --dims") from None
        click.echo(f"note: ranking dimensions by IMAGE alone, the run's data is not available ({exc})", err=True)
        reference = base[None]
    kl = kl_per_dim(model, reference, progress=True)
    if chosen is None:
        chosen = [int(d) for d in np.argsort(-kl, kind="stable")[:top]]
    grid = traverse(model, base, dims=chosen, value_range=value_range, steps=steps)
    measure = "KL" if model.is_variational else "var"
    row_labels = [f"z{d}  {measure} {kl[d]:.2f}" for d in chosen]
    col_labels = [f"{v:+.1f}" for v in traversal_values(value_range, steps)]
    title = f"latent traversal from {'the image' if base is not None else 'the prior centre'}"
    out = output_path(opened, out, "traversal.png")
    atomic_write_bytes(out, annotated_grid(grid, row_labels=row_labels, col_labels=col_labels, title=title))
    used = int((kl > 0.01).sum()) if model.is_variational else len(kl)
    click.echo(f"{len(chosen)} dimensions × {steps} steps; {used} of {model.latent_dim} dimensions carry "
               f"KL > 0.01 nats: {out}")
