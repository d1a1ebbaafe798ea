"""The latent space of a VAE: KL per dimension and active units.

KL(q(z|x) ‖ p(z)) (Def. 3.1.1) splits into one term per latent dimension for diagonal
Gaussians; averaged over a data set it shows which dimensions carry information. A
dimension d is *active* (Burda et al. 2015, §5.2) when its posterior mean moves with the
input: A_d = Cov_x(E_{q(z|x)}[z_d]) > 0.01. Inactive dimensions have collapsed onto the
prior and the decoder ignores them.

:func:`principal_axes` projects codes on their principal components: the one PCA behind the
report's latent map and the explorer's.
"""

from __future__ import annotations

import numpy as np
import torch

ACTIVE_THRESHOLD = 0.01


def activity(posterior_means: torch.Tensor) -> torch.Tensor:
    """(N, D) posterior means over a data set -> (D,) A_d, their variance across inputs (ddof = 1)."""
    if posterior_means.shape[0] < 2:
        raise ValueError("activity needs the posterior means of at least two inputs")
    return posterior_means.double().var(dim=0, unbiased=True)


def active_units(posterior_means: torch.Tensor, threshold: float = ACTIVE_THRESHOLD) -> int:
    """Number of latent dimensions with A_d > ``threshold`` (Burda et al.'s criterion)."""
    return int((activity(posterior_means) > threshold).sum())


def principal_axes(codes: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) codes -> (their projection (N, k) on the top k principal axes, each axis' share of the variance (k,)).

    The axes are the top right-singular vectors of the centred codes; each axis' sign is fixed
    so that its largest-magnitude loading is positive, so the picture is the same on every run.
    """
    codes = np.asarray(codes, dtype=np.float64)
    centred = codes - codes.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:k]                                                   # (k, D)
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    axes = axes * signs[:, None]
    explained = (s[:k] ** 2) / max(float((s**2).sum()), 1e-12)
    return centred @ axes.T, explained


__all__ = ["ACTIVE_THRESHOLD", "active_units", "activity", "principal_axes"]
