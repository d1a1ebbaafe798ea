"""The rate–distortion model's entropy models: its learned density and steps, in the codec.

Quality q ∈ [1, L] is the model's continuous level ℓ = q − 1. The level weights, the steps Δ
and λ come from the model's own methods (``level_weights``, ``log_steps_at``, ``level_lambda``)
evaluated in float64; only the final exponential is numpy's, because the tables must be the
same on every machine that decodes, and the codec's tables have always been built from
numpy's float64 ``exp`` (torch's may differ from it in the last bit). The factorised density's
probabilities are the model's logistic mixtures in float64 (coding/density.py); the context
model is coded with its exact fixed-point twin (rd_context_exact.py).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..coding.density import CodingTables, FactorisedDensity, coding_tables
from ..errors import VaelabError
from .entropy_models import NetworkEntropyModel
from .losses import distortion


class FactorisedEntropyModel(NetworkEntropyModel):
    """``conv-rd`` with a factorised density: one learned logistic mixture per latent element."""

    name = "rate-distortion"

    def __init__(self, model):
        super().__init__(model)
        self.quality_range = (1.0, float(model.levels))
        self.default_quality = float(model.levels)
        if not model.has_context:
            self._density = FactorisedDensity("logistic-mixture", model.density.parameters_float64())

    def level_weights(self, quality: float) -> np.ndarray:
        """Quality 1..L -> (L,) float64 interpolation weights (the model's ``level_weights``)."""
        import torch

        level = torch.tensor([float(quality) - 1.0], dtype=torch.float64)
        return self.model.level_weights(level)[0].cpu().numpy()

    def _weights64(self, quality: float):
        import torch

        return torch.from_numpy(self.level_weights(quality))[None]

    def steps(self, quality: float) -> np.ndarray:
        """(D,) float64 quantisation steps at this quality (the model's geometric interpolation)."""
        import torch

        with torch.no_grad():
            log_steps = self.model.log_steps_at(self._weights64(quality).to(self.model.raw_log_steps.device))
        return np.exp(log_steps[0].cpu().numpy())

    def distortion_weight(self, quality: float) -> float:
        """λ at this quality (the model's ``level_lambda``, in float64)."""
        import torch

        with torch.no_grad():
            return float(self.model.level_lambda(self._weights64(quality).to(self.model.lambdas.device))[0])

    def tables(self, quality: float) -> CodingTables:
        return coding_tables(self._density, self.steps(quality))

    def _decode_mean(self, z, quality: float):
        import torch

        w = torch.from_numpy(self.level_weights(quality)).to(z.device, torch.float32)
        return self.model.likelihood(self.model.decode(z, w.expand(z.shape[0], -1))).mean

    def pricer(self, x, quality: float) -> Callable:
        """For images ``x`` (B, C, H, W) in [0, 1]: a function of codes u in bins (B, D) -> (B,)
        price rate + λ·distortion, the very objective the model was trained on (losses.py)."""
        import torch

        model = self.model
        B = x.shape[0]
        steps = torch.from_numpy(self.steps(quality)).float().to(x.device).expand(B, -1)
        weights = torch.from_numpy(self.level_weights(quality)).float().to(x.device).expand(B, -1)
        lam = self.distortion_weight(quality)

        def price(code: torch.Tensor) -> torch.Tensor:
            y = code * steps
            mean = model.likelihood(model.decode(y, weights)).mean
            return model.rate_bits(y, steps, weights) + lam * distortion(mean, x)

        return price


class ContextEntropyModel(FactorisedEntropyModel):
    """``conv-rd`` with a context model: the grid is coded position by position (rd_context_exact.py)."""

    name = "rate-distortion-context"

    def __init__(self, model):
        from .rd_context_exact import IntegerContextNet

        super().__init__(model)
        self._net = IntegerContextNet(model.context)

    def tables(self, quality: float) -> CodingTables:
        raise VaelabError("a context model has no fixed tables: each position's come from the positions before it")

    def compress_latents(self, y: np.ndarray, quality: float,
                         progress: Callable[[int], None] | None = None) -> list[bytes]:
        from . import rd_context_exact

        return rd_context_exact.encode(self._net, y, self.steps(quality), self.level_weights(quality), progress)

    def decompress_latents(self, payloads: list[bytes], quality: float,
                           progress: Callable[[int], None] | None = None) -> np.ndarray:
        from . import rd_context_exact

        return rd_context_exact.decode(self._net, payloads, self.steps(quality), self.level_weights(quality), progress)
