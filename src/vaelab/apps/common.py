"""What every application shares: checking images, batching, the run's own data.

Images cross this layer as ``uint8`` arrays shaped (N, C, H, W) (DESIGN.md §2, Def. 1.3.1);
inside, float32 tensors in [0, 1] on the model's device. Every function here is small and
pure so the applications above read as their formulas.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from ..errors import VaelabError
from ..models.base import device_of
from ..runs import Run

BATCH_SIZE = 256  # images per forward pass: fast on CPUs, small enough for any GPU

def check_images(model, images: np.ndarray, what: str = "images") -> np.ndarray:
    """Validate a uint8 (N, C, H, W) batch for ``model``; a single (C, H, W) image is refused."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise VaelabError(f"{what} must be a uint8 numpy array, got {type(images).__name__} "
                          f"{getattr(images, 'dtype', '')}".strip())
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(model.image_shape):
        C, H, W = model.image_shape
        raise VaelabError(f"{what} have shape {images.shape}; this model takes (N, {C}, {H}, {W}) — "
                          "load them with vaelab.apps.load_inputs to convert size and channels")
    if images.shape[0] == 0:
        raise VaelabError(f"no {what} given")
    return images


def check_image(model, image: np.ndarray, what: str = "image") -> np.ndarray:
    """Validate one uint8 (C, H, W) image for ``model``."""
    if not isinstance(image, np.ndarray) or image.ndim != 3:
        raise VaelabError(f"{what} must be one (C, H, W) uint8 array, got shape {getattr(image, 'shape', '?')}")
    return check_images(model, image[None], what)[0]


def require_variational(model, what: str) -> None:
    """Refuse a plain autoencoder where a prior or posterior is needed."""
    if not model.is_variational:
        raise VaelabError(f"{what} needs a VAE (a model with a prior and a posterior); this run holds a plain "
                          f"autoencoder ({model.registry_name})")


def require_refittable(model, what: str, instead: str = "") -> None:
    """Refuse the likelihood regret for a model whose posterior is not one diagonal Gaussian to re-fit
    (``Model.refits_posterior``: hvae, cond-vae, vq-vae); ``instead`` ends the message with alternatives."""
    if not model.refits_posterior:
        raise VaelabError(f"{what} re-fits the posterior as one diagonal Gaussian, which a "
                          f"{model.registry_name} model's posterior is not{instead}")


def to_float(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 tensor in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).float().div_(255.0)


def batches(images: np.ndarray, batch_size: int = BATCH_SIZE, progress: bool = False,
            desc: str = "") -> Iterator[tuple[int, np.ndarray]]:
    """(start, images[start:start + batch_size]) pairs, with a tqdm bar when ``progress``."""
    from tqdm import tqdm

    N = images.shape[0]
    with tqdm(total=N, desc=desc, unit="img", disable=not progress, file=sys.stderr, leave=False) as bar:
        for start in range(0, N, batch_size):
            yield start, images[start:start + batch_size]
            bar.update(min(batch_size, N - start))


def map_batches(fn: Callable[[torch.Tensor], torch.Tensor], model, images: np.ndarray, *,
                batch_size: int = BATCH_SIZE, progress: bool = False, desc: str = "") -> np.ndarray:
    """Apply ``fn`` to float batches of ``images`` under no_grad and concatenate the results."""
    device = device_of(model)
    out = []
    with torch.no_grad():
        for _, chunk in batches(images, batch_size, progress, desc):
            out.append(fn(to_float(chunk, device)).detach().float().cpu().numpy())
    return np.concatenate(out)


@torch.no_grad()
def decode_images(model, z: torch.Tensor, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """(B, D) codes -> uint8 (B, C, H, W) images E[x|z], decoded in batches."""
    from ..imageio import to_uint8

    return np.concatenate([to_uint8(model.decode_mean(z[i:i + batch_size])) for i in range(0, z.shape[0], batch_size)])


def generator(model, seed: int | None) -> torch.Generator | None:
    """A generator on the model's device seeded with ``seed`` (None: the global stream)."""
    if seed is None:
        return None
    return torch.Generator(device=device_of(model)).manual_seed(int(seed))


def image_seed(image: np.ndarray, seed: int) -> int:
    """A seed from an image's bytes and ``seed``: the same image gets the same random numbers
    whichever batch or position it arrives in, so its scores are a function of the image alone."""
    digest = hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=8,
                             key=int(seed).to_bytes(8, "little", signed=False)).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def likelihood_view(images: np.ndarray, binarized: bool, seed: int = 0) -> np.ndarray:
    """The images as the model's likelihood should see them: uint8 (N, C, H, W).

    A run trained on binarised data (``binarized``, :attr:`vaelab.runs.Run.binarized`) models
    binary images, so grey levels are binarised the way its test set is — one Bernoulli sample,
    pixel = 255 with probability x/255 — but seeded per image (:func:`image_seed`), so an
    image's score does not depend on its neighbours in the batch. Binary inputs pass unchanged
    (their probabilities are 0 or 1). Other runs see the images as they are.
    """
    if not binarized:
        return images
    out = np.empty_like(images)
    for i, image in enumerate(images):
        g = torch.Generator().manual_seed(image_seed(image, seed))
        probs = torch.from_numpy(image).float().div_(255.0)
        out[i] = (torch.bernoulli(probs, generator=g) * 255).to(torch.uint8).numpy()
    return out


def load_inputs(model, sources: Iterable[str | os.PathLike]) -> tuple[np.ndarray, list[str], list[str]]:
    """Image files, folders or ``.npy`` arrays -> (uint8 (N, C, H, W) in the model's format, names, notices).

    ``notices`` name each kind of conversion once (resizing, grey↔RGB) so a caller can tell the user.
    """
    from ..imageio import load_images

    C, H, W = model.image_shape
    return load_images(list(sources), C, (H, W))


def run_images(run: Run, split: str = "val", limit: int | None = 2000, seed: int = 0) -> np.ndarray:
    """Grey-level images of the run's own data set: uint8 (N, C, H, W), at most ``limit`` (a seeded subset).

    Binarisation is switched off here on purpose: callers decide how the likelihood sees images
    (:func:`likelihood_view`), the same way for these images as for anyone else's.
    """
    from ..data import load_data

    data = load_data(dataclasses.replace(run.config.data, binarize="none"))
    images = data.split(split).images.numpy()
    if limit and images.shape[0] > limit:
        pick = np.sort(np.random.default_rng(seed).choice(images.shape[0], limit, replace=False))
        images = images[pick]
    return np.ascontiguousarray(images)


def inputs_or_run_images(run: Run, sources, count: int = 16, split: str = "test",
                         seed: int = 0) -> tuple[np.ndarray, list[str], list[str]]:
    """:func:`load_inputs` of ``sources``; with none given, ``count`` images of the run's ``split`` (noted)."""
    sources = list(sources)
    if sources:
        return load_inputs(run.model, sources)
    if count < 1:
        raise VaelabError(f"the number of images must be at least 1, got {count}")
    images = run_images(run, split, count, seed)
    notice = f"no images given: using {len(images)} images of the run's {split} split ({run.config.data.name})"
    return images, [f"{split}[{i}]" for i in range(len(images))], [notice]


def output_path(run: Run | None, given: str | os.PathLike | None, name: str) -> Path:
    """``given`` or, by default, RUN/apps/NAME (beside the run's own figures; ./apps/NAME without a run)."""
    if given is not None:
        return Path(given)
    return Path(run.dir if run is not None else ".") / "apps" / name


def file_stems(names: list[str]) -> list[str]:
    """Safe, unique file stems for input names: ``007-shoe`` for the 8th input ``…/shoe.png``."""
    import re

    stems = []
    for i, name in enumerate(names):
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        base = base.rsplit(".", 1)[0] if "." in base and not base.endswith("]") else base
        stems.append(f"{i:03d}-" + (re.sub(r"[^A-Za-z0-9_-]+", "_", base).strip("_")[:40] or "image"))
    return stems


def load_one(model, source) -> tuple[np.ndarray, str, list[str]]:
    """One image (uint8 (C, H, W)) from a file, or a ``.npy``/folder holding exactly one."""
    images, names, notices = load_inputs(model, [source])
    if len(images) != 1:
        raise VaelabError(f"holds {len(images)} images; give exactly one image here", source)
    return images[0], names[0], notices
