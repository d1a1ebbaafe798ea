"""An autoregressive context model for the rate–distortion latent (Minnen, Ballé & Toderici 2018).

The factorised density of ``conv-rd`` gives each latent element one fixed distribution, so it
pays for every element of a shirt's code separately even though they are large together.
This model predicts each element from the ones already sent. The latent grid ŷ ∈ R^{M×h×w}
is sent position by position in raster order; all M channels of a position are sent together
(or, with ``groups`` > 1, in that many groups of channels, each also predicted from the groups
before it at the same position: channel context, after Minnen & Singh 2020) under

    p(ŷ) = Π_{positions p} Π_m P(ŷ_{m,p} | ŷ_{<p}, ℓ),
    P(ŷ | ·) = F((ŷ + Δ/2 − μ)/s) − F((ŷ − Δ/2 − μ)/s),   F the logistic CDF (a sigmoid)

with (μ, log s)_{·,p} = g(ŷ_{<p}, ℓ): a type-A masked 5×5 convolution over the grid (it sees
only positions before p), plus a learned vector per quality level ℓ, two 1×1 convolutions
with leaky ReLUs, and a learned offset per element (so a border position that is always empty
still costs almost nothing, as with the factorised density).

The codec must compute g identically on every machine, or decoding fails; floating-point
network outputs may differ between CPUs in the last bit. So the codec runs an exact integer
copy of g (``apps/codec/context.py``: weights and activations in fixed point, int64 matrix
products, whose results do not depend on summation order). The leaky ReLU's slope is 1/8 so
the integer copy applies it exactly with a shift. Training runs g in float32 (never in bf16:
the rate needs more digits than bf16 has), and the coder's fixed-point copy prices codes
within a fraction of a bit per image of it (tested).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import VaelabError
from .pixel import MaskedConv2d

LEAK = 0.125              # leaky-ReLU slope; a power of two so the integer copy is exact
LOG_SCALE_FLOOR = math.log(1e-3)
CONTEXT_KERNEL = 5        # each position sees two rows above and two columns either side
LIKELIHOOD_FLOOR = 1e-9


def logistic_bin_probability(center: torch.Tensor, width: torch.Tensor, loc: torch.Tensor,
                             inv_scale: torch.Tensor) -> torch.Tensor:
    """P(center − width/2 < y ≤ center + width/2) under Logistic(loc, 1/inv_scale), element-wise.

    A bin right of the centre is evaluated through 1 − F (the mirrored sigmoid): tail
    probabilities keep their digits instead of cancelling near 1.
    """
    t_up = (center + width / 2 - loc) * inv_scale
    t_lo = (center - width / 2 - loc) * inv_scale
    sign = -torch.sign(t_up + t_lo).detach()
    return torch.abs(torch.sigmoid(sign * t_up) - torch.sigmoid(sign * t_lo))


class LatentContextModel(nn.Module):
    """(μ, log s) of every latent element from the elements before it and the quality level."""

    def __init__(self, grid: tuple[int, int, int], levels: int, width: int, position_speed: float,
                 groups: int = 1):
        super().__init__()
        M, h, w = grid
        if groups < 1 or M % groups:
            raise VaelabError(f"rd_context_groups = {groups} must divide the latent's {M} channels")
        self.grid = (M, h, w)
        self.groups = groups
        self.position_speed = position_speed
        self.causal = MaskedConv2d(M, width, CONTEXT_KERNEL, include_centre=False)
        self.level = nn.Linear(levels, width, bias=False)
        self.mix = nn.Conv2d(width, width, 1)
        self.out = nn.Conv2d(width, 2 * M, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        # Per element offsets of (μ, log s), stored divided by position_speed so Adam moves
        # them as fast as the factorised density's parameters (see rd.PARAMETER_SPEED).
        self.raw_position = nn.Parameter(torch.zeros(2, M, h, w))
        # Channel context: group g ≥ 1 of a position is predicted also from groups < g there.
        # Each group's branch reads those channels (1×1) and the shared hidden layer, and adds
        # to the group's (μ, log s); its output starts at zero, so a model given groups starts
        # as the one without (which lets a trained run be fine-tuned into it).
        size = M // groups
        self.group_in = nn.ModuleList(nn.Conv2d(g * size, width, 1) for g in range(1, groups))
        self.group_hidden = nn.ModuleList(nn.Conv2d(width, width, 1, bias=False) for _ in range(1, groups))
        self.group_out = nn.ModuleList(nn.Conv2d(width, 2 * size, 1) for _ in range(1, groups))
        for out in self.group_out:
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)

    @property
    def position(self) -> torch.Tensor:
        """(2, M, h, w) per-element offsets of μ and log s."""
        return self.raw_position * self.position_speed

    def forward(self, grid: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, M, h, w) latents and (B, L) level weights -> μ, log s, each (B, M, h, w)."""
        M = self.grid[0]
        with torch.autocast(device_type=grid.device.type, enabled=False):
            dtype = self.raw_position.dtype      # float32 under any autocast
            grid, weights = grid.to(dtype), weights.to(dtype)
            a = F.leaky_relu(self.causal(grid) + self.level(weights)[:, :, None, None], LEAK)
            a = F.leaky_relu(self.mix(a), LEAK)
            out = self.out(a) + self.position.reshape(1, 2 * M, *self.grid[1:])
            loc, log_scale = out[:, :M], out[:, M:]
            if self.groups > 1:
                loc, log_scale = self._add_channel_context(grid, a, loc, log_scale)
        return loc, log_scale.clamp(min=LOG_SCALE_FLOOR)

    def _add_channel_context(self, grid, hidden, loc, log_scale):
        """Group g's (μ, log s) += branch_g(grid's groups < g at the same position, hidden)."""
        size = self.grid[0] // self.groups
        locs, log_scales = [loc[:, :size]], [log_scale[:, :size]]
        for g in range(1, self.groups):
            t = F.leaky_relu(self.group_in[g - 1](grid[:, :g * size]) + self.group_hidden[g - 1](hidden), LEAK)
            delta = self.group_out[g - 1](t)
            part = slice(g * size, (g + 1) * size)
            locs.append(loc[:, part] + delta[:, :size])
            log_scales.append(log_scale[:, part] + delta[:, size:])
        return torch.cat(locs, 1), torch.cat(log_scales, 1)

    def bits(self, y: torch.Tensor, steps: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """(B, D) latents (noisy or quantised), (B, D) steps, (B, L) weights -> (B,) −log₂ P in bits.

        The masked convolution sees only earlier positions, so evaluating every element at
        once on the whole grid gives the same numbers as the sequential decoder.
        """
        B = y.shape[0]
        grid = y.reshape(B, *self.grid)
        loc, log_scale = self.forward(grid, weights)
        p = logistic_bin_probability(grid.to(loc.dtype), steps.reshape(B, *self.grid).to(loc.dtype), loc,
                                     torch.exp(-log_scale))
        return -torch.log2(p.clamp(min=LIKELIHOOD_FLOOR)).flatten(1).sum(1)

    @torch.no_grad()
    def sample(self, weights: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, L) level weights -> (n, D) latents drawn position by position, group by group
        (ancestral sampling, in the order the codec sends them)."""
        n = weights.shape[0]
        M, h, w = self.grid
        size = M // self.groups
        grid = torch.zeros(n, M, h, w, device=weights.device)
        for i in range(h):
            for j in range(w):
                for g in range(self.groups):
                    part = slice(g * size, (g + 1) * size)
                    loc, log_scale = self.forward(grid, weights)
                    u = torch.rand((n, size), generator=generator, device=grid.device).clamp(1e-6, 1 - 1e-6)
                    grid[:, part, i, j] = (loc[:, part, i, j]
                                           + torch.exp(log_scale[:, part, i, j]) * torch.log(u / (1 - u)))
        return grid.flatten(1)
