"""Interpolation: the decoded path between two images' latent codes.

The endpoints are the posterior means μ(a) and μ(b) (for an autoencoder, the codes f_e(a),
f_e(b)), so the first and last frames are exactly the reconstructions of a and b. A straight
line (lerp) between two typical codes of a high-dimensional Gaussian passes through its
low-norm centre, where the prior puts little mass; ``slerp`` (White 2016, "Sampling generative
networks") turns the direction along the great circle and changes the length linearly, so every
point's norm lies between the endpoints' norms.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import VaelabError
from ..imageio import to_uint8
from .common import check_image, device_of, to_float


def linear_path(za: torch.Tensor, zb: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(D,), (D,), (T,) -> (T, D): (1 − t)·a + t·b."""
    return (1 - t)[:, None] * za + t[:, None] * zb


def spherical_path(za: torch.Tensor, zb: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(D,), (D,), (T,) -> (T, D): spherical interpolation of direction, linear of length.

    direction(t) = [sin((1−t)ω)·â + sin(tω)·b̂] / sin ω with cos ω = ⟨â, b̂⟩, and
    |z(t)| = (1−t)|a| + t|b|. Parallel codes keep their common direction; for opposite codes
    every half great circle is as short as any other, and we take the one through the
    coordinate axis least aligned with â.
    """
    na, nb = za.norm(), zb.norm()
    if na == 0 or nb == 0:
        # Only a zero code has no direction; the line from it keeps every norm between the endpoints'.
        # (A tiny nonzero one has a direction: the line between two tiny orthogonal codes would dip below both.)
        return linear_path(za, zb, t)
    ua, ub = za / na, zb / nb
    omega = torch.arccos(torch.clamp(ua @ ub, -1.0, 1.0))
    if torch.sin(omega) > 1e-6:
        direction = (torch.sin((1 - t) * omega)[:, None] * ua + torch.sin(t * omega)[:, None] * ub) / torch.sin(omega)
    elif ua @ ub > 0:
        direction = ua.expand(t.shape[0], -1)
    else:
        axis = torch.zeros_like(ua)
        axis[torch.argmin(ua.abs())] = 1.0
        perpendicular = axis - (axis @ ua) * ua
        perpendicular = perpendicular / perpendicular.norm()
        angle = t * torch.pi
        direction = torch.cos(angle)[:, None] * ua + torch.sin(angle)[:, None] * perpendicular
    return ((1 - t) * na + t * nb)[:, None] * direction


@torch.no_grad()
def interpolate_latents(model, a: np.ndarray, b: np.ndarray, steps: int = 10, slerp: bool = False) -> torch.Tensor:
    """Two uint8 (C, H, W) images -> (steps, D) codes from μ(a) to μ(b)."""
    if steps < 2:
        raise VaelabError(f"an interpolation needs at least 2 steps, got {steps}")
    a = check_image(model, a, "image A")
    b = check_image(model, b, "image B")
    z = model.encode_mean(to_float(np.stack([a, b]), device_of(model)))
    t = torch.linspace(0.0, 1.0, steps, device=z.device)
    path = spherical_path if slerp else linear_path
    return path(z[0], z[1], t)


@torch.no_grad()
def interpolate(model, a: np.ndarray, b: np.ndarray, steps: int = 10, slerp: bool = False) -> np.ndarray:
    """Decoded path between images ``a`` and ``b`` (each uint8 (C, H, W)): uint8 (steps, C, H, W)."""
    z = interpolate_latents(model, a, b, steps, slerp)
    return to_uint8(model.decode_mean(z))
