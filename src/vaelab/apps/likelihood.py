"""How likely a VAE finds each image, in bits: the numbers behind the anomaly scores.

- ``nll``: −log₂ of the importance-weighted bound (Burda et al. 2015) with K samples,
  log p(x) ≥ log (1/K) Σ_k p(x, z_k)/q(z_k|x), z_k ~ q(z|x); an upper bound on the negative
  log-likelihood that tightens as K grows.
- ``elbo``: −log₂ of the evidence lower bound, E_q[log p(x|z)] − KL(q(z|x) ‖ p(z))
  (Def. 3.1.1) with the reconstruction term averaged over the same K samples.
- ``regret``: the likelihood regret of Xiao et al. (2020): how much the ELBO of one image
  improves when its posterior is re-fitted to that image alone. The paper fine-tunes a copy of
  the encoder per image; we optimise the image's posterior parameters (μ, log σ²) directly —
  the cheaper variant its follow-ups use. It measures the same thing (how far the amortised
  encoder is from the best posterior for this image), and since Adam acts element-wise and the
  batch loss is a sum over images, a whole batch is re-fitted at once, each image independently.

Pixel likelihoods are of the 8-bit data: a Bernoulli decoder's log-probability as is (binary
images, or the cross-entropy of grey levels), a Gaussian decoder's discretised to the 256
levels (``Gaussian.discretized_log_prob``), so the bits are comparable with a compressor's.

Every random number is drawn from a generator seeded by the image's bytes
(:func:`vaelab.apps.common.image_seed`), so an image's score does not depend on the batch it
is scored in.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from ..distributions import DiagonalGaussian, discrete_log_prob
from ..models.base import device_of
from ..models.losses import kl_divergence, log_weights
from ..models.outputs import decoded_output
from .common import BATCH_SIZE, batches, image_seed, require_refittable, require_variational, to_float

LN2 = math.log(2.0)


def per_image_normal(images: np.ndarray, shape: tuple[int, ...], seed: int, device) -> torch.Tensor:
    """Standard normal noise (*shape, B, D) with image b's slice drawn from its own seeded generator."""
    noise = [torch.randn(shape, generator=torch.Generator().manual_seed(image_seed(image, seed)))
             for image in images]
    return torch.stack(noise, dim=-2).to(device)   # (*shape[:-1], B, D)


def _log_weights(model, x: torch.Tensor, posterior: DiagonalGaussian, eps: torch.Tensor) -> torch.Tensor:
    """(K, B) log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x), z_k the posterior's reparameterisation of ε_k (K, B, D)."""
    z = posterior.reparameterise(eps)                              # (K, B, D)
    return log_weights(decoded_output(model, posterior, z), x, discrete=True)


def _elbo(model, x: torch.Tensor, posterior: DiagonalGaussian, eps: torch.Tensor) -> torch.Tensor:
    """(B,) ELBO in nats: reconstruction averaged over the S samples ε (S, B, D), closed-form KL."""
    output = decoded_output(model, posterior, posterior.reparameterise(eps))   # S latents per image
    return discrete_log_prob(output.likelihood, x).mean(dim=0) - kl_divergence(posterior, output.prior, output.z)


def likelihood_bits(model, images: np.ndarray, samples: int = 32, seed: int = 0, *,
                    batch_size: int = BATCH_SIZE, progress: bool = False) -> dict[str, np.ndarray]:
    """uint8 (N, C, H, W) -> {"nll": (N,), "elbo": (N,)} in bits per image (negative bounds; lower = more likely).

    ``images`` are taken as the likelihood sees them (see :func:`vaelab.apps.common.likelihood_view`).
    """
    require_variational(model, "a likelihood")
    device = device_of(model)
    nll, neg_elbo = [], []
    with torch.no_grad():
        for _, chunk in batches(images, max(1, batch_size // 4), progress, "likelihood"):
            x = to_float(chunk, device)
            posterior = model.encode(x)
            eps = per_image_normal(chunk, (samples, model.latent_dim), seed, device)
            log_w = _log_weights(model, x, posterior, eps)                      # (K, B)
            nll.append(-(torch.logsumexp(log_w, dim=0) - math.log(samples)) / LN2)
            neg_elbo.append(-log_w.mean(dim=0) / LN2)
    return {"nll": torch.cat(nll).cpu().double().numpy(), "elbo": torch.cat(neg_elbo).cpu().double().numpy()}


@contextlib.contextmanager
def _frozen(model):
    """Model parameters without gradients for the block: only the posterior is optimised."""
    flags = [p.requires_grad for p in model.parameters()]
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


def likelihood_regret_bits(model, images: np.ndarray, steps: int = 100, lr: float = 0.05, samples: int = 16,
                           seed: int = 0, *, batch_size: int = BATCH_SIZE, progress: bool = False) -> np.ndarray:
    """uint8 (N, C, H, W) -> (N,) likelihood regret in bits: ELBO(x; q*) − ELBO(x; q(z|x)) ≥ 0.

    q* is the posterior after ``steps`` Adam steps (learning rate ``lr``, one fresh sample per
    step) on this image's ELBO, starting from the encoder's q(z|x). Both ELBOs use the same
    ``samples`` noise draws (common random numbers), so the difference is not swamped by Monte
    Carlo noise. If the re-fit did not help, the regret is 0.
    """
    require_variational(model, "the likelihood regret")
    require_refittable(model, "the likelihood regret")
    device = device_of(model)
    D = model.latent_dim
    out = []
    # Gradients are needed even when a caller scores under torch.inference_mode() or no_grad().
    with _frozen(model), torch.inference_mode(False), torch.enable_grad():
        for _, chunk in batches(images, batch_size, progress, "likelihood regret"):
            x = to_float(chunk, device)
            noise = per_image_normal(chunk, (samples + steps, D), seed, device)    # (samples + steps, B, D)
            eval_eps, train_eps = noise[:samples], noise[samples:]
            with torch.no_grad():
                start = model.encode(x)
                before = _elbo(model, x, start, eval_eps)
            mean = start.mean.detach().clone().requires_grad_(True)
            logvar = start.logvar.detach().clone().requires_grad_(True)
            optimizer = torch.optim.Adam([mean, logvar], lr=lr)
            for t in range(steps):
                optimizer.zero_grad(set_to_none=True)
                loss = -_elbo(model, x, DiagonalGaussian(mean, logvar), train_eps[t:t + 1]).sum()
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                after = _elbo(model, x, DiagonalGaussian(mean, logvar), eval_eps)
            out.append(((after - before).clamp_min(0.0) / LN2).cpu().double())
    return torch.cat(out).numpy()
