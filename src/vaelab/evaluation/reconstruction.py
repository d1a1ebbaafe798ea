"""Reconstruction quality per image: MSE, PSNR and SSIM.

MSE is the thesis' loss (Ex. 2.1.2) divided by the number of pixel values, on the [0, 1]
scale; PSNR = 10·log10(L² / MSE) with data range L = 1. SSIM is the structural similarity
of Wang et al. (2004) with their standard settings: an 11×11 Gaussian window with σ = 1.5,
K1 = 0.01, K2 = 0.03, statistics over the window's "valid" positions (no padding), the map
averaged over positions and channels. Images smaller than 11 pixels use the largest odd
window that fits, and the JSON names the window used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PSNR_CAP_DB = 100.0  # an exact reconstruction has infinite PSNR; JSON needs a number


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) x2 in [0, 1] -> (B,) mean squared error per pixel value."""
    return (x.double() - y.double()).pow(2).flatten(start_dim=1).mean(dim=1)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """(B, C, H, W) x2 -> (B,) peak signal-to-noise ratio in dB, capped at 100 dB."""
    err = mse(x, y).clamp_min(data_range**2 * 10 ** (-PSNR_CAP_DB / 10))
    return 10.0 * torch.log10(data_range**2 / err)


def ssim_window_size(height: int, width: int, window: int = 11) -> int:
    """The window SSIM uses on an H×W image: ``window``, or the largest odd size that fits."""
    size = min(window, height, width)
    return size if size % 2 else size - 1


def gaussian_window(size: int, sigma: float = 1.5) -> torch.Tensor:
    """(size,) normalised 1-D Gaussian weights centred on the middle tap (float64)."""
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    weights = torch.exp(-(offsets**2) / (2 * sigma**2))
    return weights / weights.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """(B, C, H, W) x2 -> (B,) mean SSIM per image (Wang et al. 2004), computed in float64.

    Local means, variances and the covariance are Gaussian-weighted averages over the
    window (separable filtering, one group per channel); variances are the biased
    (weighted) ones, as in the reference implementation.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ssim needs two (B, C, H, W) tensors of one shape; got {tuple(x.shape)}, {tuple(y.shape)}")
    B, C, H, W = x.shape
    size = ssim_window_size(H, W, window)
    if size < 1:
        raise ValueError(f"images of {H}×{W} pixels are too small for SSIM")
    g = gaussian_window(size, sigma).to(x.device)
    rows = g.view(1, 1, size, 1).expand(C, 1, size, 1)
    cols = g.view(1, 1, 1, size).expand(C, 1, 1, size)

    def smooth(t: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H−s+1, W−s+1)
        return F.conv2d(F.conv2d(t, rows, groups=C), cols, groups=C)

    x, y = x.double(), y.double()
    mu_x, mu_y = smooth(x), smooth(y)
    var_x = smooth(x * x) - mu_x**2
    var_y = smooth(y * y) - mu_y**2
    cov_xy = smooth(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(start_dim=1).mean(dim=1)


__all__ = ["PSNR_CAP_DB", "gaussian_window", "mse", "psnr", "ssim", "ssim_window_size"]
