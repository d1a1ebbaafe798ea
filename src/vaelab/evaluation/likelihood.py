"""Likelihood of test images: the ELBO and its parts, the importance-sampled bound, bits/dim.

For a VAE with prior p(z), decoder p(x|z) and encoder q(z|x) (thesis ch. 3), every
z_k ~ q(z|x) gives an importance weight w_k = p(x, z_k) / q(z_k|x), and

    log p(x)  ≥  log (1/K) Σ_k w_k  =: L_K        (Burda et al. 2015)

with L_1 the ELBO (the reconstruction term minus KL(q‖p), Def. 3.1.1), L_K non-decreasing
in K in expectation and L_K → log p(x) as K → ∞. ``iwae_nll`` evaluates −L_K for every
image with K up to many thousands in bounded memory: the K samples are decoded in chunks
of at most ``max_decodes`` latents and the chunks' log-sum-exps are accumulated.

Which probability the numbers are
---------------------------------
- Bernoulli decoder on binarised data (``data.binarize`` ≠ none; the evaluation splits are
  one fixed binary sample): P(x|z) is a probability mass, so −L_K bounds a true discrete
  negative log-likelihood, the number papers report for binarised MNIST-type data.
- Gaussian decoder: a density is not a probability, so evaluation uses the Gaussian's mass
  on each 8-bit pixel's bin of width 1/255 (end bins open; :func:`discretized_gaussian_log_prob`);
  the result is a discrete log-likelihood of the 8-bit image, comparable across models.
- Continuous Bernoulli decoder (Loaiza-Ganem & Cunningham 2019): a normalised density on
  [0, 1], scored like the Gaussian by its mass on each 8-bit bin.
- Bernoulli decoder on grey levels: the "likelihood" is the binary cross-entropy with grey
  targets, which is not normalised. The numbers are the training objective, not a bound on
  any log-likelihood, and the JSON says so.

bits/dim = nats / (C·H·W · ln 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..distributions import discretized_gaussian_log_prob
from ..models.base import device_of
from ..models.losses import log_weights
from ..models.outputs import decoded_output

LN2 = math.log(2.0)


def bits_per_dim(nats: torch.Tensor | float, image_shape: tuple[int, int, int]) -> torch.Tensor | float:
    """Nats per image -> bits per pixel value: nats / (C·H·W · ln 2)."""
    C, H, W = image_shape
    return nats / (C * H * W * LN2)


def likelihood_kind(model, binarized: bool) -> str:
    """Which probability ``model``'s numbers are on its run's data (see the module docstring).

    ``binarized``: whether the run models binarised images (``data.binarize`` ≠ none).
    ``"discrete-binary"``, ``"discretized-gaussian-8bit"``, ``"discretized-continuous-bernoulli-8bit"``
    or ``"bernoulli-on-grey"``.
    """
    kind = getattr(model.config, "likelihood", "bernoulli")
    if kind == "gaussian":
        return "discretized-gaussian-8bit"
    if kind == "continuous-bernoulli":
        return "discretized-continuous-bernoulli-8bit"
    return "discrete-binary" if binarized else "bernoulli-on-grey"


DISCRETIZATION_NOTES = {
    "discrete-binary": "Bernoulli likelihood on a fixed binarisation of the split: a true discrete log-likelihood",
    "discretized-gaussian-8bit": "Gaussian likelihood discretised to 8-bit bins of width 1/255 (end bins open): "
                                 "a true discrete log-likelihood of the 8-bit image",
    "bernoulli-on-grey": "Bernoulli likelihood on grey-level pixels is not normalised: these numbers are the "
                         "training objective, not bounds on a log-likelihood",
    "discretized-continuous-bernoulli-8bit": "continuous Bernoulli likelihood (a density on [0, 1]) scored by its "
                                             "mass on each pixel's 8-bit bin: a true discrete log-likelihood of the "
                                             "8-bit image",
}


def as_uint8_tensor(images) -> torch.Tensor:
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise TypeError(f"expected uint8 images shaped (N, C, H, W); got {images.dtype} {tuple(images.shape)}")
    return images


def default_max_decodes(device: torch.device | str, image_shape: tuple[int, int, int] = (1, 28, 28)) -> int:
    """Latent samples decoded per forward pass, scaled to the image size.

    At 28×28 a decoded latent costs about 85 KB of activations and temporaries (measured on
    CPU with the default conv VAE): 8,192 per pass ≈ 0.5 GiB on a CPU, 32,768 ≈ 3 GiB on a GPU.
    Larger images get proportionally fewer.
    """
    C, H, W = image_shape
    per_28x28 = 32768 if torch.device(device).type == "cuda" else 8192
    return max(64, int(per_28x28 * 784 / (C * H * W)))


def plan_chunks(n_images: int, k: int, max_decodes: int, batch_size: int) -> tuple[int, int]:
    """(images per batch, samples per chunk) with images × samples ≤ ``max_decodes``.

    Large K takes few images at a time and splits K itself when one image's K samples
    alone exceed the budget; small K packs many images into a pass.
    """
    images_per_batch = max(1, min(batch_size, n_images, max_decodes // max(k, 1)))
    samples_per_chunk = max(1, min(k, max_decodes // images_per_batch))
    return images_per_batch, samples_per_chunk


@dataclass
class IWAEResult:
    """Per-image results of :func:`iwae_bound`, float64 on the CPU, shape (N,)."""

    nll: torch.Tensor            # −L_K = −log (1/K) Σ_k w_k, nats
    mean_log_weight: torch.Tensor  # (1/K) Σ_k log w_k: a K-sample Monte Carlo ELBO (≤ L_K per image)
    k: int


def iwae_bound(model, images, k: int, *, batch_size: int = 1000, seed: int = 0,
               max_decodes: int | None = None, progress: Callable[[int], None] | None = None) -> IWAEResult:
    """The importance-weighted bound L_K for every image, in nats (Burda et al. 2015).

    The latents come from ``model.importance_proposal(x)`` (q(z|x); cond-vae's also draws the label,
    so that its bound is on log p(x)). ``images``: uint8 (N, C, H, W) (tensor or array), already
    binarised where the run binarises.
    ``k``: samples per image. ``batch_size`` caps the images per pass; ``max_decodes`` the
    latents decoded per forward pass (memory ∝ it; default by device and image size). The noise is drawn
    from one generator seeded by ``seed``: the same call gives the same numbers.
    ``progress(n)`` is called after every ``n`` finished images.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    images = as_uint8_tensor(images)
    device = device_of(model)
    max_decodes = max_decodes or default_max_decodes(device, tuple(images.shape[1:]))
    N = images.shape[0]
    images_per_batch, samples_per_chunk = plan_chunks(N, k, max_decodes, batch_size)
    generator = torch.Generator(device=device).manual_seed(seed)
    # A vaelab Model says what to sample from (Model.importance_proposal); any other object with
    # the VAE verbs (encode, decode, likelihood, prior) is bounded under its encoder's q(z|x).
    propose = getattr(model, "importance_proposal", model.encode)
    nll = torch.empty(N, dtype=torch.float64)
    mean_log_w = torch.empty(N, dtype=torch.float64)
    with torch.inference_mode():
        for start in range(0, N, images_per_batch):
            x = images[start:start + images_per_batch].to(device).float().div_(255.0)
            posterior = propose(x)
            B = x.shape[0]
            log_sum = torch.full((B,), -math.inf, dtype=torch.float64, device=device)
            total = torch.zeros(B, dtype=torch.float64, device=device)
            done = 0
            while done < k:
                n = min(samples_per_chunk, k - done)
                z = posterior.sample(generator, n=n)                                       # (n, B, D)
                log_w = log_weights(decoded_output(model, posterior, z), x, discrete=True).double()  # (n, B)
                log_sum = torch.logaddexp(log_sum, torch.logsumexp(log_w, dim=0))
                total += log_w.sum(dim=0)
                done += n
            nll[start:start + B] = -(log_sum - math.log(k)).cpu()
            mean_log_w[start:start + B] = (total / k).cpu()
            if progress is not None:
                progress(B)
    return IWAEResult(nll=nll, mean_log_weight=mean_log_w, k=k)


def iwae_nll(model, images_uint8, k: int, batch_size: int = 1000, seed: int = 0,
             max_decodes: int | None = None) -> torch.Tensor:
    """−log p(x) upper bound −L_K per image (N,) in nats, float64; see :func:`iwae_bound`.

    The function to benchmark: ``iwae_nll(vaelab.load(run), test_images_uint8, k=1000)``.
    """
    return iwae_bound(model, images_uint8, k, batch_size=batch_size, seed=seed, max_decodes=max_decodes).nll


__all__ = ["DISCRETIZATION_NOTES", "IWAEResult", "as_uint8_tensor", "bits_per_dim", "default_max_decodes",
           "discretized_gaussian_log_prob",
           "iwae_bound", "iwae_nll", "likelihood_kind", "plan_chunks"]
