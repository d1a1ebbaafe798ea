"""compress / decompress / inspect: images to a real bitstream and back.

    data = compress(model, images_uint8, quality=None)   # (N, C, H, W) uint8 -> bytes
    data, quality, psnr = compress_to_psnr(model, images_uint8, 32.0)   # the cheapest quality reaching 32 dB
    images = decompress(data, model)                     # bytes -> (N, C, H, W) uint8
    info = inspect(data)                                 # header fields, per-image bytes

The codec asks the model: ``model.entropy_model()`` (models/entropy_models.py) runs the
model's encoder, quantises the latent with the steps the quality selects and range-codes each
image's integers under the model's discretised density (vaelab/coding); the container
(container.py) adds the shared header and a checksum. The decoder checks the file before it
trusts any of it, has the same entropy model rebuild the same probability tables from the
model's parameters, decodes the integers and runs the decoder network. Every problem a user
can cause is a one-line :class:`VaelabError`.

Decoding memory is bounded by the file's size and by DECODE_CHUNK: the container refuses a
file declaring more images or pixels than it can hold (container.py) before anything is
allocated, and the images are entropy-decoded and synthesised DECODE_CHUNK at a time into one
uint8 array, so the float64 latents of only one chunk exist at any moment.
"""

from __future__ import annotations

import math
import re
import struct
from typing import Callable

import numpy as np

from ...errors import VaelabError
from . import container

MAX_DECODED_BYTES = container.MAX_DECODED_BYTES   # files expand to at most 1 GiB of pixels
# Images decoded and synthesised at a time. A multiple of the networks' batch (256,
# models/entropy_models.BATCH) and of the context decoder's chunk (64), so every network call
# sees the very images it saw when whole files were decoded at once: the pixels are unchanged.
DECODE_CHUNK = 256


def coder_for(model):
    """The entropy model the codec codes ``model``'s latents with: the model's own (or a PCA coder)."""
    entropy_model = getattr(model, "entropy_model", None)
    if entropy_model is None:
        raise VaelabError(f"the codec cannot code with a {type(model).__name__}; use a vaelab model "
                          "(`vaelab.load(run_dir)`) or a PCA coder")
    return entropy_model()


def _float32(value: float) -> float:
    """The value as the file stores it, so encoder and decoder use the very same quality."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


def _check_quality(coder, quality: float | None) -> float:
    if quality is None:
        quality = coder.default_quality
    try:
        quality = float(quality)
    except (TypeError, ValueError):
        raise VaelabError(f"quality must be a number, got {quality!r}") from None
    lo, hi = coder.quality_range
    if not (math.isfinite(quality) and lo <= quality <= hi):
        raise VaelabError(f"quality must be between {lo:g} and {hi:g} for this model, got {quality:g}")
    return _float32(quality)


def _as_images(images, shape: tuple[int, int, int]) -> np.ndarray:
    if hasattr(images, "detach"):  # a torch tensor
        images = images.detach().cpu().numpy()
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise VaelabError(f"the codec takes uint8 images (0..255); got dtype {images.dtype}")
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(shape):
        raise VaelabError(f"this model codes images of shape (N, {', '.join(map(str, shape))}); got {images.shape}")
    if len(images) == 0:
        raise VaelabError("there are no images to compress")
    # what the decoder would refuse is refused before any coding
    if len(images) > container.MAX_IMAGES:
        raise VaelabError(f"{len(images):,} images are more than the {container.MAX_IMAGES:,} one file may hold; "
                          "compress them into several files")
    if images.nbytes > MAX_DECODED_BYTES:
        raise VaelabError(f"{len(images):,} images of shape {tuple(shape)} are {images.nbytes:,} bytes of pixels, over "
                          f"the {MAX_DECODED_BYTES:,} one file may decode to; compress them into several files")
    return np.ascontiguousarray(images)


def compress(model, images, quality: float | None = None, refine: int = 0,
             progress: Callable[[int], None] | None = None, names: list[str] | None = None) -> bytes:
    """uint8 images (N, C, H, W) -> the bytes of one codec file holding all N.

    ``model`` is a vaelab model (``vaelab.load(run)``) or a :class:`PCACoder`; ``quality``
    its quality knob (None = the model's default; see coders.py). ``refine`` > 0 (conv-rd
    models only) spends that many gradient steps per batch improving each image's code for
    rate + λ·distortion — slower encoding, same decoder. ``progress`` is called with the
    number of images just coded. ``names`` (one per image, each cut to 255 bytes of UTF-8) are
    stored with the images (format version 2), so that ``inspect(data)["names"]`` gives them back.
    """
    coder = coder_for(model)
    images = _as_images(images, coder.image_shape)
    if names is not None and len(names) != len(images):
        raise VaelabError(f"give one name per image: {len(names)} names for {len(images)} images")
    quality = _check_quality(coder, quality)
    if not isinstance(refine, int) or isinstance(refine, bool) or not 0 <= refine <= 10_000:
        raise VaelabError(f"refine must be a whole number of steps from 0 to 10000, got {refine!r}")
    y = coder.analysis(images)
    if refine:
        from .refine import refine as refine_codes

        y = refine_codes(coder, images, y, quality, refine)
    # An empty stream (every symbol the first of its table) is the range coder's number 0, which
    # one zero byte also is (the decoder pads with zeros): the container allows no empty stream.
    payloads = [p or b"\0" * container.MIN_STREAM_BYTES for p in coder.compress_latents(y, quality, progress)]
    header = container.Header(coder.name, coder.fingerprint, quality, coder.image_shape,
                              tuple(len(p) for p in payloads), None if names is None else tuple(map(str, names)))
    return container.pack(header, payloads)


PSNR_SEARCH_ROUNDS = 8   # bisection rounds: quality to 1/256 of its range (0.016 for 5 levels)


def compress_to_psnr(model, images, target_psnr: float, refine: int = 0, rounds: int = PSNR_SEARCH_ROUNDS,
                     progress: Callable[[int], None] | None = None,
                     names: list[str] | None = None) -> tuple[bytes, float, float]:
    """The file at the lowest quality whose decoded images reach ``target_psnr`` dB on average.

    A target instead of a knob (as cwebp's ``-psnr``): the quality is found by bisection,
    and every quality tried is really coded and decoded, so the PSNR returned is the one
    the receiver gets (mean over the images of each one's PSNR). Returns (file bytes,
    quality, mean PSNR). ``progress`` is called once per quality tried (``rounds`` + 2).
    A target beyond the best quality is a VaelabError naming the best reachable PSNR.
    """
    from ... import metrics

    coder = coder_for(model)
    images = _as_images(images, coder.image_shape)
    try:
        target = float(target_psnr)
    except (TypeError, ValueError):
        raise VaelabError(f"the target PSNR must be a number of dB, got {target_psnr!r}") from None
    if not (math.isfinite(target) and target > 0):
        raise VaelabError(f"the target PSNR must be a positive number of dB, got {target:g}")

    def attempt(quality: float) -> tuple[bytes, float, float]:
        data = compress(model, images, quality=quality, refine=refine, names=names)
        reached = float(metrics.psnr(images, decompress(data, model)).mean())
        if progress is not None:
            progress(1)
        return data, _float32(quality), reached   # the quality as the file stores it

    lo, hi = coder.quality_range
    best = attempt(hi)
    if best[2] < target:
        raise VaelabError(f"these images reach at most {best[2]:.2f} dB with this model (quality {hi:g}), "
                          f"below the {target:g} dB asked for")
    worst = attempt(lo)
    if worst[2] >= target:
        return worst
    # invariant: quality `below` misses the target, `best` (at quality best[1]) reaches it
    below, above = lo, hi
    for _ in range(rounds):
        middle = (below + above) / 2
        tried = attempt(middle)
        if tried[2] >= target:
            best, above = tried, middle
        else:
            below = middle
    return best


def decompress(data: bytes, model, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """The bytes of a codec file -> uint8 images (N, C, H, W), with the model that wrote it."""
    header, payloads = container.unpack(data)
    coder = coder_for(model)
    if header.fingerprint != coder.fingerprint:
        raise VaelabError(f"was written by the model with fingerprint {header.fingerprint.hex()}, but the model "
                          f"given has fingerprint {coder.fingerprint.hex()}; decompress with the run that compressed it")
    if header.coder != coder.name:
        raise VaelabError(f"was coded with the {header.coder} coder, but this model uses the {coder.name} coder")
    if header.image_shape != coder.image_shape:
        raise VaelabError(f"holds images of shape {header.image_shape}, but the model makes {coder.image_shape}; "
                          "the file is damaged")
    lo, hi = coder.quality_range
    if not lo <= header.quality <= hi:
        raise VaelabError(f"was coded at quality {header.quality:g}, outside this model's {lo:g}..{hi:g}; "
                          "the file is damaged")
    if header.count * math.prod(header.image_shape) > MAX_DECODED_BYTES:   # container.unpack checked it too
        raise VaelabError(f"would decode to {header.count:,} images of shape {header.image_shape}, over the "
                          f"{MAX_DECODED_BYTES:,}-byte limit; split it into smaller files")
    images = np.empty((header.count, *header.image_shape), dtype=np.uint8)
    for start in range(0, header.count, DECODE_CHUNK):
        chunk = payloads[start:start + DECODE_CHUNK]
        try:
            values = coder.decompress_latents(chunk, header.quality, progress)
        except VaelabError as exc:
            raise VaelabError(_renumbered(str(exc), start)) from None
        images[start:start + len(chunk)] = coder.synthesis(values, header.quality)
        del values   # the next chunk's latents replace these, never join them
    return images


def _renumbered(message: str, offset: int) -> str:
    """A chunk's "image i: …" error as the file's "image offset+i: …"."""
    return re.sub(r"^image (\d+):", lambda m: f"image {int(m.group(1)) + offset}:", message, count=1)


def inspect(data: bytes) -> dict:
    """What a codec file holds, without a model: header fields and each image's bytes.

    ``header_bytes + sum(image_bytes) == total_bytes``; header_bytes counts the shared
    header, every image's length field and name (if the file keeps names) and the checksum.
    """
    header, payloads = container.unpack(data)
    C, H, W = header.image_shape
    shared = container.header_bytes(header)
    return {
        "format_version": container.FORMAT_VERSION if header.names is None else container.NAMED_FORMAT_VERSION,
        "coder": header.coder,
        "fingerprint": header.fingerprint.hex(),
        "quality": header.quality,
        "image_shape": list(header.image_shape),
        "images": header.count,
        "total_bytes": len(data),
        "header_bytes": shared,
        "image_bytes": [len(p) for p in payloads],
        "bits_per_pixel": len(data) * 8 / (header.count * H * W),
        "names": None if header.names is None else list(header.names),
    }
