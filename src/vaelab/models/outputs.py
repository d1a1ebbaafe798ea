"""What a model's forward pass returns (diffusers-style output dataclass)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..distributions import DiagonalGaussian


@dataclass
class Output:
    """``forward(x)`` of any vaelab model.

    x_hat:      decoder output, the likelihood's parameters (logits or means), (B, C, H, W)
    z:          the latent code that was decoded, (B, D)
    likelihood: p(x|z) as a distribution object with ``log_prob(x) -> (B,)``
    posterior:  q(z|x) for VAEs (``None`` for plain autoencoders)
    prior:      p(z) for VAEs (``None`` for plain autoencoders)
    """

    x_hat: torch.Tensor
    z: torch.Tensor
    likelihood: Any
    posterior: DiagonalGaussian | None = None
    prior: Any = None
