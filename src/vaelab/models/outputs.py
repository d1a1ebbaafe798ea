"""What a model's forward pass returns (diffusers-style output dataclass)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..distributions import DiagonalGaussian


@dataclass
class Output:
    """``forward(x)`` of any vaelab model: everything a loss needs, and no loss.

    x_hat:      decoder output, the likelihood's parameters (logits or means), (B, C, H, W)
                — or (K, B, C, H, W) when K latents per image were decoded
    z:          the latent code that was decoded, (B, D) or (K, B, D)
    likelihood: p(x|z) as a distribution object with ``log_prob(x) -> (B,)`` (or (K, B)) and ``.mean``
    posterior:  q(z|x) for VAEs (``None`` for plain autoencoders)
    prior:      p(z) for VAEs, a distribution over (B, D) (``None`` for plain autoencoders)
    rate_bits:  rate–distortion models: −log₂ P(code) per image, (B,), in bits
    lmbda:      rate–distortion models: the distortion weight λ of each image's quality level, (B,)
    discriminator_logits: FactorVAE: its discriminator's two logits (q(z), permuted) at ``z``, (…, 2)
    """

    x_hat: torch.Tensor
    z: torch.Tensor
    likelihood: Any
    posterior: DiagonalGaussian | None = None
    prior: Any = None
    rate_bits: torch.Tensor | None = None
    lmbda: torch.Tensor | None = None
    discriminator_logits: torch.Tensor | None = None


def decoded_output(model, posterior: DiagonalGaussian, z: torch.Tensor) -> Output:
    """Decode latents drawn from ``posterior`` — (B, D), or K per image (K, B, D) — into an Output.

    Uses only the verbs every VAE has (``decode``, ``likelihood``, ``prior``): the forward pass
    of a VAE, and the K-sample outputs the IWAE bound scores in training, evaluation and apps.
    """
    lead, D = z.shape[:-1], z.shape[-1]
    x_hat = model.decode(z.reshape(-1, D))
    x_hat = x_hat.view(*lead, *x_hat.shape[1:])                      # (…, B, C, H, W)
    return Output(x_hat=x_hat, z=z, likelihood=model.likelihood(x_hat), posterior=posterior,
                  prior=model.prior(posterior.mean.shape[0]))


@dataclass
class VQOutput(Output):
    """The Output of a VQ-VAE: also the code indices, the grids before and after quantisation and the prior's NLL per image."""

    indices: torch.Tensor | None = None       # (B, h, w) int64 nearest codes
    z_e: torch.Tensor | None = None           # (B, D, h, w) the encoder's grid before quantisation
    z_q: torch.Tensor | None = None           # (B, D, h, w) its nearest codebook vectors
    prior_nll: torch.Tensor | None = None     # (B,) −log p_prior(k) of the detached codes, nats


@dataclass
class LabelledOutput(Output):
    """A cond-vae's Output: besides the generic fields, the classifier's logits, the labels the
    latents were drawn under (the true ones in training), and q(z|x, y) over z alone."""

    class_logits: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    z_posterior: DiagonalGaussian | None = None
    # semi-supervised training (M2): which images came without a label (B,) bool, and those
    # images decoded under every label c — a LabelledOutput whose fields lead with (C, B_u)
    unlabelled: torch.Tensor | None = None
    per_label: "LabelledOutput | None" = None
