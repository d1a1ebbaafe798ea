"""Input complexity: how many bits a general-purpose lossless compressor needs for an image.

Serrà et al. (2020, "Input complexity and out-of-distribution detection with likelihood-based
generative models") show that a generative model's likelihood is dominated by how simple an
image is; the length L(x) of a universal compressor's code estimates −log₂ of a "generic
image" model, and NLL(x) − L(x) (both in bits) is a log-likelihood ratio against it.

Compressors (Pillow and the standard library; FLIF, the paper's best, is not available):

- ``png``: Pillow's PNG with ``optimize=True``; bilevel images (only 0 and 255) are written
  with 1 bit per pixel, as any PNG optimiser would. The file length includes PNG's constant
  headers, which shift every score by the same amount.
- ``zlib``, ``bz2``, ``lzma``: the raw bytes (bilevel images packed to 1 bit per pixel),
  at their strongest settings.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib

import numpy as np

from ..errors import VaelabError

COMPRESSORS = ("png", "zlib", "bz2", "lzma")


def is_bilevel(image: np.ndarray) -> bool:
    return bool(np.all((image == 0) | (image == 255)))


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    C = image.shape[0]
    bilevel = is_bilevel(image)
    if C == 1:
        pil = Image.fromarray(image[0], mode="L")
        if bilevel:
            pil = pil.convert("1", dither=Image.Dither.NONE)
    else:
        pil = Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0)), mode="RGB")
    buf = io.BytesIO()
    pil.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _raw(image: np.ndarray) -> bytes:
    return np.packbits(image > 127).tobytes() if is_bilevel(image) else image.tobytes()


_CODERS = {
    "png": _png,
    "zlib": lambda im: zlib.compress(_raw(im), 9),
    "bz2": lambda im: bz2.compress(_raw(im), 9),
    "lzma": lambda im: lzma.compress(_raw(im), preset=9 | lzma.PRESET_EXTREME),
}


def compressed_bits(images: np.ndarray, method: str = "png") -> np.ndarray:
    """uint8 (N, C, H, W) -> (N,) float64 length in bits of each image's lossless compression."""
    coder = _CODERS.get(method)
    if coder is None:
        raise VaelabError(f"unknown compressor '{method}'; choose {', '.join(COMPRESSORS)}")
    return np.array([8.0 * len(coder(np.ascontiguousarray(image))) for image in images], dtype=np.float64)
