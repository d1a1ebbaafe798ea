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
- ``context``: adaptive context-model coding of the bit planes with JBIG's 10-pixel template
  (:func:`context_bits`), the design of the lossless bilevel-image standard (ITU-T T.82); the
  ideal code length of its arithmetic coder.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib

import numpy as np

from ..errors import VaelabError

COMPRESSORS = ("png", "zlib", "bz2", "lzma", "context")


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
    # Raw LZMA2 stream (no container) with a dictionary sized for one small image: the
    # default 64 MiB dictionary makes every call allocate for nothing.
    "lzma": lambda im: lzma.compress(_raw(im), format=lzma.FORMAT_RAW, filters=[
        {"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": 1 << 16}]),
}


def compressed_bits(images: np.ndarray, method: str = "png") -> np.ndarray:
    """uint8 (N, C, H, W) -> (N,) float64 length in bits of each image's lossless compression."""
    if method == "context":
        return context_bits(images)
    coder = _CODERS.get(method)
    if coder is None:
        raise VaelabError(f"unknown compressor '{method}'; choose {', '.join(COMPRESSORS)}")
    return np.array([8.0 * len(coder(np.ascontiguousarray(image))) for image in images], dtype=np.float64)


# JBIG's (ITU-T T.82) three-line template: 10 causal neighbours (row offset, column offset).
TEMPLATE = ((-2, -1), (-2, 0), (-2, 1), (-1, -2), (-1, -1), (-1, 0), (-1, 1), (-1, 2), (0, -2), (0, -1))


def context_bits(images: np.ndarray) -> np.ndarray:
    """uint8 (N, C, H, W) -> (N,) ideal code length in bits of adaptive context-model coding.

    Each channel's 8 bit planes (Gray-coded, so neighbouring grey levels differ in one plane)
    are coded pixel by pixel in raster order; a pixel's probability comes from counts of what
    followed the same 10-pixel causal context (JBIG's template) earlier in the same image,
    with the Krichevsky–Trofimov estimate (n₁ + ½)/(n + 1). The sum of −log₂ p is the length
    an arithmetic coder reaches to within 2 bits. Constant planes cost 1 bit each (a flag).
    The images are coded independently, vectorised over the batch.
    """
    N, C, H, W = images.shape
    gray = images ^ (images >> 1)                                   # Gray code
    total = np.zeros(N)
    rows = np.arange(N)
    for c in range(C):
        for plane in range(8):
            bits = ((gray[:, c] >> plane) & 1).astype(np.int64)      # (N, H, W)
            constant = (bits.reshape(N, -1).min(axis=1) == bits.reshape(N, -1).max(axis=1))
            total += 1.0                                             # the "is constant" flag
            if constant.all():
                continue
            padded = np.zeros((N, H + 2, W + 4), dtype=np.int64)
            padded[:, 2:, 2:W + 2] = bits
            # context of every pixel at once: it only looks at pixels before it in raster order
            context = np.zeros((N, H, W), dtype=np.int64)
            for k, (dy, dx) in enumerate(TEMPLATE):
                context |= padded[:, 2 + dy:2 + dy + H, 2 + dx:2 + dx + W] << k
            counts = np.zeros((N, 1 << len(TEMPLATE), 2))
            cost = np.zeros(N)
            for y in range(H):
                for x in range(W):
                    ctx, bit = context[:, y, x], bits[:, y, x]
                    seen = counts[rows, ctx]                          # (N, 2)
                    p = (seen[rows, bit] + 0.5) / (seen.sum(axis=1) + 1.0)
                    cost -= np.log2(p)
                    counts[rows, ctx, bit] += 1.0
            total += np.where(constant, 0.0, cost)
    return total
