"""PSNR and SSIM against their definitions, computed by brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vaelab.apps.codec import metrics


def test_psnr_known_values():
    a = np.zeros((2, 1, 4, 4), np.uint8)
    b = a.copy()
    b[0] = 16                       # MSE 256 -> 10·log10(255²/256)
    assert metrics.psnr(a, b)[0] == pytest.approx(10 * math.log10(255**2 / 256))
    assert metrics.psnr(a, b)[1] == metrics.PSNR_CAP


def _ssim_loop(x, y, size=11, sigma=1.5):
    """Wang et al. (2004), one window position at a time."""
    t = np.arange(size) - (size - 1) / 2
    w = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma**2))
    w /= w.sum()
    H, W = x.shape
    values = []
    for i in range(H - size + 1):
        for j in range(W - size + 1):
            px, py = x[i:i + size, j:j + size], y[i:i + size, j:j + size]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            values.append((2 * mx * my + metrics.C1) * (2 * cxy + metrics.C2)
                          / ((mx**2 + my**2 + metrics.C1) * (vx + vy + metrics.C2)))
    return float(np.mean(values))


def test_ssim_matches_the_windowed_definition():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 1, 16, 14), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    got = metrics.ssim(a, b)
    for n in range(2):
        assert got[n] == pytest.approx(_ssim_loop(a[n, 0].astype(float), b[n, 0].astype(float)), rel=1e-9)
    assert metrics.ssim(a, a) == pytest.approx([1.0, 1.0])
    assert np.all(got < 1)
