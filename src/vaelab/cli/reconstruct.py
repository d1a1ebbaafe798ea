"""``vaelab reconstruct``: images beside their reconstructions, with the error of each."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("reconstruct")
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="output directory [default: RUN/apps/reconstruct].")
@click.option("--count", type=click.IntRange(1, 10_000), default=16, show_default=True,
              help="without IMAGES: how many test images of the run's data set to use.")
@click.option("--show", type=click.IntRange(1, 1000), default=32, show_default=True,
              help="how many pairs the figure shows (all are saved).")
def command(run: Path, images: tuple[Path, ...], out: Path | None, count: int, show: int):
    """Reconstruct IMAGES (PNG/JPEG files, folders or .npy arrays) with RUN's model.

    Writes OUT/figure.png (each original beside its reconstruction, the mean squared error
    per pixel under it), OUT/errors.csv (name, MSE, PSNR), OUT/reconstructions.npy and one
    PNG per reconstruction. Images are converted to the model's size and channels (with a
    notice). Without IMAGES, uses --count test images of the run's own data set.

    \b
    Examples:
      vaelab reconstruct runs/fmnist shirt.png shoes/ -o recon/
      vaelab reconstruct runs/fmnist --count 32
    """
    import csv
    import io

    import numpy as np

    from ..apps.common import file_stems, inputs_or_run_images, output_path
    from ..apps.figures import annotated_grid, short_name
    from ..apps.reconstruction import reconstruct_images
    from ..fileio import atomic_open, atomic_write_bytes, atomic_write_text
    from ..imageio import save_image
    from ..metrics import psnr_from_mse
    from ..runs import open_run

    opened = open_run(run)
    model = opened.model
    originals, names, notices = inputs_or_run_images(opened, images, count)
    for notice in notices:
        click.echo(f"note: {notice}", err=True)
    recon, mse = reconstruct_images(model, originals, progress=True)
    out = output_path(opened, out, "reconstruct")

    n = min(show, len(originals))
    pairs_per_row = min(4, n)   # no empty columns when fewer images are shown
    R = -(-n // pairs_per_row)
    tiles = np.full((R, 2 * pairs_per_row, *originals.shape[1:]), 255, dtype=np.uint8)
    captions = [[""] * (2 * pairs_per_row) for _ in range(R)]
    for i in range(n):
        r, c = divmod(i, pairs_per_row)
        tiles[r, 2 * c], tiles[r, 2 * c + 1] = originals[i], recon[i]
        captions[r][2 * c] = short_name(names[i], 12)
        captions[r][2 * c + 1] = f"MSE {mse[i]:.4f}"
    col_labels = ["original", "reconstruction"] * pairs_per_row
    atomic_write_bytes(out / "figure.png", annotated_grid(tiles, captions, col_labels=col_labels,
                                                          title=f"reconstructions (mean MSE {mse.mean():.4f})"))
    values = psnr_from_mse(mse)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["name", "mse", "psnr_db"])
    for name, m, p in zip(names, mse, values):
        writer.writerow([name, f"{m:.6g}", f"{p:.4g}"])
    atomic_write_text(out / "errors.csv", buf.getvalue())
    with atomic_open(out / "reconstructions.npy", "wb") as handle:
        np.save(handle, recon, allow_pickle=False)
    for stem, image in zip(file_stems(names), recon):
        save_image(out / f"{stem}.png", image)
    click.echo(f"{len(originals)} images: mean MSE {mse.mean():.5f} per pixel, mean PSNR {np.mean(values):.2f} dB")
    click.echo(f"  figure:          {out / 'figure.png'}")
    click.echo(f"  errors:          {out / 'errors.csv'}")
    click.echo(f"  reconstructions: {out / 'reconstructions.npy'} and {len(recon)} PNGs in {out}")
