"""A rate–distortion autoencoder for compression (Ballé, Laparra & Simoncelli 2017).

The thesis' first application of autoencoders (ch. 2) is to send an image's small code
instead of the image. An autoencoder trained only to reconstruct does not know what a code
*costs*; this model does. Its encoder f_e maps an image to a latent y ∈ R^D, the code sent is
ŷ = Δ·round(y/Δ), and a learned factorised density p(y) = Π_d p_d(y_d) tells an entropy coder
how many bits each ŷ takes:

    rate(ŷ)  = −log₂ Π_d P_d(ŷ_d),   P_d(k·Δ_d) = F_d((k + ½)Δ_d) − F_d((k − ½)Δ_d)
    loss     = rate + λ · distortion,  distortion = mean squared error in [0, 255]² units

with F_d the cumulative distribution of p_d (a mixture of logistics per latent element).
Rounding has no gradient, so training replaces it by additive uniform noise ỹ = y + Δ·u,
u ~ U(−½, ½)^D, whose density is exactly P_d above evaluated at ỹ (Ballé et al. 2017, §2);
the decoder sees ỹ in training and ŷ at test time.

The latent is spatial: ``latent_channels`` maps on the grid of the last conv stage (7×7 for
28×28 images), flattened to D = channels·h·w numbers. Each element has its own density, so
the model learns that a border position is nearly always empty and costs almost nothing.
The transforms are Ballé's: strided 5×5 convolutions with GDN (generalised divisive
normalisation) in the encoder and its approximate inverse, IGDN, in the decoder.

Variable rate: one model serves a continuous range of qualities. Quality level ℓ ∈ [0, L−1]
has its own distortion weight λ_ℓ (``rd_lambdas``) and its own learned quantisation step
Δ_{ℓ,d} per latent element; between trained levels both are interpolated geometrically, and
training draws a level per image uniformly from the continuum. The encoder is shared, so y
— and the density p(y) — is the same at every quality: only the step changes (coarser
steps zero out more elements and cost fewer bits). The decoder is told the level (the two
interpolation weights, as constant extra input channels) so it can treat coarse codes
differently from fine ones.

With ``rd_context`` > 0 the factorised density is replaced by an autoregressive context model
over the latent grid (rd_context.py, Minnen et al. 2018): each position's elements are
predicted from the positions before it, and the same rate + λ·distortion trains it.

Rates are in **bits per image**, distortions in **[0, 255]² units** (PSNR = 10·log₁₀(255²/D)).
The model's ``forward`` returns the rate and each image's λ in its Output; the loss
(``losses.RateDistortion``) weighs them, and the codec codes with the model's entropy model
(rd_entropy.py), which uses the interpolation below, not a copy of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import option
from ..errors import VaelabError
from .base import Model
from .config import ModelConfig, hidden_option, likelihood_option, model_name
from .likelihoods import make_head
from .losses import RateDistortion
from .outputs import Output
from .rd_context import LIKELIHOOD_FLOOR, LatentContextModel, logistic_bin_probability
from .registry import register_model

MIXTURE_COMPONENTS = 4
INITIAL_STEP = 0.5        # Δ of the best quality level at initialisation
# The density and the steps are stored divided by this factor. Adam moves every parameter by
# about the learning rate per step whatever its gradient's size, so the 1,568 per-element
# densities (which must sharpen by several e-folds for unused elements) and the steps then
# adapt 10× faster than the networks, instead of lagging thousands of steps behind them.
PARAMETER_SPEED = 10.0


@dataclass
class RateDistortionConfig(ModelConfig):
    """``conv-rd``: the transforms, the latent grid, its density and the quality levels."""

    name: str = model_name("conv-rd")
    hidden: list[int] = hidden_option("channels of the stride-2 stages (default 64-64: 28 → 14 → 7)")
    latent_channels: int = option(32, "channels M of the spatial latent (on the grid of the last stage)",
                                  min=1, max=1024)
    likelihood: str = likelihood_option()
    rd_lambdas: list[float] = option([0.1, 0.3, 1.0, 3.0, 10.0], "distortion weights λ of loss = bits + λ·MSE "
                                     "(MSE in [0,255]² units), one per quality level", min=0.0, min_exclusive=True,
                                     max=1e9)
    rd_context: int = option(0, "hidden channels of an autoregressive context model over the latent grid "
                                "(Minnen et al. 2018); 0 = a factorised density", min=0, max=1024)
    rd_context_groups: int = option(1, "with rd_context: send each grid position's channels in this many groups, "
                                       "each predicted also from the groups sent before it at that position "
                                       "(channel context)", min=1, max=64)
    rd_straight_through: bool = option(False, "in training the decoder sees rounded codes (gradient passed "
                                              "straight through) while the rate sees noisy ones (Minnen & Singh 2020)")
    rd_residual: int = option(0, "residual blocks (two 3×3 convolutions) after each encoder stage and before each "
                                 "decoder stage", min=0, max=8)

    def describe(self) -> str:
        density = f"context model ({self.rd_context} channels" + (
            f", {self.rd_context_groups} channel groups)" if self.rd_context_groups > 1 else ")") \
            if self.rd_context else "factorised density"
        return (f"{self.name}, latent grid of {self.latent_channels} channels, {density}, "
                f"λ {', '.join(f'{v:g}' for v in self.rd_lambdas)}")

    def loss(self) -> RateDistortion:
        return RateDistortion()


class GDN(nn.Module):
    """Generalised divisive normalisation (Ballé et al. 2016): y_i = x_i / sqrt(β_i + Σ_j γ_ij x_j²).

    ``inverse=True`` multiplies instead (IGDN, the decoder's approximate inverse). β and γ
    are kept non-negative by squaring their parameters (β also bounded away from 0).
    """

    def __init__(self, channels: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        self.beta_root = nn.Parameter(torch.ones(channels))
        self.gamma_root = nn.Parameter(torch.sqrt(0.1 * torch.eye(channels) + 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        C = x.shape[1]
        beta = self.beta_root.pow(2) + 1e-6
        gamma = self.gamma_root.pow(2).view(C, C, 1, 1)
        norm = torch.sqrt(F.conv2d(x * x, gamma, beta))
        return x * norm if self.inverse else x / norm


class ResidualBlock(nn.Module):
    """x + conv3×3(leaky(conv3×3(leaky(x)))): depth for a stage without changing its size.

    The branch's last convolution starts at zero, so a new block is the identity and the
    network starts as the one without blocks (a randomly initialised branch once blew up a
    96-channel run at epoch 8: its rate jumped to the likelihood floor and never recovered).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(channels, channels, 3, padding=1),
                                  nn.LeakyReLU(0.2), nn.Conv2d(channels, channels, 3, padding=1))
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class RDEncoder(nn.Module):
    """(B, C, H, W) -> (B, M, h, w): 5×5 stride-2 convolutions with GDN, then a 3×3 to M channels."""

    def __init__(self, in_channels: int, channels: list[int], latent_channels: int, residual: int = 0):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for out in channels:
            layers += [nn.Conv2d(c, out, 5, stride=2, padding=2), GDN(out)]
            layers += [ResidualBlock(out) for _ in range(residual)]
            c = out
        layers.append(nn.Conv2d(c, latent_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channels-last lets oneDNN pick faster CPU kernels (about 20% per training step here)
        return self.net(x.contiguous(memory_format=torch.channels_last))


class RDDecoder(nn.Module):
    """(B, M + L, h, w) -> (B, C, H, W) pre-sigmoid means: a 3×3, then transposed 5×5 stride-2 with IGDN."""

    def __init__(self, in_channels: int, channels: list[int], image_shape, sizes: list[tuple[int, int]],
                 residual: int = 0):
        super().__init__()
        C = image_shape[0]
        outs = list(reversed(channels[:-1])) + [C]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels[-1], 3, padding=1), GDN(channels[-1], inverse=True)]
        c = channels[-1]
        for i, out in enumerate(outs):
            layers += [ResidualBlock(c) for _ in range(residual)]
            # stage i goes from sizes[-1-i] to sizes[-2-i]; output padding restores odd sizes
            (h_big, w_big), (h_small, w_small) = sizes[-2 - i], sizes[-1 - i]
            pad = (h_big - 2 * h_small + 1, w_big - 2 * w_small + 1)
            layers.append(nn.ConvTranspose2d(c, out, 5, stride=2, padding=2, output_padding=pad))
            if i < len(outs) - 1:
                layers.append(GDN(out, inverse=True))
            c = out
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.contiguous(memory_format=torch.channels_last)).contiguous()


class LogisticMixtureDensity(nn.Module):
    """p(y) = Π_d Σ_k π_dk · Logistic(y_d; μ_dk, s_dk): one small mixture per latent element.

    A logistic's CDF is a sigmoid, so bin probabilities F(b) − F(a) are two sigmoids: cheap in
    training, and reproducible bit for bit in float64 by the codec (apps/codec/density.py).
    """

    def __init__(self, dims: int, components: int = MIXTURE_COMPONENTS, init_scale: float = 1.0):
        super().__init__()
        # Stored divided by PARAMETER_SPEED (see there): the density moves that much faster.
        self.raw_logits = nn.Parameter(torch.zeros(dims, components))
        spread = torch.linspace(-1.0, 1.0, components) * init_scale
        self.raw_locs = nn.Parameter(spread.repeat(dims, 1) / PARAMETER_SPEED)
        self.raw_log_scales = nn.Parameter(torch.full((dims, components), math.log(init_scale) / PARAMETER_SPEED))

    @property
    def logits(self) -> torch.Tensor:
        return self.raw_logits * PARAMETER_SPEED

    @property
    def locs(self) -> torch.Tensor:
        return self.raw_locs * PARAMETER_SPEED

    @property
    def log_scales(self) -> torch.Tensor:
        return self.raw_log_scales * PARAMETER_SPEED

    def bin_probability(self, center: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
        """(B, D) centres and bin widths -> (B, D) P(center − width/2 < y ≤ center + width/2)."""
        per_component = logistic_bin_probability(center.unsqueeze(-1), width.unsqueeze(-1),   # (B, D, K)
                                                 self.locs, torch.exp(-self.log_scales))
        weights = torch.softmax(self.logits, dim=-1)                           # (D, K)
        return (per_component * weights).sum(-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, D) draws from the mixture (inverse CDF of the chosen logistic)."""
        D, _ = self.logits.shape
        probs = torch.softmax(self.logits, dim=-1)
        pick = torch.multinomial(probs, n, replacement=True, generator=generator)       # (D, n)
        loc = self.locs.gather(1, pick).T                                               # (n, D)
        scale = torch.exp(self.log_scales.gather(1, pick)).T
        u = torch.rand((n, D), generator=generator, device=loc.device).clamp(1e-6, 1 - 1e-6)
        return loc + scale * torch.log(u / (1 - u))

    def parameters_float64(self) -> dict[str, np.ndarray]:
        """The mixture's raw parameters as float64 arrays (D, K): what the entropy coder needs."""
        return {name: getattr(self, name).detach().cpu().double().numpy()
                for name in ("logits", "locs", "log_scales")}


def interpolate_levels(weights: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Σ_ℓ w_ℓ · table_ℓ for (B, L) level weights and a (L,) or (L, D) table -> (B,) or (B, D).

    Summed level by level in a fixed order with element-wise operations (no matrix product,
    whose summation order may change with threads or hardware): in float64 the codec's tables
    come out the same on every machine.
    """
    w = weights.reshape(*weights.shape, *([1] * (table.dim() - 1)))
    return sum(w[:, level] * table[level] for level in range(table.shape[0]))


def _level_lambdas(config: RateDistortionConfig) -> list[float]:
    lambdas = sorted(config.rd_lambdas)
    if not lambdas or len(set(lambdas)) != len(lambdas):
        raise VaelabError(f"rd_lambdas must hold one or more distinct λ values, got {config.rd_lambdas}")
    return lambdas


class RateDistortionAutoEncoder(Model):
    """Encoder → quantised latent under a learned density → decoder; trained on rate + λ·distortion.

    ``encode``/``decode`` work on the flattened latent (B, D), D = M·h·w.
    """

    is_variational = False
    config_tensors = ("lambdas",)   # set from rd_lambdas: a fine-tune (init_from) keeps its own

    def __init__(self, config: RateDistortionConfig, image_shape, encoder: nn.Module, decoder: nn.Module,
                 latent_grid: tuple[int, int, int]):
        super().__init__(config, image_shape, encoder, decoder, make_head(config.likelihood, image_shape[0]))
        lambdas = _level_lambdas(config)
        self.levels = len(lambdas)
        self.latent_grid = tuple(latent_grid)           # (M, h, w)
        self.latent_dim = math.prod(latent_grid)
        # The code's density: factorised (one learned distribution per element), or, with
        # ``rd_context`` > 0, predicted from the elements sent before (rd_context.py).
        if config.rd_context:
            self.context = LatentContextModel(self.latent_grid, self.levels, config.rd_context, PARAMETER_SPEED,
                                              config.rd_context_groups)
        else:
            self.density = LogisticMixtureDensity(self.latent_dim)
        self.register_buffer("lambdas", torch.tensor(lambdas, dtype=torch.float32))
        # Steps start at Δ ∝ λ^(−1/2) (at high rate MSE ∝ Δ², so this equalises the slopes).
        init = math.log(INITIAL_STEP) - 0.5 * torch.log(torch.tensor(lambdas) / max(lambdas))
        self.raw_log_steps = nn.Parameter(init[:, None].repeat(1, self.latent_dim) / PARAMETER_SPEED)

    @property
    def log_steps(self) -> torch.Tensor:
        """(L, D) log Δ per quality level and latent element."""
        return self.raw_log_steps * PARAMETER_SPEED

    # -- quality levels ------------------------------------------------------------------------
    def level_weights(self, level: torch.Tensor) -> torch.Tensor:
        """(B,) continuous levels in [0, L−1] -> (B, L) interpolation weights (two non-zero), in level's dtype."""
        L = self.levels
        level = level.clamp(0, L - 1)
        below = level.floor().clamp(max=max(L - 2, 0)).long()
        frac = (level - below).unsqueeze(1)
        weights = torch.zeros(level.shape[0], L, device=level.device, dtype=level.dtype)
        weights.scatter_(1, below.unsqueeze(1), 1 - frac)
        if L > 1:
            weights.scatter_add_(1, (below + 1).unsqueeze(1), frac)
        return weights

    def log_steps_at(self, weights: torch.Tensor) -> torch.Tensor:
        """(B, L) level weights -> (B, D) log Δ: the levels' log steps interpolated (geometric in Δ)."""
        return interpolate_levels(weights, self.log_steps.to(weights.dtype))

    def steps(self, weights: torch.Tensor) -> torch.Tensor:
        """(B, L) level weights -> (B, D) quantisation steps Δ (geometric interpolation)."""
        return torch.exp(self.log_steps_at(weights))

    def level_lambda(self, weights: torch.Tensor) -> torch.Tensor:
        """(B, L) level weights -> (B,) distortion weights λ (geometric interpolation), in the weights' dtype."""
        return torch.exp(interpolate_levels(weights, torch.log(self.lambdas.to(weights.dtype))))

    def _best_level(self, batch: int, device) -> torch.Tensor:
        return self.level_weights(torch.full((batch,), float(self.levels - 1), device=device))

    # -- the verbs ------------------------------------------------------------------------------
    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, D) continuous latent y (not yet quantised)."""
        return self.encoder(x).flatten(1)

    def _decode(self, z: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """(B, D) dequantised latent and (B, L) level weights (default: the best level) -> (B, C, H, W) logits."""
        B = z.shape[0]
        M, h, w = self.latent_grid
        if weights is None:
            weights = self._best_level(B, z.device)
        grid = z.reshape(B, M, h, w)
        if self.levels > 1:
            grid = torch.cat([grid, weights.to(z.dtype)[:, :, None, None].expand(B, self.levels, h, w)], dim=1)
        return self.decoder(grid)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                level: torch.Tensor | None = None) -> Output:
        """Encode, quantise at ``level`` ((B,) in [0, L−1]), decode; the Output carries rate and λ.

        With no ``level`` each image draws its own uniformly in [0, L−1], so training covers
        the whole range with one model. In training the code is y + Δ·u, u ~ U(−½, ½) (whose
        density is the rounded code's probability, Ballé et al. 2017) and, with
        ``rd_straight_through``, the decoder sees the rounded code with the gradient passed
        straight through; in eval mode the code is rounded, so the rate is what the entropy
        coder spends (within about a byte).
        """
        B = x.shape[0]
        if level is None:
            level = torch.rand(B, device=x.device, generator=generator) * (self.levels - 1)
        weights = self.level_weights(level)
        steps = self.steps(weights)
        y = self.encode(x)
        if self.training:
            code = y + steps * (torch.rand(y.shape, generator=generator, device=y.device, dtype=y.dtype) - 0.5)
        else:
            code = torch.round(y / steps) * steps
        rate = self.rate_bits(code, steps, weights)
        seen = code
        if self.training and self.config.rd_straight_through:
            # The decoder gets what it will get in the codec, the rounded code; rounding passes
            # gradients straight through in units of bins, so Δ still learns from the distortion
            # (its gradient is the rounding error, as in learned-step quantisation).
            bins = y / steps
            seen = (bins + (torch.round(bins) - bins).detach()) * steps
        x_hat = self.decode(seen, weights)
        return Output(x_hat=x_hat, z=code, likelihood=self.likelihood(x_hat), rate_bits=rate,
                      lmbda=self.level_lambda(weights))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Images through the rounded bottleneck at the best quality level."""
        weights = self._best_level(x.shape[0], x.device)
        steps = self.steps(weights)
        return self.decode_mean(torch.round(self.encode(x) / steps) * steps)

    @property
    def has_context(self) -> bool:
        """Whether the code's density is the autoregressive context model (``rd_context`` > 0)."""
        return hasattr(self, "context")

    @torch.no_grad()
    def sample_latents(self, n: int, generator: torch.Generator | None = None,
                       temperature: float = 1.0) -> torch.Tensor:
        """(n, D) latents drawn from the learned density (the context model at the best level), scaled by T about 0."""
        if self.has_context:
            z = self.context.sample(self._best_level(n, self.lambdas.device), generator)
        else:
            z = self.density.sample(n, generator)
        return z * temperature

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """n images decoded from latents drawn from the learned density (scaled by T about 0)."""
        return self.decode_mean(self.sample_latents(n, generator, temperature))

    def rate_bits(self, y: torch.Tensor, steps: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """(B, D) latents (noisy or quantised), steps and (B, L) level weights -> (B,) −log₂ P(ŷ) in bits.

        The level weights matter only to the context model (default: the best level).
        """
        if self.has_context:
            if weights is None:
                weights = self._best_level(y.shape[0], y.device)
            return self.context.bits(y, steps, weights)
        p = self.density.bin_probability(y, steps).clamp(min=LIKELIHOOD_FLOOR)
        return -torch.log2(p).sum(dim=1)

    def entropy_model(self):
        """The codec's coder for this model: its learned density and steps (rd_entropy.py)."""
        from .rd_entropy import ContextEntropyModel, FactorisedEntropyModel

        return ContextEntropyModel(self) if self.has_context else FactorisedEntropyModel(self)


@register_model("conv-rd", RateDistortionConfig)
class ConvRateDistortion(RateDistortionAutoEncoder):
    """GDN conv encoder/decoder around a spatial latent with a learned factorised or context density.

    ``hidden`` gives the channels of the stride-2 stages (default [64, 64]: 28 → 14 → 7),
    ``latent_channels`` the channels M of the latent grid (the latent has D = M·h·w elements).
    ``rd_context`` > 0 replaces the factorised density by the
    autoregressive context model with that many hidden channels (rd_context.py).
    """

    @classmethod
    def from_config(cls, config: RateDistortionConfig, image_shape):
        C, H, W = image_shape
        channels = config.hidden or [64, 64]
        sizes = [(H, W)]
        for _ in channels:  # a 5×5 stride-2 convolution with padding 2 maps n to ⌈n/2⌉
            sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
        heights, widths = zip(*sizes)
        levels = len(_level_lambdas(config))
        M = config.latent_channels
        enc = RDEncoder(C, channels, M, config.rd_residual)
        dec = RDDecoder(M + (levels if levels > 1 else 0), channels, image_shape, sizes, config.rd_residual)
        return cls(config, image_shape, enc, dec, (M, heights[-1], widths[-1]))
