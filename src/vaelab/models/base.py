"""What every vaelab model shares: the verb set of DESIGN.md §2.

``encode(x)``, ``decode(z)``, ``forward(x) -> Output``, ``sample(n)``, ``reconstruct(x)``.
Images go in as float tensors in [0, 1] shaped (B, C, H, W); ``sample`` and
``reconstruct`` return the likelihood's mean (pixel probabilities or Gaussian means).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import VaelabError
from .config import ModelConfig
from .likelihoods import make_head


class Model(nn.Module):
    """Base class: a backbone pair plus a likelihood head; subclasses choose the latent."""

    is_variational = False
    default_objective = "elbo"
    registry_name = "?"

    def __init__(self, config: ModelConfig, image_shape: tuple[int, int, int]):
        super().__init__()
        self.config = config
        self.image_shape = tuple(image_shape)
        self.latent_dim = config.latent_dim
        self.head = make_head(config, image_shape[0])

    # -- the verbs -------------------------------------------------------------------------
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) latent codes -> (B, C, H, W) likelihood parameters (logits or pre-sigmoid means)."""
        return self.decoder(z)

    def likelihood(self, x_hat: torch.Tensor):
        """p(x|z) from the decoder's output."""
        return self.head(x_hat)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, C, H, W) expected image E[x|z] in [0, 1]."""
        return self.likelihood(self.decode(z)).mean

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the encoder's most likely code: x ↦ E[x | z = mode q(z|x)]."""
        return self.decode_mean(self.encode_mean(x))

    def check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise VaelabError(
                f"this model takes images of shape {self.image_shape} (C, H, W); got {tuple(x.shape)}"
            )

    @property
    def objective(self) -> str:
        return self.config.objective or self.default_objective

    def extra_repr(self) -> str:
        return f"{self.registry_name}: image {self.image_shape}, latent {self.latent_dim}"
