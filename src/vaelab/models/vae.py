"""Variational autoencoders (thesis ch. 3; Kingma & Welling 2014).

The encoder outputs the mean and log-variance of q(z|x) = N(μ(x), diag σ²(x)); a latent is
drawn by reparameterisation and decoded into p(x|z). The prior is N(0, I). β (config) weighs
the KL term: β = 1 is the VAE, β ≠ 1 the β-VAE (Higgins et al. 2017).
"""

from __future__ import annotations

import torch

from ..distributions import DiagonalGaussian
from .base import Model
from .config import ModelConfig
from .conv import ConvDecoder, ConvEncoder, default_channels
from .mlp import MLPDecoder, MLPEncoder, default_hidden
from .outputs import Output
from .registry import register_model


class VAE(Model):
    is_variational = True

    def __init__(self, config: ModelConfig, image_shape, encoder, decoder):
        super().__init__(config, image_shape)
        self.encoder = encoder  # outputs 2·D numbers per image: μ and log σ²
        self.decoder = decoder

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """(B, C, H, W) -> q(z|x), a diagonal Gaussian over (B, D)."""
        mean, logvar = self.encoder(x).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x).mean

    def prior(self, batch: int = 1) -> DiagonalGaussian:
        """p(z) = N(0, I), broadcast to (batch, D)."""
        p = next(self.parameters())
        return DiagonalGaussian.standard((batch, self.latent_dim), device=p.device, dtype=torch.float32)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Output:
        posterior = self.encode(x)
        z = posterior.sample(generator)
        x_hat = self.decode(z)
        return Output(x_hat=x_hat, z=z, likelihood=self.likelihood(x_hat), posterior=posterior,
                      prior=self.prior(x.shape[0]))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """n images E[x|z] with z ~ N(0, T²·I) (temperature T scales the prior's spread)."""
        z = self.prior(n).sample(generator) * temperature
        return self.decode_mean(z)


def _vae_encoder_out(config: ModelConfig) -> int:
    return 2 * config.latent_dim


@register_model("mlp-vae")
class MLPVAE(VAE):
    """Dense VAE: the thesis' Encoder and Decoder with a Gaussian bottleneck."""

    @classmethod
    def from_config(cls, config: ModelConfig, image_shape):
        C, H, W = image_shape
        hidden = config.hidden or default_hidden(C * H * W)
        enc = MLPEncoder(image_shape, hidden, _vae_encoder_out(config), config.activation)
        dec = MLPDecoder(config.latent_dim, hidden, image_shape, config.activation)
        return cls(config, image_shape, enc, dec)


@register_model("conv-vae")
class ConvVAE(VAE):
    """Convolutional VAE with strided convolutions (the default model)."""

    @classmethod
    def from_config(cls, config: ModelConfig, image_shape):
        channels = config.hidden or default_channels(image_shape)
        enc = ConvEncoder(image_shape, channels, config.dense_width, _vae_encoder_out(config), config.activation)
        dec = ConvDecoder(config.latent_dim, channels, config.dense_width, image_shape, config.activation)
        return cls(config, image_shape, enc, dec)
