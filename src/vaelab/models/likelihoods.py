"""Decoder heads: turn the decoder's output tensor into p(x|z).

Bernoulli: the output is logits (BCE from logits, Ex. 2.1.2 made numerically stable).
Continuous Bernoulli: the same logits, with the normaliser that makes it a density of grey levels.
Gaussian:  the output passes a sigmoid to become the mean in [0, 1]; σ is fixed or learned
           per channel (a learned σ is a parameter of the model and saved with it).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..distributions import Bernoulli, ContinuousBernoulli, Gaussian


class BernoulliHead(nn.Module):
    kind = "bernoulli"

    def forward(self, x_hat: torch.Tensor) -> Bernoulli:
        return Bernoulli(x_hat)


class ContinuousBernoulliHead(nn.Module):
    """The output is logits of a continuous Bernoulli: a normalised density of grey levels."""

    kind = "continuous-bernoulli"

    def forward(self, x_hat: torch.Tensor) -> ContinuousBernoulli:
        return ContinuousBernoulli(x_hat)


class GaussianHead(nn.Module):
    kind = "gaussian"

    def __init__(self, channels: int, sigma: float, learn: bool):
        super().__init__()
        log_sigma = torch.full((channels, 1, 1), math.log(sigma))
        if learn:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def forward(self, x_hat: torch.Tensor) -> Gaussian:
        # Bounded below so a learned σ cannot collapse to zero on constant pixels.
        return Gaussian(torch.sigmoid(x_hat), self.log_sigma.clamp(min=math.log(1e-3)))


def make_head(kind: str, channels: int, sigma: float = 0.1, learn_sigma: bool = False) -> nn.Module:
    """The head of a ``likelihood`` setting: "bernoulli" or "gaussian" (σ fixed or learned)."""
    if kind == "bernoulli":
        return BernoulliHead()
    if kind == "continuous-bernoulli":
        return ContinuousBernoulliHead()
    return GaussianHead(channels, sigma, learn_sigma)


def head_for(config, channels: int) -> nn.Module:
    """The head a model config's ``likelihood``, ``sigma`` and ``learn_sigma`` settings describe."""
    return make_head(config.likelihood, channels, config.sigma, config.learn_sigma)
