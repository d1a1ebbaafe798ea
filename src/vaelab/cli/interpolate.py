"""``vaelab interpolate``: the decoded path between two images."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("interpolate")
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option("--steps", type=click.IntRange(2, 200), default=10, show_default=True,
              help="images on the path, the two reconstructions included.")
@click.option("--slerp", is_flag=True,
              help="spherical interpolation (direction along the great circle, length linear) instead of a straight line.")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="strip image to write [default: RUN/apps/interpolation.png].")
@click.option("--npy", type=click.Path(path_type=Path), default=None,
              help="also save the path as a uint8 (steps, C, H, W) .npy array.")
def command(run: Path, a: Path, b: Path, steps: int, slerp: bool, out: Path | None, npy: Path | None):
    """Decode the path between the latent means of images A and B.

    The strip shows A, the decoded path from μ(A) to μ(B) (its ends are the reconstructions
    of A and B), and B.

    \b
    Examples:
      vaelab interpolate runs/fmnist shoe.png boot.png --steps 12 -o path.png
      vaelab interpolate runs/fmnist a.png b.png --slerp
    """
    import numpy as np

    from ..apps.common import load_one, output_path
    from ..apps.figures import annotated_grid, short_name
    from ..apps.interpolation import interpolate
    from ..fileio import atomic_open, atomic_write_bytes
    from ..runs import open_run

    opened = open_run(run)
    model = opened.model
    image_a, name_a, notes_a = load_one(model, a)
    image_b, name_b, notes_b = load_one(model, b)
    for notice in sorted(set(notes_a) | set(notes_b)):
        click.echo(f"note: {notice}", err=True)
    path = interpolate(model, image_a, image_b, steps=steps, slerp=slerp)
    tiles = np.concatenate([image_a[None], path, image_b[None]])[None]
    t = np.linspace(0.0, 1.0, steps)
    captions = [[short_name(name_a, 10)] + [f"t={v:.2f}" for v in t] + [short_name(name_b, 10)]]
    col_labels = ["A"] + [""] * steps + ["B"]
    out = output_path(opened, out, "interpolation.png")
    title = f"{'spherical' if slerp else 'linear'} interpolation of the latent means"
    atomic_write_bytes(out, annotated_grid(tiles, captions, col_labels=col_labels, title=title))
    click.echo(f"{steps}-step {'slerp' if slerp else 'linear'} path: {out}")
    if npy is not None:
        with atomic_open(npy, "wb") as handle:
            np.save(handle, path, allow_pickle=False)
        click.echo(f"array {path.shape} uint8: {npy}")
