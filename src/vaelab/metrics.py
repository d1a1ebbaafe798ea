"""Image quality, one definition each: MSE, PSNR and SSIM, for evaluation, apps, codec and web.

Every function takes two batches shaped (N, C, H, W) — torch tensors or numpy arrays, float
images on the [0, 1] scale or 8-bit images — and returns one number per image, of the kind it
was given (a tensor for tensors, an array for arrays), computed in float64.

- MSE is the thesis' loss (Ex. 2.1.2) divided by the number of pixel values, in the images'
  own units (8-bit images: [0, 255]² units); ``scale`` divides the differences first
  (``scale=255`` puts 8-bit images on the [0, 1] scale).
- PSNR = 10·log₁₀(R² / MSE) with R the data range (255 for integer images, 1 for floats),
  capped at ``PSNR_CAP_DB`` so that an exact copy has a number JSON can hold.
- SSIM is Wang, Bovik, Sheikh & Simoncelli (2004) with their standard settings: an 11×11
  Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03, statistics over the window's "valid"
  positions (no padding), the map averaged over positions and channels. Images smaller than
  11 pixels use the largest odd window that fits (:func:`ssim_window_size`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

PSNR_CAP_DB = 100.0  # an exact copy has infinite PSNR; JSON needs a number
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def _tensor(a) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a
    array = np.ascontiguousarray(a)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def _pair(a, b) -> tuple[torch.Tensor, torch.Tensor, bool, float]:
    """-> (a, b) as float64 tensors, whether to return numpy, and the data range of the inputs."""
    as_numpy = not isinstance(a, torch.Tensor)
    ta, tb = _tensor(a), _tensor(b)
    if ta.shape != tb.shape or ta.dim() != 4:
        raise ValueError(f"expected two (N, C, H, W) batches of one shape, got {tuple(ta.shape)} and {tuple(tb.shape)}")
    data_range = 1.0 if ta.is_floating_point() else 255.0
    return ta.double(), tb.to(ta.device).double(), as_numpy, data_range


def _out(values: torch.Tensor, as_numpy: bool):
    return values.cpu().numpy() if as_numpy else values


def _mean_square(a: torch.Tensor, b: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    return ((a - b) / scale).pow(2).flatten(start_dim=1).mean(dim=1)


def mse(a, b, scale: float = 1.0):
    """(N, C, H, W) pairs -> (N,) mean squared difference of (a − b)/scale."""
    a, b, as_numpy, _ = _pair(a, b)
    return _out(_mean_square(a, b, scale), as_numpy)


def psnr_from_mse(err, data_range: float = 1.0):
    """PSNR in dB from mean squared errors (tensor, array or number) in units where the range is ``data_range``."""
    as_numpy = not isinstance(err, torch.Tensor)
    t = torch.as_tensor(np.asarray(err, dtype=np.float64) if as_numpy else err, dtype=torch.float64)
    floor = data_range**2 * 10 ** (-PSNR_CAP_DB / 10)
    out = 10.0 * torch.log10(data_range**2 / t.clamp_min(floor))
    return (out.numpy() if out.dim() else float(out)) if as_numpy else out


def psnr(a, b, data_range: float | None = None):
    """(N, C, H, W) pairs -> (N,) PSNR in dB (R = 255 for integer images, 1 for floats), capped at 100 dB."""
    ta, tb, as_numpy, default_range = _pair(a, b)
    R = default_range if data_range is None else float(data_range)
    return _out(psnr_from_mse(_mean_square(ta, tb), R), as_numpy)


def ssim_window_size(height: int, width: int, window: int = SSIM_WINDOW) -> int:
    """The window SSIM uses on an H×W image: ``window``, or the largest odd size that fits."""
    size = min(window, height, width)
    return size if size % 2 else size - 1


def gaussian_window(size: int, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """(size,) normalised 1-D Gaussian weights centred on the middle tap (float64)."""
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    weights = torch.exp(-(offsets**2) / (2 * sigma**2))
    return weights / weights.sum()


def ssim(a, b, data_range: float | None = None, window: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA,
         k1: float = 0.01, k2: float = 0.03):
    """(N, C, H, W) pairs -> (N,) mean SSIM per image (Wang et al. 2004); 1 for identical images.

    Local means, variances and the covariance are Gaussian-weighted averages over the window
    (separable filtering, one group per channel); variances are the biased (weighted) ones, as
    in the reference implementation.
    """
    x, y, as_numpy, default_range = _pair(a, b)
    R = default_range if data_range is None else float(data_range)
    _, C, H, W = x.shape
    size = ssim_window_size(H, W, window)
    if size < 1:
        raise ValueError(f"images of {H}×{W} pixels are too small for SSIM")
    g = gaussian_window(size, sigma).to(x.device)
    rows = g.view(1, 1, size, 1).expand(C, 1, size, 1)
    cols = g.view(1, 1, 1, size).expand(C, 1, 1, size)

    def smooth(t: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, C, H−s+1, W−s+1)
        return F.conv2d(F.conv2d(t, rows, groups=C), cols, groups=C)

    mu_x, mu_y = smooth(x), smooth(y)
    var_x = smooth(x * x) - mu_x**2
    var_y = smooth(y * y) - mu_y**2
    cov_xy = smooth(x * y) - mu_x * mu_y
    c1, c2 = (k1 * R) ** 2, (k2 * R) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return _out(ssim_map.flatten(start_dim=1).mean(dim=1), as_numpy)


__all__ = ["PSNR_CAP_DB", "gaussian_window", "mse", "psnr", "psnr_from_mse", "ssim", "ssim_window_size"]
