"""Factorised latent densities in float64, and the probability tables the entropy coder uses.

Encoder and decoder must build *identical* tables, or decoding fails. So tables are never
computed by the networks: they come from a handful of parameters, in float64 on the CPU,
with element-wise operations only (no matrix products, whose summation order can depend on
threads or hardware), and ``constriction`` then quantises them to integers deterministically.

A density is p(y) = Π_d p_d(y_d) with cumulative distribution F_d. Coding y_d with step Δ_d
sends the integer k = round(y_d / Δ_d) with probability

    P_d(k) = F_d((k + ½)Δ_d) − F_d((k − ½)Δ_d)                         (discretised density)

over a finite support [k_lo, k_hi] that leaves out less than TAIL_MASS on each side; a value
beyond it is clamped to the edge (the encoder does that, so decoding stays exact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from ..errors import VaelabError

TAIL_MASS = 1e-9          # probability mass left outside the support, per side
MAX_SUPPORT = 1 << 15     # symbols per dimension; finer steps than this are refused
_TAIL_Z = {  # distance from the centre, in scale units, beyond which a tail holds < TAIL_MASS
    "normal": float(-special.ndtri(TAIL_MASS)),
    "logistic": math.log((1 - TAIL_MASS) / TAIL_MASS),
    "laplace": -math.log(2 * TAIL_MASS),
}


def _symmetric_interval_mass(cdf, t_lo: np.ndarray, t_up: np.ndarray) -> np.ndarray:
    """F(t_up) − F(t_lo) for a CDF symmetric about 0; right of the centre as (1−F)(t_lo) − (1−F)(t_up)
    with 1 − F(t) = F(−t), so tail probabilities keep their digits."""
    right = (t_lo + t_up) > 0
    return np.where(right, cdf(-t_lo) - cdf(-t_up), cdf(t_up) - cdf(t_lo))


@dataclass
class FactorisedDensity:
    """p(y) = Π_d p_d(y_d) over D dimensions; all parameters float64.

    family:  "normal", "laplace" or "logistic" (params loc, scale: (D,)), or
             "logistic-mixture" (logits, locs, log_scales: (D, K)).
    """

    family: str
    params: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        self.params = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in self.params.items()}
        if self.family == "logistic-mixture":
            logits = self.params["logits"]
            # softmax with the max subtracted (element-wise; same numbers everywhere)
            w = np.exp(logits - logits.max(axis=1, keepdims=True))
            self._weights = w / w.sum(axis=1, keepdims=True)
            self._scales = np.exp(self.params["log_scales"])
        elif self.family in ("normal", "laplace", "logistic"):
            if np.any(self.params["scale"] <= 0):
                raise ValueError("scales must be positive")
        else:
            raise ValueError(f"unknown density family {self.family!r}")
        for name, value in self.params.items():
            if not np.all(np.isfinite(value)):
                raise VaelabError(f"the model's latent density has non-finite {name}; retrain the model")

    @property
    def dims(self) -> int:
        return next(iter(self.params.values())).shape[0]

    # -- probabilities of intervals ----------------------------------------------------------------
    def interval_mass(self, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """(D, M) interval ends -> (D, M) P(lower < y_d ≤ upper), accurate in both tails.

        For an interval right of a component's centre, 1 − F is used on both ends (the
        survival function), so tail probabilities keep their digits instead of vanishing in
        a difference of two numbers near 1.
        """
        if self.family == "logistic-mixture":
            locs, scales = self.params["locs"][:, None, :], self._scales[:, None, :]   # (D, 1, K)
            t_lo = (lower[..., None] - locs) / scales                                   # (D, M, K)
            t_up = (upper[..., None] - locs) / scales
            mass = _symmetric_interval_mass(special.expit, t_lo, t_up)
            total = np.zeros(mass.shape[:2])
            for k in range(mass.shape[2]):  # a fixed summation order, unlike a contraction routine
                total += mass[:, :, k] * self._weights[:, None, k]
            return total
        loc, scale = self.params["loc"][:, None], self.params["scale"][:, None]
        t_lo, t_up = (lower - loc) / scale, (upper - loc) / scale
        if self.family == "normal":
            return _symmetric_interval_mass(special.ndtr, t_lo, t_up)
        if self.family == "logistic":
            return _symmetric_interval_mass(special.expit, t_lo, t_up)
        right = (t_lo + t_up) > 0
        # Laplace: F(t) = ½e^t for t < 0, 1 − ½e^−t for t ≥ 0
        cdf = lambda t: np.where(t < 0, 0.5 * np.exp(np.minimum(t, 0)), 1 - 0.5 * np.exp(-np.maximum(t, 0)))  # noqa: E731
        sf = lambda t: np.where(t > 0, 0.5 * np.exp(-np.maximum(t, 0)), 1 - 0.5 * np.exp(np.minimum(t, 0)))  # noqa: E731
        return np.where(right, sf(t_lo) - sf(t_up), cdf(t_up) - cdf(t_lo))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(D,), (D,): an interval per dimension outside which each tail holds < TAIL_MASS."""
        if self.family == "logistic-mixture":
            z = _TAIL_Z["logistic"]
            locs, scales = self.params["locs"], self._scales
            return (locs - z * scales).min(axis=1), (locs + z * scales).max(axis=1)
        z = _TAIL_Z[self.family]
        loc, scale = self.params["loc"], self.params["scale"]
        return loc - z * scale, loc + z * scale


@dataclass
class CodingTables:
    """Per-dimension discretised densities, padded into one (D, W) table.

    offsets: (D,) int64 k_lo per dimension; sizes: (D,) support sizes; probabilities: (D, W)
    float64 with zeros past each row's size; steps: (D,) float64 Δ_d.
    """

    offsets: np.ndarray
    sizes: np.ndarray
    probabilities: np.ndarray
    steps: np.ndarray

    def take(self, rows) -> CodingTables:
        """The tables of some dimensions (a slice or index array), as wide as these are."""
        return CodingTables(self.offsets[rows], self.sizes[rows], self.probabilities[rows], self.steps[rows])

    def symbols(self, y: np.ndarray) -> np.ndarray:
        """(N, D) latents -> (N, D) int32 table indices round(y/Δ) − k_lo, clamped to the support."""
        k = np.rint(np.asarray(y, dtype=np.float64) / self.steps)
        k = np.clip(k, self.offsets, self.offsets + self.sizes - 1)
        return (k - self.offsets).astype(np.int32)

    def values(self, symbols: np.ndarray) -> np.ndarray:
        """(N, D) table indices -> (N, D) float64 dequantised latents (k_lo + s)·Δ."""
        return (symbols.astype(np.int64) + self.offsets) * self.steps

    def bits(self, symbols: np.ndarray) -> np.ndarray:
        """(N, D) table indices -> (N,) ideal code length −log₂ P in bits (before fixed-point rounding)."""
        rows = np.arange(self.probabilities.shape[0])
        p = self.probabilities[rows, symbols] / self.probabilities.sum(axis=1)
        return -np.log2(np.maximum(p, 2.0 ** -24)).sum(axis=1)


def coding_tables(density: FactorisedDensity, steps: np.ndarray, min_width: int = 1) -> CodingTables:
    """The tables for coding each y_d with step Δ_d: P_d(k) for k in the support.

    Rows are padded with zeros to the widest support (at least ``min_width``); the entropy
    coder quantises a row differently with different padding, so both ends must agree on it.
    """
    steps = np.ascontiguousarray(steps, dtype=np.float64)
    if steps.shape != (density.dims,) or not np.all(np.isfinite(steps)) or np.any(steps <= 0):
        raise VaelabError("quantisation steps must be positive and finite, one per latent dimension")
    lo, hi = density.bounds()
    k_lo = np.floor(lo / steps).astype(np.int64)
    k_hi = np.ceil(hi / steps).astype(np.int64)
    sizes = k_hi - k_lo + 1
    if sizes.max() > MAX_SUPPORT:
        raise VaelabError(f"this quality quantises too finely ({int(sizes.max()):,} levels in one latent dimension, "
                          f"the limit is {MAX_SUPPORT:,}); choose a lower quality")
    width = max(int(sizes.max()), min_width)
    # Only the (row, k) pairs inside each row's support are computed: one wide row must not
    # make every row pay for its width. Each entry is the same element-wise arithmetic either way.
    rows = np.repeat(np.arange(len(steps)), sizes)
    cols = np.arange(rows.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    row_steps = steps[rows]
    centers = (k_lo[rows] + cols) * row_steps
    picked = FactorisedDensity(density.family, {name: value[rows] for name, value in density.params.items()})
    mass = picked.interval_mass((centers - row_steps / 2)[:, None], (centers + row_steps / 2)[:, None])[:, 0]
    probs = np.zeros((len(steps), width))
    probs[rows, cols] = np.maximum(mass, 0.0)
    return CodingTables(k_lo, sizes, probs, steps)
