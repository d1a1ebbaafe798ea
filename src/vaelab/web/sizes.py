"""How many bytes an image takes: vaelab's learned codec against PNG and WebP.

The comparison is made at the model's resolution on the very image the model sees. PNG
and WebP lossless are exact; for lossy WebP the quality is scanned from 0 to 100 in steps
of 5 (method 6, the slowest and smallest) and the smallest file whose PSNR reaches the
codec's PSNR is reported, so both lossy numbers buy at least the same fidelity.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from .. import metrics
from ..errors import VaelabError
from ..imageio import encode_png, to_pil

WEBP_QUALITIES = tuple(range(0, 101, 5))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 (C, H, W) images (vaelab.metrics: 100 dB for identical images)."""
    return float(metrics.psnr(a[None], b[None])[0])


def webp_bytes(image: np.ndarray, quality: int | None) -> bytes:
    """(C, H, W) uint8 -> WebP bytes; ``quality=None`` is lossless."""
    buf = io.BytesIO()
    options = {"lossless": True, "quality": 100} if quality is None else {"quality": quality}
    to_pil(image).save(buf, format="WEBP", method=6, **options)
    return buf.getvalue()


def decode_webp(data: bytes, channels: int) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        arr = np.asarray(im.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def smallest_webp_reaching(image: np.ndarray, target_psnr: float) -> tuple[int | None, int | None, float | None]:
    """(bytes, quality, psnr) of the smallest lossy WebP at least as faithful as ``target_psnr``.

    (None, None, None) when even quality 100 falls short (lossy WebP cannot match it).
    """
    best = (None, None, None)
    for quality in WEBP_QUALITIES:
        data = webp_bytes(image, quality)
        quality_psnr = psnr(image, decode_webp(data, image.shape[0]))
        if quality_psnr >= target_psnr and (best[0] is None or len(data) < best[0]):
            best = (len(data), quality, quality_psnr)
    return best


def _db(value: float) -> float | None:
    """dB for the JSON, None for an exact copy (lossless)."""
    return None if value >= metrics.PSNR_CAP_DB else round(value, 2)


def size_comparison(model, image: np.ndarray) -> tuple[dict[str, Any], np.ndarray | None]:
    """Bytes of one (C, H, W) uint8 image under each format, with each lossy format's PSNR.

    Returns (sizes, the codec's decoded (C, H, W) image). The codec part is replaced by
    ``codec_error`` (and the image by None) when this model cannot compress (e.g. the
    codec is not installed); the rest is still reported.
    """
    C, H, W = image.shape
    result: dict[str, Any] = {
        "raw": C * H * W,
        "png": len(encode_png(image, optimize=True)),
        "webp_lossless": len(webp_bytes(image, None)),
        "codec": None, "codec_psnr": None, "codec_error": None, "codec_header": None, "codec_coder": None,
        "webp": None, "webp_quality": None, "webp_psnr": None,
        "settings": "PNG: Pillow optimize=True; WebP: Pillow method=6, lossless, and lossy at the smallest "
                    "quality (0–100, step 5) whose PSNR reaches the codec's",
    }
    try:
        from ..apps.codec import compress, decompress, inspect

        data = compress(model, image[None])
        decoded = np.asarray(decompress(data, model))[0]
        info = inspect(data)
    except (VaelabError, ImportError) as exc:
        result["codec_error"] = str(exc)
        return result, None
    codec_psnr = psnr(image, decoded)
    webp_size, webp_quality, webp_psnr = smallest_webp_reaching(image, codec_psnr)
    result.update(codec=len(data), codec_header=info["header_bytes"], codec_coder=info["coder"],
                  codec_psnr=_db(codec_psnr), webp=webp_size, webp_quality=webp_quality,
                  webp_psnr=None if webp_psnr is None else _db(webp_psnr))
    return result, decoded
