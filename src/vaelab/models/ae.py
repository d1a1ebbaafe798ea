"""Plain autoencoders (Def. 2.1.7): x ↦ f_d(f_e(x)) with a deterministic bottleneck.

An autoencoder has no prior to sample from. So that ``sample`` still means something, the
model keeps a running mean and covariance of the codes it saw in training and samples from
that Gaussian ("ex-post density estimation", Ghosh et al. 2020); the buffers are saved with
the weights. The same Gaussian is what the codec codes an autoencoder's codes under.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import EncoderDecoder
from .config import (
    DecoderLikelihood,
    activation_option,
    dense_width_option,
    hidden_option,
    latent_dim_option,
    model_name,
)
from .conv import conv_backbones
from .losses import ELBO
from .mlp import mlp_backbones
from .outputs import Output
from .registry import register_model


@dataclass
class AEConfig(DecoderLikelihood):
    """``mlp-ae``: the thesis' dense Encoder and Decoder around a bottleneck."""

    name: str = model_name("mlp-ae")
    latent_dim: int = latent_dim_option()
    hidden: list[int] = hidden_option()
    activation: str = activation_option()

    def describe(self) -> str:
        return f"{self.name}, latent dimension {self.latent_dim}, {self.likelihood} likelihood"

    def loss(self) -> ELBO:
        """Reconstruction only: an autoencoder's ELBO has no KL term (Ex. 2.1.2's BCE/MSE, summed)."""
        return ELBO()


@dataclass
class ConvAEConfig(AEConfig):
    """``conv-ae``: strided convolutions around a bottleneck."""

    name: str = model_name("conv-ae")
    dense_width: int = dense_width_option()


class AutoEncoder(EncoderDecoder):
    """Encoder → code z = f_e(x) → decoder → p(x|z), with the training codes' Gaussian kept for sampling."""

    is_variational = False
    momentum = 0.01  # of the running code statistics

    def __init__(self, config: AEConfig, image_shape, encoder, decoder, head):
        super().__init__(config, image_shape, encoder, decoder, head)
        D = config.latent_dim
        self.register_buffer("code_mean", torch.zeros(D))
        self.register_buffer("code_cov", torch.eye(D))

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, D) codes f_e(x)."""
        return self.encoder(x)

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

    def latent_gaussian(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The Gaussian fitted to the training codes: (``code_mean`` (D,), ``code_cov`` (D, D))."""
        return self.code_mean.float(), self.code_cov.float()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """n images decoded from the Gaussian fitted to the training codes."""
        return self.decode_mean(self.sample_latents(n, generator, temperature))

    def entropy_model(self):
        """Codes under a Gaussian per dimension fitted to the training codes."""
        from .entropy_models import FittedGaussianEntropyModel

        return FittedGaussianEntropyModel(self)


@register_model("mlp-ae", AEConfig)
class MLPAutoEncoder(AutoEncoder):
    """Dense autoencoder: thesis Encoder → bottleneck → thesis Decoder."""

    backbones = staticmethod(mlp_backbones)


@register_model("conv-ae", ConvAEConfig)
class ConvAutoEncoder(AutoEncoder):
    """Convolutional autoencoder with strided convolutions."""

    backbones = staticmethod(conv_backbones)
