"""``vaelab inpaint``: fill in masked pixels, or denoise, by projecting onto the model."""

from __future__ import annotations

from pathlib import Path

import click


def _mask(model, spec: str, fraction: float, seed: int):
    """A named region or a mask image (bright = unknown) -> bool (H, W) or (C, H, W)."""
    from ..apps.inpainting import MASK_REGIONS, region_mask
    from ..imageio import convert, read_image

    C, H, W = model.image_shape
    if spec in MASK_REGIONS:
        return region_mask(spec, (H, W), fraction, seed)
    mask = read_image(spec)
    return convert(mask, 1, (H, W))[0] >= 128


@click.command("inpaint")
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--mask", default=None,
              help="unknown pixels: a mask image (white = unknown, resized to the model) or a region: "
                   "top, bottom, left, right, centre, random.")
@click.option("--fraction", type=float, default=0.5, show_default=True,
              help="for a named region: the share of rows/columns/area (random: of pixels) hidden.")
@click.option("--denoise", is_flag=True, help="no mask: denoise the images instead.")
@click.option("--add-noise", type=float, default=0.0, show_default=True,
              help="first add Gaussian noise of this standard deviation ([0, 1] scale) — to try denoising on clean images.")
@click.option("--iterations", type=click.IntRange(1, 10_000), default=None,
              help="encode→decode rounds [default: 50 for inpainting, 1 for denoising].")
@click.option("--count", type=click.IntRange(1, 10_000), default=8, show_default=True,
              help="without IMAGES: how many test images of the run's data set to use.")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the random mask and the added noise.")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="output directory [default: RUN/apps/inpaint or RUN/apps/denoise].")
def command(run: Path, images: tuple[Path, ...], mask: str | None, fraction: float, denoise: bool, add_noise: float,
            iterations: int | None, count: int, seed: int, out: Path | None):
    """Fill the unknown pixels of IMAGES with RUN's model (--mask), or denoise them (--denoise).

    Inpainting starts the unknown pixels at the mean of the known ones, then repeats
    encode → decode with the known pixels put back each round; known pixels are never
    changed. Denoising encodes and decodes. Writes OUT/figure.png (input with the mask in
    red, result, original), OUT/results.npy and one PNG per result.

    \b
    Examples:
      vaelab inpaint runs/fmnist shirt.png --mask bottom
      vaelab inpaint runs/fmnist shirt.png --mask scratch-mask.png --iterations 100
      vaelab inpaint runs/fmnist --mask random --fraction 0.7          # on test images
      vaelab inpaint runs/fmnist noisy.png --denoise
      vaelab inpaint runs/fmnist --denoise --add-noise 0.3             # noisy test images
    """
    import numpy as np

    from ..apps.common import file_stems, inputs_or_run_images, output_path
    from ..apps.figures import annotated_grid, show_mask, to_rgb
    from ..apps.inpainting import add_noise as noisy
    from ..apps.inpainting import broadcast_mask, inpaint, masked_input
    from ..apps.inpainting import denoise as project
    from ..errors import VaelabError
    from ..fileio import atomic_open, atomic_write_bytes
    from ..imageio import save_image
    from ..runs import open_run

    if (mask is None) == (not denoise):
        raise VaelabError("give either --mask MASK (inpainting) or --denoise")
    opened = open_run(run)
    model = opened.model
    originals, names, notices = inputs_or_run_images(opened, images, count)
    for notice in notices:
        click.echo(f"note: {notice}", err=True)
    inputs = noisy(originals, add_noise, seed) if add_noise > 0 else originals
    if denoise:
        results = project(model, inputs, iterations=iterations or 1)
        unknown = np.zeros(inputs.shape, dtype=bool)
        shown_input = to_rgb(inputs)
        labels = ["noisy input", "denoised"]
    else:
        unknown = broadcast_mask(_mask(model, mask, fraction, seed), inputs.shape)
        results = inpaint(model, inputs, unknown, iterations=iterations or 50)
        shown_input = show_mask(inputs, unknown)
        labels = ["masked input", "inpainted"]
    columns = [shown_input, to_rgb(results)]
    known_original = add_noise > 0 or not denoise
    if known_original:
        columns.append(to_rgb(originals))
        labels.append("original")
    tiles = np.stack(columns, axis=1)                                      # (N, columns, 3, H, W)
    captions = None
    if known_original:
        # The error where it matters: on the unknown pixels (inpainting) or everywhere (denoising).
        where = unknown if not denoise else np.ones_like(unknown)
        start = inputs if denoise else masked_input(inputs, unknown)   # what the model starts from
        err_in = _masked_mse(start, originals, where)
        err_out = _masked_mse(results, originals, where)
        captions = [[f"MSE {a:.4f}", f"MSE {b:.4f}", ""] for a, b in zip(err_in, err_out)]
    out = output_path(opened, out, "denoise" if denoise else "inpaint")
    title = "denoising" if denoise else f"inpainting ({int(unknown[0].sum())} unknown values per image)"
    atomic_write_bytes(out / "figure.png", annotated_grid(tiles, captions, col_labels=labels, title=title))
    with atomic_open(out / "results.npy", "wb") as handle:
        np.save(handle, results, allow_pickle=False)
    for stem, image in zip(file_stems(names), results):
        save_image(out / f"{stem}.png", image)
    if known_original:
        click.echo(f"mean squared error on the {'noisy' if denoise else 'unknown'} pixels: "
                   f"{err_in.mean():.5f} before, {err_out.mean():.5f} after")
    click.echo(f"  figure:  {out / 'figure.png'}")
    click.echo(f"  results: {out / 'results.npy'} and {len(results)} PNGs in {out}")


def _masked_mse(a, b, where):
    import numpy as np

    diff = ((a.astype(np.float64) - b.astype(np.float64)) / 255.0) ** 2
    counts = np.maximum(where.reshape(len(a), -1).sum(axis=1), 1)
    return (diff * where).reshape(len(a), -1).sum(axis=1) / counts
