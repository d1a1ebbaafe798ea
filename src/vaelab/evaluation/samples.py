"""Sample quality: Fréchet distance and precision/recall between real and generated images.

Both compare sets of feature vectors (the feature network of :mod:`.feature_net`):

- Fréchet distance (Heusel et al. 2017): fit a Gaussian to each set and take the squared
  2-Wasserstein distance between them,
  FD = ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2 (Σ_r^½ Σ_g Σ_r^½)^½).
  (Tr((Σ_r Σ_g)^½) = Tr((Σ_r^½ Σ_g Σ_r^½)^½): the symmetric form needs only eigenvalues.)
- Precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union of balls
  around its points, with radius the distance to the k-th nearest neighbour in the same set
  (k = 3). Precision is the fraction of generated points inside the real manifold (are the
  samples realistic?); recall the fraction of real points inside the generated manifold (do
  the samples cover the data?).
"""

from __future__ import annotations

import torch

PR_K = 3


def _sqrt_psd(m: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix through its eigenvalues."""
    values, vectors = torch.linalg.eigh(m)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(real: torch.Tensor, generated: torch.Tensor) -> float:
    """(N, F), (M, F) feature sets -> the Fréchet distance of their Gaussian fits (float64)."""
    real, generated = real.double(), generated.double()
    mu_r, mu_g = real.mean(0), generated.mean(0)
    cov_r, cov_g = torch.cov(real.T), torch.cov(generated.T)
    root_r = _sqrt_psd(cov_r)
    cross = torch.linalg.eigvalsh(root_r @ cov_g @ root_r).clamp_min(0).sqrt().sum()
    value = (mu_r - mu_g).pow(2).sum() + cov_r.trace() + cov_g.trace() - 2 * cross
    return float(value.clamp_min(0))


def _kth_neighbour_radius(points: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """(N, F) -> (N,) distance from each point to its k-th nearest other point."""
    radii = []
    for start in range(0, points.shape[0], chunk):
        d = torch.cdist(points[start:start + chunk], points)       # (chunk, N)
        # The smallest distance is the point to itself (0); the k-th neighbour is index k.
        radii.append(d.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def _inside_fraction(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> float:
    inside = 0
    for start in range(0, queries.shape[0], chunk):
        d = torch.cdist(queries[start:start + chunk], centres)      # (chunk, N)
        inside += int((d <= radii[None, :]).any(dim=1).sum())
    return inside / max(queries.shape[0], 1)


def precision_recall(real: torch.Tensor, generated: torch.Tensor, k: int = PR_K) -> tuple[float, float]:
    """(N, F), (M, F) -> (precision, recall) with k-NN manifolds (Kynkäänniemi et al. 2019)."""
    real, generated = real.double(), generated.double()
    if min(real.shape[0], generated.shape[0]) <= k:
        raise ValueError(f"precision/recall with k = {k} needs more than {k} points in each set")
    precision = _inside_fraction(generated, real, _kth_neighbour_radius(real, k))
    recall = _inside_fraction(real, generated, _kth_neighbour_radius(generated, k))
    return precision, recall


def generate(model, n: int, *, binary: bool, seed: int = 0, batch_size: int = 1000) -> torch.Tensor:
    """n images from the model as float (n, C, H, W) in [0, 1].

    ``binary``: draw x ~ p(x|z) pixel by pixel (Bernoulli), to compare with a binarised
    test set; otherwise the decoder's mean E[x|z], comparable with grey-level images.
    """
    from ..models.base import device_of

    latent_noise = torch.Generator(device=device_of(model)).manual_seed(seed)
    pixel_noise = torch.Generator().manual_seed(seed + 1)
    out = []
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            means = model.sample(m, generator=latent_noise).float().cpu()
            out.append(torch.bernoulli(means, generator=pixel_noise) if binary else means)
    return torch.cat(out)


__all__ = ["PR_K", "frechet_distance", "generate", "precision_recall"]
