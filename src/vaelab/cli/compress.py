"""``vaelab compress``: images -> one codec file, coded with a trained run's model."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("compress", context_settings={"max_content_width": 110})
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", "out", type=click.Path(path_type=Path), required=True,
              help="the codec file to write (e.g. images.vlc).")
@click.option("--quality", type=float, default=None,
              help="quality knob: conv-rd models 1..L (their trained levels, fractions in between; default L, "
                   "the best); VAEs and AEs 1..20, each +1 halves the squared quantisation step (default 9).")
@click.option("--psnr", "target_psnr", type=float, default=None, metavar="DB",
              help="instead of --quality: the lowest quality whose decoded images reach this mean PSNR "
                   "(found by bisection, each try really coded and decoded: ~10 passes over the images).")
@click.option("--refine", type=int, default=0,
              help="conv-rd models: gradient steps that improve each image's code for rate + λ·distortion "
                   "(200 steps: 11 % fewer bytes at equal PSNR at 32–34 dB on Fashion-MNIST; encoding slows from "
                   "~45 to ~3 images/s on two threads; same decoder; 0 = off).")
@click.option("--names/--no-names", default=True, show_default=True,
              help="keep each image's file name in the file, so decompress gives them back (about 10 bytes an "
                   "image; --no-names for the smallest files).")
@click.option("--threads", type=int, default=0, help="CPU threads for the networks (0 = PyTorch's default).")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar and no per-image lines.")
def command(run: Path, images: tuple[Path, ...], out: Path, quality: float | None, target_psnr: float | None,
            refine: int, names: bool, threads: int, quiet: bool):
    """Compress IMAGES with the model of RUN into one file with a shared header.

    IMAGES are image files, folders of images or .npy arrays (- reads one image or .npy array
    from standard input); they are converted to the model's channels and size. The latent
    code of each image is quantised and range-coded under the model's own density; the file
    records the model's fingerprint, so only that model can decode it. Prints each image's
    bytes and its PSNR after decoding.

    \b
    Examples:
      vaelab compress runs/codec-fmnist shirt.png shoe.png -o clothes.vlc
      vaelab compress runs/codec-fmnist photos/ -o photos.vlc --quality 2.5
      vaelab compress runs/codec-fmnist photos/ -o photos.vlc --psnr 28
      convert scan.tif png:- | vaelab compress runs/codec-fmnist - -o scan.vlc
      vaelab decompress clothes.vlc -o decoded/ --run runs/codec-fmnist
    """
    import torch
    from tqdm.auto import tqdm

    from ..runs import load_model as load
    from .. import metrics
    from ..apps import codec
    from ..errors import VaelabError
    from ..fileio import atomic_write_bytes
    from ..imageio import load_images

    if quality is not None and target_psnr is not None:
        raise VaelabError("give --quality or --psnr, not both")
    if threads:
        torch.set_num_threads(threads)
    model = load(run)
    C, H, W = model.image_shape
    pixels, sources, notices = load_images(images, C, (H, W))
    kept = [Path(name).name for name in sources] if names else None
    for notice in notices:
        click.echo(f"note: {notice}")
    if refine and not quiet:
        click.echo(f"refining every code with {refine} gradient steps before coding (slower) …")
    if target_psnr is not None:
        with tqdm(total=codec.api.PSNR_SEARCH_ROUNDS + 2, unit="try", desc=f"quality for {target_psnr:g} dB",
                  disable=quiet) as bar:
            data, _, _ = codec.compress_to_psnr(model, pixels, target_psnr, refine=refine, progress=bar.update,
                                                names=kept)
    else:
        with tqdm(total=len(pixels), unit="img", desc="compressing", disable=quiet or len(pixels) < 50) as bar:
            data = codec.compress(model, pixels, quality=quality, refine=refine, progress=bar.update, names=kept)
    decoded = codec.decompress(data, model)
    atomic_write_bytes(out, data)

    info = codec.inspect(data)
    psnr = metrics.psnr(pixels, decoded)   # the measure --psnr aims at (capped at 100 dB)
    if not quiet:
        width = min(max(len(n) for n in sources), 60)
        for name, size, p in zip(sources, info["image_bytes"], psnr):
            shown = name if len(name) <= width else "…" + name[-width + 1:]
            click.echo(f"  {shown:<{width}}  {size:6d} B  {size * 8 / (H * W):6.3f} bpp  PSNR {min(p, 99.99):5.2f} dB")
    n = info["images"]
    click.echo(f"{n} image{'s' * (n != 1)} at quality {info['quality']:g}: {info['total_bytes']:,} bytes "
               f"({info['header_bytes']} header + {sum(info['image_bytes']):,} bitstreams), "
               f"{info['total_bytes'] / n:.1f} B/image, {info['bits_per_pixel']:.3f} bpp, "
               f"mean PSNR {float(psnr.mean()):.2f} dB")
    click.echo(f"wrote {out}")
