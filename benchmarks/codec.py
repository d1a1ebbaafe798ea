"""Rate–distortion benchmark of the vaelab codec against PNG, JPEG, WebP and PCA (issue 6).

    python benchmarks/codec.py --run runs/codec-fmnist              # 500 Fashion-MNIST test images
    python benchmarks/codec.py --run runs/codec-fmnist --images 10000
    python benchmarks/codec.py --run runs/codec-fmnist --baselines benchmarks/results/codec.json  # reuse PNG…PCA
    python benchmarks/codec.py --run runs/codec-fmnist --refine 200   # also a curve with refined codes

For every codec and quality setting it measures, on the first N Fashion-MNIST test images:

* rate: bytes per image and bits per pixel with every header counted — one file per image
  for PNG/JPEG/WebP (each file carries its own header), one file holding all N images for
  the vaelab and PCA coders (their shared header divided by N, plus each image's length
  field); the size of a one-image file is reported as well;
* distortion: mean PSNR and mean SSIM over the images (uint8 decoded vs original);
* speed: encode and decode images per second, measured in this process.

From the curves it reports the ratio of bytes at equal PSNR (WebP / vaelab, PCA / vaelab,
…), interpolating each curve's log-bytes linearly in PSNR on its Pareto front. Writes a
table to stdout, JSON and a plot (PNG) under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


# -- the codecs -------------------------------------------------------------------------------
def pillow_codec(fmt: str, **options):
    """A Pillow codec as (encode one (1, H, W) image -> bytes, decode bytes -> (1, H, W))."""
    from PIL import Image

    def encode(image: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image[0], mode="L").save(buffer, format=fmt, **options)
        return buffer.getvalue()

    def decode(data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("L"))[None]

    return encode, decode


def measure_pillow(name: str, setting, images: np.ndarray, fmt: str, **options) -> dict:
    encode, decode = pillow_codec(fmt, **options)
    start = time.perf_counter()
    files = [encode(image) for image in images]
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    decoded = np.stack([decode(f) for f in files])
    decode_s = time.perf_counter() - start
    sizes = np.array([len(f) for f in files])
    return point(name, setting, images, decoded, sizes.mean(), sizes.mean(), encode_s, decode_s)


def measure_coder(name: str, model, quality: float, images: np.ndarray, single: int, refine: int = 0) -> dict:
    """A vaelab-format coder (a model or PCA): one file for all images, plus one-image files."""
    from vaelab.apps import codec

    start = time.perf_counter()
    data = codec.compress(model, images, quality=quality, refine=refine)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    decoded = codec.decompress(data, model)
    decode_s = time.perf_counter() - start
    one_image = np.mean([len(codec.compress(model, images[i:i + 1], quality=quality, refine=refine))
                         for i in range(single)])
    info = codec.inspect(data)
    result = point(name, quality, images, decoded, len(data) / len(images), one_image, encode_s, decode_s)
    result["header_bytes"] = info["header_bytes"]
    return result


def ideal_pca(pca, quality: float, images: np.ndarray) -> dict:
    """PCA with an ideal entropy coder: −log₂ P of the quantised coefficients, no header at all."""
    tables = pca.tables(quality)
    symbols = tables.symbols(pca.analysis(images))
    decoded = pca.synthesis(tables.values(symbols), quality)
    bytes_per_image = float(tables.bits(symbols).mean() / 8)
    return point("PCA (ideal entropy, no header)", quality, images, decoded, bytes_per_image, bytes_per_image,
                 float("nan"), float("nan"))


def point(name, setting, images, decoded, bytes_per_image, one_image_bytes, encode_s, decode_s) -> dict:
    from vaelab import metrics

    N, C, H, W = images.shape
    psnr = metrics.psnr(images, decoded)
    return {"codec": name, "setting": setting, "bytes_per_image": float(bytes_per_image),
            "one_image_file_bytes": float(one_image_bytes), "bpp": float(bytes_per_image * 8 / (C * H * W)),
            "psnr": float(psnr.mean()), "lossless": bool(np.array_equal(images, decoded)),
            "ssim": float(metrics.ssim(images, decoded).mean()),
            "encode_images_per_s": N / encode_s if encode_s == encode_s else None,
            "decode_images_per_s": N / decode_s if decode_s == decode_s else None}


# -- curves -----------------------------------------------------------------------------------
def pareto(points: list[dict]) -> list[tuple[float, float]]:
    """(PSNR, bytes) of the points no other point beats on both, by increasing PSNR."""
    pts = sorted((p["psnr"], p["bytes_per_image"]) for p in points if not p["lossless"])
    front: list[tuple[float, float]] = []
    for psnr, size in sorted(pts, key=lambda t: t[1]):       # cheapest first
        if not front or psnr > front[-1][0]:
            front.append((psnr, size))
    return front


def bytes_at(front: list[tuple[float, float]], psnr: float) -> float | None:
    """Bytes the curve needs for ``psnr`` (log-linear interpolation); None outside its range."""
    xs = [p for p, _ in front]
    if not front or psnr < xs[0] or psnr > xs[-1]:
        return None
    return float(np.exp(np.interp(psnr, xs, [np.log(b) for _, b in front])))


def ratios(curves: dict[str, list], ours: str, grid: list[float]) -> dict[str, dict[str, float | None]]:
    """{other codec: {psnr: bytes_other / bytes_ours}} on the PSNR grid."""
    mine = curves[ours]
    out = {}
    for name, front in curves.items():
        if name == ours:
            continue
        row = {}
        for p in grid:
            a, b = bytes_at(front, p), bytes_at(mine, p)
            row[f"{p:g}"] = None if a is None or b is None else a / b
        out[name] = row
    return out


def plot(results: list[dict], curves: dict, path: Path, n: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    for name in curves:
        pts = sorted((p for p in results if p["codec"] == name and not p["lossless"]), key=lambda p: p["bytes_per_image"])
        if not pts:  # the combined front of several vaelab runs
            continue
        style = "o-" if name.startswith("vaelab") else ".--" if "ideal" in name else ".-"
        ax1.plot([p["bytes_per_image"] for p in pts], [p["psnr"] for p in pts], style, label=name, ms=4)
        ax2.plot([p["bytes_per_image"] for p in pts], [p["ssim"] for p in pts], style, label=name, ms=4)
    png = next((p for p in results if p["codec"] == "PNG"), None)
    for ax in (ax1, ax2):
        if png:
            ax.axvline(png["bytes_per_image"], color="grey", lw=0.8, ls=":")
            ax.text(png["bytes_per_image"], ax.get_ylim()[0], " PNG (lossless)", rotation=90, va="bottom",
                    fontsize=8, color="grey")
        ax.set_xscale("log")
        # plain numbers at 20, 50, 100, 200, 500 bytes: the default minor labels overlap
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator([10, 20, 50, 100, 200, 500, 1000]))
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("bytes per image (headers counted)")
        ax.grid(alpha=0.3, which="both")
    ax1.set_ylabel("PSNR (dB)")
    ax2.set_ylabel("SSIM")
    ax1.axhspan(24, 34, color="tab:green", alpha=0.06)
    ax1.legend(fontsize=8)
    fig.suptitle(f"Rate–distortion on the first {n:,} Fashion-MNIST test images (28×28 grey)")
    fig.tight_layout()
    from vaelab.fileio import atomic_open

    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)


# -- main -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, action="append", required=True,
                        help="a conv-rd run trained on fashion-mnist; repeat for several (the vaelab curve is "
                             "then their common Pareto front: quality picks the model)")
    parser.add_argument("--images", type=int, default=500, help="first N test images (default 500)")
    parser.add_argument("--qualities", type=int, default=17, help="vaelab quality settings, evenly spaced")
    parser.add_argument("--single", type=int, default=50, help="images coded alone to measure one-image files")
    parser.add_argument("--extra-run", type=Path, action="append", default=[],
                        help="another vaelab run to include (e.g. a plain VAE), at its default quality range")
    parser.add_argument("--baselines", type=Path,
                        help="reuse PNG, JPEG, WebP and PCA results from an earlier results JSON on the same "
                             "images (they do not change between vaelab models; PCA alone takes ~15 min)")
    parser.add_argument("--refine", type=int, default=0,
                        help="also measure the --run models with codes refined by this many gradient steps "
                             "(`vaelab compress --refine`), as a second vaelab curve")
    parser.add_argument("--refine-qualities", type=int, default=9, help="quality settings of that curve")
    parser.add_argument("--refine-range", type=float, nargs=2, metavar=("LO", "HI"),
                        help="spread those settings over qualities LO..HI instead of each run's whole range "
                             "(refining costs minutes per setting; spend them where the curve matters)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", type=Path, default=RESULTS / "codec", help="results prefix (.json and .png added)")
    args = parser.parse_args(argv)

    import torch
    from tqdm.auto import tqdm

    import vaelab
    from vaelab.apps import codec
    from vaelab.data import DataConfig, load_data
    from vaelab.fileio import atomic_write_json

    torch.set_num_threads(args.threads)
    data = load_data(DataConfig(name="fashion-mnist", download=False))
    images = data.test.images[:args.images].numpy()
    N = len(images)
    models = {run: vaelab.load(run) for run in args.run}
    for run, model in models.items():
        if tuple(model.image_shape) != tuple(images.shape[1:]):
            parser.error(f"{run} models images of shape {model.image_shape}, Fashion-MNIST is {images.shape[1:]}")
    baselines = []
    if args.baselines:
        earlier = json.loads(args.baselines.read_text())
        if earlier.get("images") != N:
            parser.error(f"{args.baselines} measured {earlier.get('images')} images, not {N}")
        baselines = [r for r in earlier["results"] if not r["codec"].startswith("vaelab")]
        jobs = []
    else:
        pca = codec.PCACoder.fit(data.train.images.numpy())
        jobs = [("PNG", "optimize", lambda: measure_pillow("PNG", "optimize", images, "PNG", optimize=True))]
        jobs += [("WebP", q, lambda q=q: measure_pillow("WebP", q, images, "WEBP", quality=q, method=6))
                 for q in range(0, 101, 5)]
        jobs += [("JPEG", q, lambda q=q: measure_pillow("JPEG", q, images, "JPEG", quality=q, optimize=True))
                 for q in (1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)]
        pca_qualities = np.arange(4.0, 13.01, 0.5)
        jobs += [("PCA", q, lambda q=q: measure_coder("PCA", pca, float(q), images, args.single))
                 for q in pca_qualities]
        jobs += [("PCA ideal", q, lambda q=q: ideal_pca(pca, float(q), images)) for q in pca_qualities]

    def coder_jobs(label: str, model, qualities, refine: int = 0) -> list:
        """One job per quality setting of a vaelab model."""
        return [(label, q, lambda q=q: measure_coder(label, model, float(q), images, args.single, refine))
                for q in qualities]

    def evenly(model, settings: int, within=None) -> np.ndarray:
        lo, hi = codec.coder_for(model).quality_range
        if within:
            lo, hi = max(lo, within[0]), min(hi, within[1])
        return np.linspace(lo, hi, settings)

    labels = {run: f"vaelab {model.registry_name}" + (f" ({run.name})" if len(models) > 1 else "")
              for run, model in models.items()}
    for run, model in models.items():
        jobs += coder_jobs(labels[run], model, evenly(model, args.qualities))
    refined = {run: f"{labels[run]} --refine {args.refine}" for run in models} if args.refine else {}
    for run in refined:
        jobs += coder_jobs(refined[run], models[run], evenly(models[run], args.refine_qualities, args.refine_range),
                            args.refine)
    for run in args.extra_run:
        extra = vaelab.load(run)
        lo, hi = codec.coder_for(extra).quality_range
        # rate–distortion models span their few trained levels; the others' quality runs 1..20
        qualities = evenly(extra, args.qualities) if hi - lo < 10 else np.arange(1.0, 13.01, 1.0)
        jobs += coder_jobs(f"vaelab {extra.registry_name} ({run.name})", extra, qualities)

    results = list(baselines)
    for _, _, job in tqdm(jobs, desc="codecs × settings", unit="point"):
        results.append(job())

    names = list(dict.fromkeys(r["codec"] for r in results))
    curves = {name: pareto([r for r in results if r["codec"] == name]) for name in names if name != "PNG"}
    ours = "vaelab" if len(models) > 1 else labels[args.run[0]]
    if len(models) > 1:  # the codec picks the model: the best of the runs at each rate
        curves[ours] = pareto([r for r in results if r["codec"] in labels.values()])
    ours_refined = f"vaelab --refine {args.refine}"
    if refined:
        curves[ours_refined] = pareto([r for r in results if r["codec"] in refined.values()])
    grid = [float(p) for p in range(20, 41)]
    table = ratios(curves, ours, grid)
    table_refined = ratios(curves, ours_refined, grid) if refined else {}

    # -- print -----------------------------------------------------------------------------------
    print(f"\nFashion-MNIST test images 1..{N} (28×28 grey), headers counted; {args.threads} torch thread(s)\n")
    print(f"{'codec':<34} {'setting':>8} {'B/img':>8} {'1-img file':>10} {'bpp':>6} {'PSNR':>6} {'SSIM':>6} "
          f"{'enc img/s':>10} {'dec img/s':>10}")
    for r in results:
        setting = f"{r['setting']:.3g}" if isinstance(r["setting"], float) else str(r["setting"])
        speed = lambda v: f"{v:10.0f}" if v else f"{'-':>10}"  # noqa: E731
        psnr = "   inf" if r["lossless"] else f"{r['psnr']:6.2f}"
        print(f"{r['codec']:<34} {setting:>8} {r['bytes_per_image']:8.1f} {r['one_image_file_bytes']:10.1f} "
              f"{r['bpp']:6.3f} {psnr} {r['ssim']:6.4f} {speed(r['encode_images_per_s'])} "
              f"{speed(r['decode_images_per_s'])}")
    print(f"\nbytes needed at equal PSNR, other codec ÷ {ours} (— = outside a curve's range)")
    shown = [p for p in grid if 20 <= p <= 40]

    def print_row(name: str, values: list, digits: int) -> None:
        print(f"{name:<34}" + "".join(f"{v:6.{digits}f}" if v else f"{'—':>6}" for v in values))

    print(f"{'PSNR (dB)':<34}" + "".join(f"{p:>6g}" for p in shown))
    for name, row in table.items():
        print_row(name, [row[f"{p:g}"] for p in shown], 2)
    print_row(ours + " B/img", [bytes_at(curves[ours], p) for p in shown], 1)
    if refined:
        print(f"\nbytes needed at equal PSNR, other codec ÷ {ours_refined}")
        for name in ("WebP", "PCA", "JPEG", ours):
            if name in table_refined:
                print_row(name, [table_refined[name][f"{p:g}"] for p in shown], 2)
        print_row(ours_refined + " B/img", [bytes_at(curves[ours_refined], p) for p in shown], 1)

    out_json, out_png = args.out.with_suffix(".json"), args.out.with_suffix(".png")
    summary = {"images": N, "runs": [str(r) for r in args.run], "threads": args.threads, "results": results,
               "pareto": {k: v for k, v in curves.items()}, "ratio_at_equal_psnr": table,
               "vaelab_bytes_at_psnr": {f"{p:g}": bytes_at(curves[ours], p) for p in grid}}
    if refined:
        summary["refine_steps"] = args.refine
        summary["ratio_at_equal_psnr_refined"] = table_refined
        summary["vaelab_refined_bytes_at_psnr"] = {f"{p:g}": bytes_at(curves[ours_refined], p) for p in grid}
    atomic_write_json(out_json, summary)
    plot(results, curves, out_png, N)
    print(f"\nwrote {out_json} and {out_png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
