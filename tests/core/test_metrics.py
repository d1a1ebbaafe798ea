"""vaelab.metrics — the one MSE, PSNR and SSIM of evaluation, apps, codec and web — against their
formulas, SSIM against a literal per-window loop, on float and on 8-bit images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaelab.metrics import mse, psnr, ssim, ssim_window_size


def _ssim_literal(x: np.ndarray, y: np.ndarray, window: int = 11, sigma: float = 1.5, data_range: float = 1.0) -> float:
    """Wang et al. (2004) written out: for every valid window position, Gaussian-weighted
    means, variances and covariance from a 2-D window built from its formula; average."""
    r = (window - 1) / 2
    w = np.array([[math.exp(-((i - r) ** 2 + (j - r) ** 2) / (2 * sigma**2)) for j in range(window)]
                  for i in range(window)])
    w /= w.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    C, H, W = x.shape
    for c in range(C):
        for top in range(H - window + 1):
            for left in range(W - window + 1):
                a = x[c, top:top + window, left:left + window]
                b = y[c, top:top + window, left:left + window]
                ma, mb = (w * a).sum(), (w * b).sum()
                va, vb = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum()
                cov = (w * (a - ma) * (b - mb)).sum()
                values.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 16, 13), (1, 8, 8)])
def test_ssim_agrees_with_a_literal_implementation(shape):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, *shape, generator=g)
    # Realistic pairs: a noisy copy, a blurred/shifted copy, and an unrelated image.
    y = torch.stack([(x[0] + 0.1 * torch.randn(shape, generator=g)).clamp(0, 1),
                     0.5 * x[1] + 0.5 * torch.roll(x[1], 1, dims=-1),
                     torch.rand(shape, generator=g)])
    got = ssim(x, y)
    window = ssim_window_size(shape[1], shape[2])
    for i in range(3):
        expected = _ssim_literal(x[i].double().numpy(), y[i].double().numpy(), window=window)
        assert math.isclose(float(got[i]), expected, rel_tol=1e-9, abs_tol=1e-12)


def test_ssim_properties():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 1, 20, 20, generator=g)
    y = torch.rand(4, 1, 20, 20, generator=g)
    assert torch.allclose(ssim(x, x), torch.ones(4, dtype=torch.float64))
    assert torch.allclose(ssim(x, y), ssim(y, x))
    assert torch.all(ssim(x, y) < 0.5)
    assert ssim_window_size(28, 28) == 11 and ssim_window_size(8, 8) == 7 and ssim_window_size(10, 30) == 9


def test_mse_and_psnr_follow_their_formulas():
    x = torch.zeros(2, 1, 4, 4)
    y = x.clone()
    y[0] += 0.1                                # every pixel off by 0.1: MSE 0.01, PSNR 20 dB
    y[1, 0, 0, 0] = 1.0                        # one pixel off by 1 of 16: MSE 1/16
    assert torch.allclose(mse(x, y), torch.tensor([0.01, 1 / 16], dtype=torch.float64))
    assert torch.allclose(psnr(x, y), torch.tensor([20.0, 10 * math.log10(16)], dtype=torch.float64))
    assert float(psnr(x, x)[0]) == 100.0       # capped, finite for JSON


def test_eight_bit_images_use_their_own_range_and_come_back_as_arrays():
    a = np.zeros((2, 1, 4, 4), np.uint8)
    b = a.copy()
    b[0] = 16                                  # MSE 256 in [0, 255]² units
    assert isinstance(psnr(a, b), np.ndarray)
    assert psnr(a, b)[0] == pytest.approx(10 * math.log10(255**2 / 256))
    assert psnr(a, b)[1] == 100.0
    assert mse(a, b)[0] == 256.0 and mse(a, b, scale=255.0)[0] == pytest.approx(256 / 255**2)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 1, 16, 14), dtype=np.uint8)
    y = np.clip(x.astype(int) + rng.integers(-40, 41, x.shape), 0, 255).astype(np.uint8)
    got = ssim(x, y)
    for n in range(2):
        expected = _ssim_literal(x[n].astype(float), y[n].astype(float), data_range=255.0)
        assert got[n] == pytest.approx(expected, rel=1e-9)


def test_psnr_from_mse_matches_psnr():
    from vaelab.metrics import psnr_from_mse

    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(3, 1, 6, 6, generator=g), torch.rand(3, 1, 6, 6, generator=g)
    assert torch.allclose(psnr_from_mse(mse(x, y)), psnr(x, y))
    assert psnr_from_mse(np.array([0.0, 0.01]))[1] == pytest.approx(20.0)
    assert psnr_from_mse(0.0) == 100.0
