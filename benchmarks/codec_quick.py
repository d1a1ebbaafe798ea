"""A codec run's bytes and PSNR against lossy WebP, in seconds rather than the full benchmark's hour.

For the first N Fashion-MNIST test images and seven qualities spread over the run's range:
the vaelab file's bytes per image (all N in one file), the mean PSNR of the decoded images,
encoding and decoding speed, and WebP's bytes per image at the same mean PSNR (its mean bytes
and mean PSNR over the images at each quality 0, 5, …, 100, interpolated log-linearly). The
full comparison with PNG, JPEG, per-image matching and PCA is benchmarks/codec.py.

    python benchmarks/codec_quick.py runs/codec-quick --images 500
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a codec run trained on fashion-mnist")
    parser.add_argument("--images", type=int, default=500, help="first N test images")
    parser.add_argument("--qualities", type=int, default=7, help="vaelab qualities, evenly spaced")
    args = parser.parse_args()

    import vaelab
    from vaelab import metrics
    from vaelab.apps import codec
    from vaelab.data import DataConfig, load_data
    from vaelab.web.sizes import decode_webp, webp_bytes

    model = vaelab.load(args.run)
    test = load_data(DataConfig(name="fashion-mnist")).test.images[:args.images].numpy()
    n = len(test)
    lo, hi = codec.coder_for(model).quality_range
    points = []
    for quality in np.linspace(lo, hi, args.qualities):
        start = time.perf_counter()
        data = codec.compress(model, test, quality=float(quality))
        encode = time.perf_counter() - start
        start = time.perf_counter()
        decoded = codec.decompress(data, model)
        decode = time.perf_counter() - start
        points.append((float(quality), float(metrics.psnr(test, decoded).mean()), len(data) / n, n / encode,
                       n / decode))
    webp = []
    for webp_quality in range(0, 101, 5):
        sizes, psnrs = [], []
        for image in test:
            data = webp_bytes(image, webp_quality)
            sizes.append(len(data))
            psnrs.append(float(metrics.psnr(image[None], decode_webp(data, image.shape[0])[None])[0]))
        webp.append((float(np.mean(psnrs)), float(np.mean(sizes))))
    webp.sort()
    xs, logs = [p for p, _ in webp], [np.log(b) for _, b in webp]
    print(f"{'quality':>7} {'PSNR dB':>8} {'B/image':>8} {'WebP B/image':>12} {'WebP ÷ vaelab':>13} "
          f"{'enc img/s':>9} {'dec img/s':>9}")
    for quality, psnr, size, encode, decode in points:
        other = float(np.exp(np.interp(psnr, xs, logs))) if xs[0] <= psnr <= xs[-1] else float("nan")
        print(f"{quality:7.2f} {psnr:8.2f} {size:8.1f} {other:12.1f} {other / size:13.2f} {encode:9.0f} {decode:9.0f}")


if __name__ == "__main__":
    main()
