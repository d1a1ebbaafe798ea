"""One pass over a split that gathers every per-image number that needs one encoding.

For each image: the ELBO's two terms (reconstruction −log p(x|z) with one z ~ q(z|x), and
the closed-form KL(q(z|x) ‖ p(z)), Def. 3.1.1), the KL of every latent dimension, the
posterior mean, and the reconstruction's MSE, PSNR and SSIM. The reconstruction is the
decoder's mean at the posterior mean, E[x | z = μ(x)], compared with the input itself (for
binarised runs, the binarised image the model was given).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .. import metrics
from ..distributions import discrete_log_prob
from ..models.base import device_of
from ..models.losses import kl_divergence, kl_per_dimension
from .likelihood import as_uint8_tensor


@dataclass
class ImagePassResult:
    """Per-image tensors on the CPU (float64 unless noted), N images, D latent dimensions."""

    reconstruction: torch.Tensor         # (N,) −log p(x|z), z ~ q(z|x) (AE: z = f_e(x)), nats
    kl: torch.Tensor | None              # (N,) KL(q‖p), nats; None for plain autoencoders
    kl_per_dim: torch.Tensor | None      # (N, D) KL per latent dimension; None for autoencoders
    posterior_means: torch.Tensor        # (N, D) float32: μ(x) (AE: the code f_e(x))
    mse: torch.Tensor                    # (N,)
    psnr: torch.Tensor                   # (N,) dB
    ssim: torch.Tensor                   # (N,)
    ssim_window: int

    @property
    def neg_elbo(self) -> torch.Tensor:
        """(N,) −ELBO = reconstruction + KL (for an AE: the reconstruction term alone)."""
        return self.reconstruction if self.kl is None else self.reconstruction + self.kl


def image_pass(model, images, batch_size: int = 500, seed: int = 0,
               progress: Callable[[int], None] | None = None) -> ImagePassResult:
    """Encode, sample and reconstruct every image of ``images`` (uint8 (N, C, H, W)) once."""
    images = as_uint8_tensor(images)
    device = device_of(model)
    generator = torch.Generator(device=device).manual_seed(seed)
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("rec", "kl", "kl_dim", "mean", "mse", "psnr", "ssim")}
    with torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            x = images[start:start + batch_size].to(device).float().div_(255.0)
            if model.is_variational:
                posterior = model.encode(x)
                z, means = posterior.sample(generator), posterior.mean
                prior = model.prior(x.shape[0])
                parts["kl_dim"].append(kl_per_dimension(posterior, prior, z).double().cpu())
                parts["kl"].append(kl_divergence(posterior, prior, z).double().cpu())
            else:
                z = means = model.encode(x)
            parts["rec"].append((-discrete_log_prob(model.likelihood(model.decode(z)), x)).double().cpu())
            x_rec = model.decode_mean(means)
            parts["mean"].append(means.float().cpu())
            parts["mse"].append(metrics.mse(x_rec, x).cpu())
            parts["psnr"].append(metrics.psnr(x_rec, x).cpu())
            parts["ssim"].append(metrics.ssim(x_rec, x).cpu())
            if progress is not None:
                progress(x.shape[0])
    cat = {k: torch.cat(v) if v else None for k, v in parts.items()}
    _, _, H, W = images.shape
    return ImagePassResult(reconstruction=cat["rec"], kl=cat["kl"], kl_per_dim=cat["kl_dim"],
                           posterior_means=cat["mean"], mse=cat["mse"], psnr=cat["psnr"], ssim=cat["ssim"],
                           ssim_window=metrics.ssim_window_size(H, W))


def latent_means(model, images, batch_size: int = 500) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, D) float32 posterior means μ(x) (AE: codes f_e(x))."""
    images = as_uint8_tensor(images)
    device = device_of(model)
    out = []
    with torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            x = images[start:start + batch_size].to(device).float().div_(255.0)
            out.append(model.encode_mean(x).float().cpu())
    return torch.cat(out)


__all__ = ["ImagePassResult", "image_pass", "latent_means"]
