"""Distortion measures for codecs: PSNR and SSIM on uint8 images.

PSNR = 10·log₁₀(255² / MSE) per image (capped at ``PSNR_CAP`` for identical images).
SSIM is Wang, Bovik, Sheikh & Simoncelli (2004): local means, variances and covariance under
an 11×11 Gaussian window (σ = 1.5), constants C₁ = (0.01·255)², C₂ = (0.03·255)², averaged
over the window positions that fit inside the image (no padding) and over channels.
"""

from __future__ import annotations

import numpy as np

PSNR_CAP = 100.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"expected two (N, C, H, W) arrays of one shape, got {a.shape} and {b.shape}")
    return a.astype(np.float64), b.astype(np.float64)


def mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, C, H, W) pairs -> (N,) mean squared error in [0, 255]² units."""
    a, b = _pair(a, b)
    return ((a - b) ** 2).reshape(len(a), -1).mean(axis=1)


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, C, H, W) uint8 pairs -> (N,) PSNR in dB."""
    m = mse(a, b)
    with np.errstate(divide="ignore"):
        return np.minimum(10 * np.log10(255.0**2 / m), PSNR_CAP)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """(size,) normalised 1-D Gaussian; the 2-D window is its outer product."""
    t = np.arange(size) - (size - 1) / 2
    g = np.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def _filter(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """(..., H, W) -> (..., H−k+1, W−k+1): separable 'valid' correlation with g ⊗ g."""
    k = len(g)
    rows = sum(g[i] * x[..., i:x.shape[-2] - k + 1 + i, :] for i in range(k))
    return sum(g[j] * rows[..., :, j:x.shape[-1] - k + 1 + j] for j in range(k))


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, C, H, W) uint8 pairs -> (N,) mean SSIM (1 for identical images).

    Images smaller than the window use a window as large as the smaller side (odd).
    """
    a, b = _pair(a, b)
    size = min(SSIM_WINDOW, a.shape[-2] - (1 - a.shape[-2] % 2), a.shape[-1] - (1 - a.shape[-1] % 2))
    g = gaussian_window(size, SSIM_SIGMA * size / SSIM_WINDOW)
    mu_a, mu_b = _filter(a, g), _filter(b, g)
    var_a = _filter(a * a, g) - mu_a**2
    var_b = _filter(b * b, g) - mu_b**2
    cov = _filter(a * b, g) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + C1) * (2 * cov + C2)) / ((mu_a**2 + mu_b**2 + C1) * (var_a + var_b + C2))
    return s.reshape(len(a), -1).mean(axis=1)
