"""Refinement: better codes for these very images, found at encoding time (Campos et al. 2019; Yang et al. 2020).

The encoder is amortised: one network guesses a good code for every image. The model then
gives each guess a price, rate + λ·distortion of its rounded code (its entropy model's
``pricer``: the objective it was trained on), and that price can be lowered image by image by
gradient descent on the code. The price of a rounded code is piecewise constant, so the descent
follows a smooth stand-in: stochastic Gumbel annealing (Yang et al. 2020), where each element
is a soft mix of the two integers around it, leaning to the nearer one, and the rate and
distortion are those of the mix. As the temperature falls the mix hardens into a rounding
that was chosen for its price rather than its nearness (4 % fewer bytes at 34 dB than the
uniform-noise proxy after 200 steps; docs/codec.md). The Gumbel noise comes from a fixed
seed, so a file is the same on every run. Only the encoder changes; the file format and the
decoder do not. Each image keeps its cheapest code seen (priced exactly, rounded), so
refining never makes an image worse.
"""

from __future__ import annotations

import math

import numpy as np

from ...models.base import device_of
from ...models.entropy_models import BATCH

REFINE_LR = 0.005  # Adam step of latent refinement, in quantisation bins
REFINE_SEED = 20170424  # of the Gumbel noise refinement draws its soft roundings with (any fixed value)
# Temperature of the soft rounding: held at its start for the first REFINE_HOLD of the steps,
# then lowered geometrically to its end, where the soft code is nearly the rounded one.
REFINE_TAU = (0.5, 0.1)
REFINE_HOLD = 0.3


def refine(coder, images: np.ndarray, y: np.ndarray, quality: float, iterations: int) -> np.ndarray:
    """(N, D) latents of uint8 ``images`` -> refined (N, D) latents, each image's cheapest code seen.

    ``coder`` is a model's entropy model that prices codes (``steps``, ``pricer``); any other
    refuses in one line.
    """
    import torch

    model = coder.model
    device = device_of(model)
    step_values = coder.steps(quality)
    out = np.empty_like(y)
    frozen = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for start in range(0, len(images), BATCH):
            x = torch.from_numpy(np.ascontiguousarray(images[start:start + BATCH])).float().to(device) / 255.0
            price = coder.pricer(x, quality)           # (B, D) codes in bins -> (B,) rate + λ·distortion
            # optimise u = y/Δ, so the learning rate is in quantisation bins
            u = torch.from_numpy(y[start:start + BATCH] / step_values).float().to(device).requires_grad_()
            optimizer = torch.optim.Adam([u], lr=REFINE_LR)
            noise = torch.Generator(device=device).manual_seed(REFINE_SEED + start)
            best_u, best = u.detach().clone(), torch.full((len(x),), float("inf"), device=device)
            for t in range(iterations + 1):
                with torch.no_grad():
                    exact = price(torch.round(u))
                    better = exact < best
                    best = torch.where(better, exact, best)
                    best_u[better] = u.detach()[better]
                if t == iterations:
                    break
                with torch.enable_grad():
                    proxy = price(soft_rounding(u, annealed_temperature(t, iterations), noise))
                    optimizer.zero_grad()
                    proxy.sum().backward()
                optimizer.step()
            out[start:start + BATCH] = (torch.round(best_u).double().cpu().numpy()) * step_values
    finally:
        for p, flag in zip(model.parameters(), frozen):
            p.requires_grad_(flag)
    return out


def annealed_temperature(step: int, steps: int) -> float:
    """REFINE_TAU[0] for the first REFINE_HOLD of the steps, then geometrically down to REFINE_TAU[1]."""
    hold = int(REFINE_HOLD * steps)
    if step < hold:
        return REFINE_TAU[0]
    rate = math.log(REFINE_TAU[0] / REFINE_TAU[1]) / max(steps - hold, 1)
    return REFINE_TAU[0] * math.exp(-rate * (step - hold))


def soft_rounding(u, tau: float, generator):
    """Stochastic Gumbel annealing's relaxed rounding of u (in bins) at temperature tau.

    Each element becomes ⌊u⌋ + a, a ∈ (0, 1) a Gumbel-softmax sample between rounding down
    (logit −atanh(r)/τ, r = u − ⌊u⌋ its distance) and up (−atanh(1 − r)/τ): the nearer integer
    is the likelier, an integer a whole bin away has probability 0, and a → {0, 1} as τ → 0.
    """
    import torch

    floor = torch.floor(u).detach()
    r = (u - floor).clamp(1e-5, 1 - 1e-5)
    logits = torch.stack([-torch.atanh(r), -torch.atanh(1 - r)], dim=-1) / tau
    uniform = torch.rand(logits.shape, generator=generator, device=u.device).clamp(1e-10, 1 - 1e-10)
    gumbel = -torch.log(-torch.log(uniform))
    return floor + torch.softmax((logits + gumbel) / tau, dim=-1)[..., 1]
