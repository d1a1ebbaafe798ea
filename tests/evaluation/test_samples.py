"""Fréchet distance against scipy's matrix square root and Gaussian closed forms;
precision/recall against a literal loop."""

from __future__ import annotations

import math

import numpy as np
import torch

from vaelab.evaluation.samples import frechet_distance, precision_recall


def _frechet_scipy(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.linalg import sqrtm

    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = sqrtm(ca @ cb).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * root))


def test_frechet_distance_matches_the_matrix_square_root_formula():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 8)) @ rng.standard_normal((8, 8))
    b = rng.standard_normal((400, 8)) @ rng.standard_normal((8, 8)) + 0.5
    got = frechet_distance(torch.from_numpy(a), torch.from_numpy(b))
    assert math.isclose(got, _frechet_scipy(a, b), rel_tol=1e-6)
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(a)) < 1e-6


def test_frechet_distance_of_gaussians_with_equal_covariance_is_the_squared_mean_shift():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200_000, 3, generator=g, dtype=torch.float64)
    shift = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    b = torch.randn(200_000, 3, generator=g, dtype=torch.float64) + shift
    assert math.isclose(frechet_distance(a, b), float(shift.pow(2).sum()), rel_tol=0.01)
    # Scaled covariance: FD = d·(σ1 − σ2)² for isotropic Gaussians with equal means.
    c = 3 * torch.randn(200_000, 3, generator=g, dtype=torch.float64)
    assert math.isclose(frechet_distance(a, c), 3 * (3 - 1) ** 2, rel_tol=0.02)


def _pr_literal(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    def radii(points):
        out = []
        for i, p in enumerate(points):
            d = sorted(np.linalg.norm(p - q) for j, q in enumerate(points) if j != i)
            out.append(d[k - 1])
        return out

    def coverage(queries, centres, r):
        return np.mean([any(np.linalg.norm(q - c) <= rc for c, rc in zip(centres, r)) for q in queries])

    return coverage(fake, real, radii(real)), coverage(real, fake, radii(fake))


def test_precision_recall_agree_with_a_literal_loop_and_their_extremes():
    rng = np.random.default_rng(1)
    real = rng.standard_normal((60, 3))
    fake = rng.standard_normal((50, 3)) * 0.5 + 0.8       # realistic but not covering
    got = precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k=3)
    expected = _pr_literal(real, fake, 3)
    assert got == expected
    assert got[0] > got[1]                                  # narrow samples: precise, low recall
    assert precision_recall(torch.from_numpy(real), torch.from_numpy(real), k=3) == (1.0, 1.0)
    assert precision_recall(torch.from_numpy(real), torch.from_numpy(real + 100.0), k=3) == (0.0, 0.0)
