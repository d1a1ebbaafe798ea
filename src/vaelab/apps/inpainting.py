"""Inpainting and denoising by projecting onto what the model has learned.

Inpainting (Rezende et al. 2014, §5.2, with the posterior mean in place of a sample so the
result is deterministic): unknown pixels start at the mean of the known ones; then, repeatedly,
the image is encoded, decoded to E[x | z = μ(x)], and the known pixels are clamped back to
their true values. Each round pulls the unknown pixels toward an image the model finds
plausible and consistent with the known ones. Known pixels come out exactly as they went in.

Denoising uses the same projection without a mask: a noisy image is encoded and decoded, and
the bottleneck (Def. 2.1.7) keeps the structure the model knows while dropping the noise it
cannot represent.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import VaelabError
from ..imageio import to_uint8
from .common import BATCH_SIZE, check_images, device_of, map_batches, to_float

MASK_REGIONS = ("top", "bottom", "left", "right", "centre", "random")


def _as_batch(model, image: np.ndarray) -> tuple[np.ndarray, bool]:
    single = isinstance(image, np.ndarray) and image.ndim == 3
    batch = image[None] if single else image
    return check_images(model, batch), single


def broadcast_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A boolean mask (H, W), (C, H, W), (1|N, 1|C, H, W) -> bool (N, C, H, W); True = unknown pixel."""
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise VaelabError(f"the mask must be boolean (True = unknown pixel), got dtype {mask.dtype}")
    try:
        return np.broadcast_to(mask, shape)
    except ValueError:
        raise VaelabError(f"a mask of shape {mask.shape} does not fit images of shape {shape}") from None


def region_mask(region: str, size: tuple[int, int], fraction: float = 0.5, seed: int = 0) -> np.ndarray:
    """A named (H, W) mask: top/bottom/left/right/centre hide ``fraction`` of the rows, columns or
    area; random hides each pixel with probability ``fraction``."""
    H, W = size
    if not 0.0 < fraction < 1.0:
        raise VaelabError(f"the masked fraction must lie strictly between 0 and 1, got {fraction}")
    mask = np.zeros((H, W), dtype=bool)
    rows, cols = max(1, round(fraction * H)), max(1, round(fraction * W))
    if region == "top":
        mask[:rows] = True
    elif region == "bottom":
        mask[H - rows:] = True
    elif region == "left":
        mask[:, :cols] = True
    elif region == "right":
        mask[:, W - cols:] = True
    elif region == "centre":
        h, w = max(1, round(np.sqrt(fraction) * H)), max(1, round(np.sqrt(fraction) * W))
        top, left = (H - h) // 2, (W - w) // 2
        mask[top:top + h, left:left + w] = True
    elif region == "random":
        mask = np.random.default_rng(seed).random((H, W)) < fraction
    else:
        raise VaelabError(f"unknown mask region '{region}'; choose {', '.join(MASK_REGIONS)} or give a mask image")
    return mask


def masked_input(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 (N, C, H, W) with each image's unknown pixels set to the mean of its known ones — the start of :func:`inpaint`."""
    known = np.where(mask, np.nan, image.astype(np.float64))
    fill = np.nanmean(known.reshape(image.shape[0], -1), axis=1)
    fill = np.nan_to_num(fill, nan=127.5)  # an image with no known pixel starts mid-grey
    return np.where(mask, np.clip(fill + 0.5, 0, 255).astype(np.uint8)[:, None, None, None], image)


@torch.no_grad()
def inpaint(model, image: np.ndarray, mask: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Fill the pixels where ``mask`` is True: uint8 (C, H, W) or (N, C, H, W) in, the same shape out.

    Known pixels are returned unchanged; unknown ones come from ``iterations`` rounds of
    encode → decode with the known pixels clamped.
    """
    if iterations < 1:
        raise VaelabError(f"inpainting needs at least 1 iteration, got {iterations}")
    batch, single = _as_batch(model, image)
    mask = broadcast_mask(mask, batch.shape)
    device = device_of(model)
    known = to_float(batch, device)
    unknown = torch.from_numpy(np.array(mask)).to(device)   # a copy: broadcast views are read-only
    x = to_float(masked_input(batch, mask), device)
    for _ in range(iterations):
        x = torch.where(unknown, model.reconstruct(x), known)
    out = np.where(mask, to_uint8(x), batch)
    return out[0] if single else out


def denoise(model, images: np.ndarray, iterations: int = 1) -> np.ndarray:
    """Project noisy images onto the model: uint8 (C, H, W) or (N, C, H, W) in, the same shape out."""
    if iterations < 1:
        raise VaelabError(f"denoising needs at least 1 iteration, got {iterations}")
    batch, single = _as_batch(model, images)
    for _ in range(iterations):
        batch = to_uint8(map_batches(model.reconstruct, model, batch, batch_size=BATCH_SIZE))
    return batch[0] if single else batch


def add_noise(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """uint8 images plus Gaussian noise of standard deviation ``sigma`` on the [0, 1] scale, clipped."""
    if sigma < 0:
        raise VaelabError(f"the noise level must be non-negative, got {sigma}")
    noise = np.random.default_rng(seed).normal(0.0, sigma * 255.0, images.shape)
    return np.clip(images + noise + 0.5, 0, 255).astype(np.uint8)
