"""Variational autoencoders (thesis ch. 3; Kingma & Welling 2014).

The encoder outputs the mean and log-variance of q(z|x) = N(μ(x), diag σ²(x)); a latent is
drawn by reparameterisation and decoded into p(x|z). The prior is N(0, I). The config's β
weighs the KL term of the ELBO loss: β = 1 is the VAE, β ≠ 1 the β-VAE (Higgins et al. 2017);
``objective = "iwae"`` trains on the importance-weighted bound instead (Burda et al. 2015).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import option
from ..distributions import DiagonalGaussian
from .ae import AEConfig
from .base import EncoderDecoder
from .config import dense_width_option, model_name
from .conv import conv_backbones
from .losses import ELBO, IWAE, BetaTCVAE, Loss
from .mlp import mlp_backbones
from .outputs import Output, decoded_output
from .priors import make_prior, prior_components_option, prior_option, standard_prior
from .registry import register_model


@dataclass
class VAEConfig(AEConfig):
    """``mlp-vae``: the thesis' dense networks with a Gaussian bottleneck, and its training objective."""

    name: str = model_name("mlp-vae")
    beta: float = option(1.0, "weight β of the KL term (elbo: 1 is the VAE, other values the β-VAE; tcvae: of the "
                              "total correlation alone)", min=0.0, max=1e6)
    objective: str = option("elbo", "training objective: elbo (β-weighted), iwae (K samples, Burda et al. 2015) or "
                                    "tcvae (β on the total correlation, Chen et al. 2018)",
                            choices=("elbo", "iwae", "tcvae"))
    iw_samples: int = option(1, "samples K per image for the iwae objective", min=1, max=4096)
    prior: str = prior_option()
    prior_components: int = prior_components_option()

    def describe(self) -> str:
        objective = {"iwae": f", IWAE with K = {self.iw_samples}", "tcvae": f", β-TCVAE with β = {self.beta:g}"}.get(
            self.objective, f", β = {self.beta:g}" if self.beta != 1 else "")
        prior = "" if self.prior == "standard" else f", {self.prior} prior with {self.prior_components} components"
        return super().describe() + objective + prior

    def loss(self) -> Loss:
        if self.objective == "iwae":
            return IWAE(self.iw_samples)
        return BetaTCVAE(self.beta) if self.objective == "tcvae" else ELBO(self.beta)


@dataclass
class ConvVAEConfig(VAEConfig):
    """``conv-vae``: strided convolutions with a Gaussian bottleneck (the default model)."""

    name: str = model_name("conv-vae")
    dense_width: int = dense_width_option()


class VAE(EncoderDecoder):
    """Encoder → q(z|x) = N(μ, diag σ²) → z by reparameterisation → decoder → p(x|z); prior N(0, I)."""

    is_variational = True

    def __init__(self, config, image_shape, encoder, decoder, head):
        super().__init__(config, image_shape, encoder, decoder, head)
        # None for the standard normal, which adds no parameters (older runs' weights still load)
        self.prior_net = make_prior(config, self.latent_dim, self.image_shape)

    @staticmethod
    def encoder_outputs(config: VAEConfig) -> int:
        """A VAE's encoder outputs μ and log σ²: 2·D numbers per image."""
        return 2 * config.latent_dim

    def _encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """(B, C, H, W) -> q(z|x), a diagonal Gaussian over (B, D)."""
        mean, logvar = self.encoder(x).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x).mean

    def prior(self, batch: int = 1):
        """p(z): N(0, I) broadcast to (batch, D), or the config's mixture prior (models/priors.py)."""
        if self.prior_net is None:
            return standard_prior(batch, self.latent_dim, self.device)
        return self.prior_net(self.encode)

    def latent_gaussian(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The prior as (mean (D,), covariance (D, D)): N(0, I), or the Gaussian matching a mixture's moments."""
        D = self.latent_dim
        if self.prior_net is None:
            return torch.zeros(D, device=self.device), torch.eye(D, device=self.device)
        with torch.no_grad():
            return self.prior(1).moments()

    @torch.no_grad()
    def sample_latents(self, n: int, generator: torch.Generator | None = None,
                       temperature: float = 1.0) -> torch.Tensor:
        """(n, D) draws from the prior; a temperature T < 1 pulls them towards its mean."""
        if self.prior_net is None:
            return super().sample_latents(n, generator, temperature)
        prior = self.prior(n)
        mean = prior.moments()[0]
        return mean + temperature * (prior.sample(generator, n) - mean)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, samples: int | None = None) -> Output:
        """Encode, draw one latent per image by reparameterisation (``samples`` = K: K per image), decode."""
        posterior = self.encode(x)
        return decoded_output(self, posterior, posterior.sample(generator, n=samples))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """n images E[x|z] with z from the prior (N(0, T²·I): temperature T scales its spread)."""
        if self.prior_net is not None:
            return self.decode_mean(self.sample_latents(n, generator, temperature))
        z = self.prior(n).sample(generator) * temperature
        return self.decode_mean(z)

    def entropy_model(self):
        """Codes the posterior means under the discretised prior N(0, I) (thesis ch. 3: the prior is the code's model)."""
        from .entropy_models import GaussianPriorEntropyModel

        return GaussianPriorEntropyModel(self)


@register_model("mlp-vae", VAEConfig)
class MLPVAE(VAE):
    """Dense VAE: the thesis' Encoder and Decoder with a Gaussian bottleneck."""

    backbones = staticmethod(mlp_backbones)


@register_model("conv-vae", ConvVAEConfig)
class ConvVAE(VAE):
    """Convolutional VAE with strided convolutions (the default model)."""

    backbones = staticmethod(conv_backbones)
