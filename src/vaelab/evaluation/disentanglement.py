"""Disentanglement against known generative factors: MIG and DCI.

Both take codes (N, D) — the posterior means — and the true factors (N, F) as integer
levels (the ``shapes`` data set: shape, scale, orientation, x, y).

- MIG, the mutual information gap (Chen et al. 2018): discretise every code dimension into
  20 equal-width bins, estimate I(z_d; v_f) from counts, and for every factor take the gap
  between the most and the second most informative dimension, divided by H(v_f):
  MIG = mean_f (I(z_(1); v_f) − I(z_(2); v_f)) / H(v_f) ∈ [0, 1]. One dimension per factor
  gives 1; codes that know nothing of the factors give ≈ 0.
- DCI (Eastwood & Williams 2018) from an importance matrix R (D × F): one random forest per
  factor predicts it from all codes, R[d, f] the forest's (impurity) importance of
  dimension d. Disentanglement: each dimension's importance should go to one factor
  (1 − entropy of its row, base F, weighted by the row's share of importance);
  completeness: each factor should be captured by one dimension (1 − entropy of its
  column, base D, averaged); informativeness: the forests' accuracy on held-out codes.
  (disentanglement_lib uses gradient-boosted trees; random forests, one of the two
  regressors of the original paper, are much faster on two CPU cores.)
"""

from __future__ import annotations

import numpy as np

MIG_BINS = 20
FOREST_TREES = 50
FOREST_DEPTH = 12


def discretize(codes: np.ndarray, bins: int = MIG_BINS) -> np.ndarray:
    """(N, D) floats -> (N, D) integer bin indices, ``bins`` equal-width bins per dimension."""
    codes = np.asarray(codes, dtype=np.float64)
    out = np.empty(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, d], bins=bins)
        out[:, d] = np.digitize(codes[:, d], edges[1:-1])   # 0 … bins−1, the top edge included
    return out


def discrete_entropy(values: np.ndarray) -> float:
    """H(v) in nats of the empirical distribution of integer values (N,)."""
    _, counts = np.unique(values, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def mutual_information_matrix(discrete_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(N, D), (N, F) integer arrays -> (D, F) empirical mutual information in nats."""
    from sklearn.metrics import mutual_info_score

    D, F = discrete_codes.shape[1], factors.shape[1]
    return np.array([[mutual_info_score(factors[:, f], discrete_codes[:, d]) for f in range(F)] for d in range(D)])


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = MIG_BINS) -> tuple[float, list[float | None]]:
    """(N, D) codes, (N, F) integer factors -> (MIG, per-factor normalised gaps).

    A factor that never varies (H = 0) has no gap (``None``) and is left out of the mean.
    """
    factors = np.asarray(factors)
    if codes.shape[1] < 2:
        raise ValueError("MIG needs at least two code dimensions (it is a gap between the best two)")
    mi = mutual_information_matrix(discretize(codes, bins), factors)
    top_two = -np.sort(-mi, axis=0)[:2]                        # (2, F)
    gaps: list[float | None] = []
    for f in range(factors.shape[1]):
        h = discrete_entropy(factors[:, f])
        gaps.append(None if h <= 0 else float((top_two[0, f] - top_two[1, f]) / h))
    known = [g for g in gaps if g is not None]
    return (float(np.mean(known)) if known else 0.0), gaps


def _entropy_rows(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy (log base ``base``) of every row of a row-stochastic matrix."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1) / np.log(base)


def dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """(D, F) non-negative importance matrix -> (disentanglement, completeness)."""
    R = np.abs(np.asarray(importance, dtype=np.float64)) + 1e-12
    D, F = R.shape
    per_code = 1.0 - _entropy_rows(R / R.sum(axis=1, keepdims=True), F) if F > 1 else np.ones(D)
    weights = R.sum(axis=1) / R.sum()
    per_factor = 1.0 - _entropy_rows((R / R.sum(axis=0, keepdims=True)).T, D) if D > 1 else np.ones(F)
    return float((weights * per_code).sum()), float(per_factor.mean())


def dci(train_codes: np.ndarray, train_factors: np.ndarray, test_codes: np.ndarray, test_factors: np.ndarray,
        seed: int = 0) -> dict:
    """DCI scores with random-forest importances: fit on train codes, informativeness on test.

    Returns ``{"disentanglement", "completeness", "informativeness", "importance"}``
    (importance as a nested list D × F).
    """
    from sklearn.ensemble import RandomForestClassifier

    D, F = train_codes.shape[1], train_factors.shape[1]
    importance = np.zeros((D, F))
    accuracies = []
    for f in range(F):
        # Every split may choose among all dimensions (max_features=None): with the usual √D
        # random subset, trees are forced onto uninformative dimensions and smear importance.
        forest = RandomForestClassifier(n_estimators=FOREST_TREES, max_depth=FOREST_DEPTH, max_features=None,
                                        min_samples_leaf=5, random_state=seed, n_jobs=1)
        forest.fit(train_codes, train_factors[:, f])
        importance[:, f] = forest.feature_importances_
        accuracies.append(forest.score(test_codes, test_factors[:, f]))
    disentanglement, completeness = dci_from_importance(importance)
    return {"disentanglement": disentanglement, "completeness": completeness,
            "informativeness": float(np.mean(accuracies)), "informativeness_per_factor": [float(a) for a in accuracies],
            "importance": importance.round(6).tolist()}


__all__ = ["FOREST_DEPTH", "FOREST_TREES", "MIG_BINS", "dci", "dci_from_importance", "discrete_entropy", "discretize",
           "mig", "mutual_information_matrix"]
