"""Plain autoencoders (Def. 2.1.7): x ↦ f_d(f_e(x)) with a deterministic bottleneck.

An autoencoder has no prior to sample from. So that ``sample`` still means something, the
model keeps a running mean and covariance of the codes it saw in training and samples from
that Gaussian ("ex-post density estimation", Ghosh et al. 2020); the buffers are saved with
the weights.
"""

from __future__ import annotations

import torch

from .base import Model
from .config import ModelConfig
from .conv import ConvDecoder, ConvEncoder, default_channels
from .mlp import MLPDecoder, MLPEncoder, default_hidden
from .outputs import Output
from .registry import register_model


class AutoEncoder(Model):
    is_variational = False
    momentum = 0.01  # of the running code statistics

    def __init__(self, config: ModelConfig, image_shape, encoder, decoder):
        super().__init__(config, image_shape)
        self.encoder = encoder
        self.decoder = decoder
        D = config.latent_dim
        self.register_buffer("code_mean", torch.zeros(D))
        self.register_buffer("code_cov", torch.eye(D))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, D) codes f_e(x)."""
        return self.encoder(x)

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Output:
        z = self.encode(x)
        if self.training:
            self._track_codes(z.detach().float())
        x_hat = self.decode(z)
        return Output(x_hat=x_hat, z=z, likelihood=self.likelihood(x_hat))

    @torch.no_grad()
    def _track_codes(self, z: torch.Tensor) -> None:
        if z.shape[0] < 2:
            return
        m = self.momentum
        self.code_mean.mul_(1 - m).add_(z.mean(0), alpha=m)
        self.code_cov.mul_(1 - m).add_(torch.cov(z.T).reshape_as(self.code_cov), alpha=m)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """n images decoded from the Gaussian fitted to the training codes."""
        D = self.latent_dim
        cov = self.code_cov.double() + 1e-6 * torch.eye(D, dtype=torch.float64, device=self.code_cov.device)
        chol = torch.linalg.cholesky(cov).to(self.code_mean.dtype)
        eps = torch.randn((n, D), generator=generator, device=self.code_mean.device)
        z = self.code_mean + temperature * eps @ chol.T
        return self.decode_mean(z)


@register_model("mlp-ae")
class MLPAutoEncoder(AutoEncoder):
    """Dense autoencoder: thesis Encoder → bottleneck → thesis Decoder."""

    @classmethod
    def from_config(cls, config: ModelConfig, image_shape):
        C, H, W = image_shape
        hidden = config.hidden or default_hidden(C * H * W)
        enc = MLPEncoder(image_shape, hidden, config.latent_dim, config.activation)
        dec = MLPDecoder(config.latent_dim, hidden, image_shape, config.activation)
        return cls(config, image_shape, enc, dec)


@register_model("conv-ae")
class ConvAutoEncoder(AutoEncoder):
    """Convolutional autoencoder with strided convolutions."""

    @classmethod
    def from_config(cls, config: ModelConfig, image_shape):
        channels = config.hidden or default_channels(image_shape)
        enc = ConvEncoder(image_shape, channels, config.dense_width, config.latent_dim, config.activation)
        dec = ConvDecoder(config.latent_dim, channels, config.dense_width, image_shape, config.activation)
        return cls(config, image_shape, enc, dec)
