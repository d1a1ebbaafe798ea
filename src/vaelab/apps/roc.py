"""Detection metrics without scikit-learn: AUROC and AUPRC of anomaly scores.

The out-of-distribution images are the positive class and a higher score means "more
anomalous". AUROC is the Mann–Whitney statistic P(score_out > score_in) + ½·P(tie) (ties
get average ranks); AUPRC is the average precision Σₙ (Rₙ − Rₙ₋₁)·Pₙ over the distinct score
thresholds, the step-wise area that does not interpolate optimistically.
"""

from __future__ import annotations

import numpy as np

from ..errors import VaelabError


def _check(scores_in: np.ndarray, scores_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(scores_in, dtype=np.float64).ravel()
    b = np.asarray(scores_out, dtype=np.float64).ravel()
    if a.size == 0 or b.size == 0:
        raise VaelabError("AUROC and AUPRC need at least one in-distribution and one out-of-distribution image")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise VaelabError("some anomaly scores are not finite; check the model and the images")
    return a, b


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1…n, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_values)) + 1]
    ends = np.r_[starts[1:], values.size]
    ranks = np.empty(values.size, dtype=np.float64)
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = 0.5 * (s + 1 + e)
    return ranks


def auroc(scores_in: np.ndarray, scores_out: np.ndarray) -> float:
    """Area under the ROC curve with the out-of-distribution images as positives."""
    a, b = _check(scores_in, scores_out)
    ranks = average_ranks(np.concatenate([a, b]))
    n_in, n_out = a.size, b.size
    u = ranks[n_in:].sum() - n_out * (n_out + 1) / 2.0
    return float(u / (n_in * n_out))


def auprc(scores_in: np.ndarray, scores_out: np.ndarray) -> float:
    """Average precision with the out-of-distribution images as positives."""
    a, b = _check(scores_in, scores_out)
    scores = np.concatenate([a, b])
    positive = np.r_[np.zeros(a.size), np.ones(b.size)]
    order = np.argsort(-scores, kind="mergesort")
    scores, positive = scores[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]   # last index of each distinct score
    true_pos = np.cumsum(positive)[last]
    precision = true_pos / (last + 1)
    recall = true_pos / b.size
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
