"""FactorVAE (Kim & Mnih 2018, "Disentangling by Factorising"): the conv VAE with a penalty on the
total correlation of its aggregate posterior, estimated by a discriminator.

The loss is reconstruction + KL + γ·TC (models/losses.py, :class:`FactorVAELoss`). TC =
KL(q(z) ‖ Π_d q(z_d)) has no closed form; the density-ratio trick estimates it with an MLP
D(z) trained to tell samples of q(z) from samples whose dimensions were shuffled across the
batch (``permute_dims``): TC ≈ E[logit₀ − logit₁]. The discriminator is a submodule, so the
weights file and checkpoint carry it, but it is the model's *auxiliary* parameter set: the
main optimiser never sees it, the loss' own Adam trains it, and sampling, encoding and the
codec never use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.func import functional_call

from ..config import option
from .ae import AEConfig
from .config import dense_width_option, latent_dim_option, model_name
from .losses import FactorVAELoss
from .outputs import Output
from .priors import prior_components_option, prior_option
from .registry import register_model
from .vae import ConvVAE


@dataclass
class FactorVAEConfig(AEConfig):
    """``factor-vae``: the conv VAE's settings, γ, and the discriminator's (Kim & Mnih 2018)."""

    name: str = model_name("factor-vae")
    latent_dim: int = latent_dim_option(10)
    dense_width: int = dense_width_option()
    prior: str = prior_option()
    prior_components: int = prior_components_option()
    gamma: float = option(6.4, "weight γ of the total correlation, estimated by the discriminator (FactorVAE)",
                          min=0.0, max=1e6)
    discriminator_hidden: list[int] = option([1000] * 6, "hidden widths of the discriminator MLP over the latents "
                                                         "(the paper's: six layers of 1000)", min=1, max=65536)
    discriminator_lr: float = option(1e-4, "learning rate of the discriminator's own Adam (betas 0.5, 0.9)",
                                     min=0.0, max=1.0, min_exclusive=True)

    def describe(self) -> str:
        prior = "" if self.prior == "standard" else f", {self.prior} prior with {self.prior_components} components"
        return super().describe() + f", FactorVAE with γ = {self.gamma:g}" + prior

    def loss(self) -> FactorVAELoss:
        return FactorVAELoss(self.gamma, self.discriminator_lr)


class Discriminator(nn.Module):
    """D(z): an MLP with leaky ReLUs (slope 0.2, as in the paper) from (…, D) latents to 2 logits,
    class 0 "drawn from q(z)", class 1 "drawn from Π_d q(z_d)"."""

    def __init__(self, latent_dim: int, hidden: list[int]):
        super().__init__()
        layers: list[nn.Module] = []
        width = latent_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers.append(nn.Linear(width, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)

    def frozen(self, z: torch.Tensor) -> torch.Tensor:
        """The logits with the weights held as constants: the VAE's loss differentiates through D to z
        only, so its backward pass neither spends time on nor leaves gradients in the discriminator."""
        weights = {name: p.detach() for name, p in self.named_parameters()}
        return functional_call(self, weights, (z,))


@register_model("factor-vae", FactorVAEConfig)
class FactorVAE(ConvVAE):
    """FactorVAE: the conv VAE with its total correlation penalised through a discriminator (Kim & Mnih 2018)."""

    def __init__(self, config: FactorVAEConfig, image_shape, encoder, decoder, head):
        super().__init__(config, image_shape, encoder, decoder, head)
        # registered after the VAE's modules, so the main parameters keep the conv VAE's order
        self.discriminator = Discriminator(config.latent_dim, list(config.discriminator_hidden))

    def auxiliary_parameters(self) -> list[nn.Parameter]:
        """The discriminator's weights: trained by the loss' own Adam, never by the main optimiser."""
        return list(self.discriminator.parameters())

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, samples: int | None = None) -> Output:
        """The VAE's forward pass, plus the discriminator's logits at the latent the TC term scores."""
        output = super().forward(x, generator, samples)
        output.discriminator_logits = self.discriminator.frozen(output.z)
        return output
