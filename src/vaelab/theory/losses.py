"""Loss and risk functions (thesis §1.2: Defs. 1.2.1, 1.2.3, Ex. 1.2.2; §2.1: Def. 2.1.1,
Ex. 2.1.2, Remark 2.1.3).

Conventions. Every loss here is called ``loss(target, prediction)`` and returns one number
per example, shape (N,): the first dimension of both tensors is the batch; the remaining
dimensions hold one example (a vector (D,) or an image (C, H, W)). The thesis writes a
supervised loss L(x, y, p(x)) (Def. 1.2.1) and an unsupervised one L(x, p(x)) (Def. 2.1.1);
none of the losses below looks at x beyond the target, so target = y (supervised) or
target = x (unsupervised). A prediction with the same number of entries per example as the
target but another shape (a flat network output for an image) is reshaped to the target's
shape, the bijection of Lemma 1.3.3.

Risks average losses: `empirical_risk` is eq. (1.4) over a data set, `risk` estimates the
integral of Def. 1.2.1 by Monte Carlo from a sampler of P.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import VaelabError

__all__ = [
    "bce_loss",
    "bce_with_logits_loss",
    "empirical_risk",
    "linear_error",
    "mse_loss",
    "risk",
    "squared_error",
]

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _match(target: torch.Tensor, prediction: torch.Tensor, what: str) -> torch.Tensor:
    """Return ``prediction`` shaped like ``target`` (same batch size and entries per example)."""
    if not isinstance(target, torch.Tensor) or not isinstance(prediction, torch.Tensor):
        raise VaelabError(f"{what} takes two tensors")
    if target.dim() < 1:
        raise VaelabError(f"{what} needs a batch dimension: got a scalar target")
    if prediction.shape == target.shape:
        return prediction
    if prediction.dim() >= 1 and prediction.shape[0] == target.shape[0] and prediction[0].numel() == target[0].numel():
        return prediction.reshape(target.shape)
    raise VaelabError(
        f"{what}: the prediction has shape {tuple(prediction.shape)} but the target {tuple(target.shape)}; "
        "they need the same batch size and the same number of entries per example"
    )


def _per_example(t: torch.Tensor) -> torch.Tensor:
    """(N, ...) → (N, D): one row per example."""
    return t.reshape(t.shape[0], -1)


# --------------------------------------------------------------------------------------
# Ex. 1.2.2


def squared_error(y: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
    """Squared error loss ‖y − p(x)‖² (Ex. 1.2.2), Euclidean norm over each example: (N, ...) → (N,)."""
    prediction = _match(y, prediction, "squared_error")
    return _per_example(y - prediction).square().sum(dim=1)


def linear_error(y: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
    """Linear error loss ‖y − p(x)‖ (Ex. 1.2.2), Euclidean norm over each example: (N, ...) → (N,).

    ``torch.linalg.vector_norm`` is used because its gradient at y = p(x) is defined (0) where
    ``sqrt`` of a sum of squares would give NaN.
    """
    prediction = _match(y, prediction, "linear_error")
    return torch.linalg.vector_norm(_per_example(y - prediction), dim=1)


# --------------------------------------------------------------------------------------
# Ex. 2.1.2, Remark 2.1.3


def _image_layout(t: torch.Tensor) -> tuple[int, int]:
    """(channels d, pixels MN) of a batch: (N, C, H, W) → (C, H·W); (N, D) → (1, D)."""
    if t.dim() == 4:
        return t.shape[1], t.shape[2] * t.shape[3]
    if t.dim() == 2:
        return 1, t.shape[1]
    raise VaelabError(f"expected images (N, C, H, W) or vectors (N, D), got shape {tuple(t.shape)}")


def mse_loss(psi: torch.Tensor, f_psi: torch.Tensor) -> torch.Tensor:
    """The MSE loss of Ex. 2.1.2: L(ψ, f(ψ)) = Σ_{i=1}^M Σ_{j=1}^N ‖ψ_ij − f(ψ)_ij‖², per image.

    ``psi``: (N, C, H, W) images (or (N, D) vectors, read as D one-channel pixels);
    ``f_psi``: the reconstruction, same shape or flat. The norm is taken over the channels of
    each pixel, so the loss is the sum of squared differences over all C·H·W entries. Note the
    thesis' formula is a *sum* over pixels despite the name (no division by MN); it equals the
    squared error of Ex. 1.2.2 on the flattened image (Lemma 1.3.3). Returns (N,).
    """
    _image_layout(psi)
    f_psi = _match(psi, f_psi, "mse_loss")
    return _per_example(psi - f_psi).square().sum(dim=1)


def bce_loss(psi: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """The BCE loss of Ex. 2.1.2 from probabilities f(ψ) ∈ [0, 1], per image: (N, ...) → (N,).

    L(ψ, f(ψ)) = −(1/MN) Σ_ij [ψ_ij log f(ψ)_ij + (1 − ψ_ij) log(1 − f(ψ)_ij)].

    With d > 1 channels ψ_ij is a vector; we read the products as inner products over the
    channels (as the norm in the MSE), i.e. *sum over channels, mean over the MN pixels*. For
    d = 1 (and for (N, D) vectors, read as D one-channel pixels) this is the formula verbatim.

    Remark 2.1.3: BCE is made for binary outcomes, but targets ψ ∈ [0, 1] (grey values) work as
    well — the loss is then minimised by f(ψ) = ψ, not at 0.

    No clamping: terms with ψ = 0 (resp. 1 − ψ = 0) contribute exactly 0, also in the
    gradient, even when f(ψ) = 0 (resp. 1); the loss is +∞ only when a pixel the model calls
    impossible occurs. For training, prefer :func:`bce_with_logits_loss`.
    """
    C, MN = _image_layout(psi)
    probs = _match(psi, probs, "bce_loss")
    # Route the log's argument to 1 where its coefficient is 0: 0·log(0) is 0 by convention,
    # and neither the value nor the gradient then meets log(0).
    log_p = torch.log(torch.where(psi > 0, probs, torch.ones_like(probs)))
    log_1mp = torch.log(torch.where(psi < 1, 1 - probs, torch.ones_like(probs)))
    per_entry = -(psi * log_p + (1 - psi) * log_1mp)
    return _per_example(per_entry).sum(dim=1) / MN


def bce_with_logits_loss(psi: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The BCE loss of :func:`bce_loss` with f(ψ) = sigmoid(ℓ), computed from the logits ℓ.

    Per entry, −[ψ log σ(ℓ) + (1 − ψ) log(1 − σ(ℓ))] = log(1 + e^ℓ) − ψℓ
    = max(ℓ, 0) − ψℓ + log(1 + e^{−|ℓ|}) (log-sum-exp form): no exponential can overflow and
    no probability is rounded to 0 or 1, so the loss is finite for any finite logits
    (e.g. ±1000). PyTorch's fused ``binary_cross_entropy_with_logits`` computes exactly this
    expression. Same reduction as :func:`bce_loss` (sum over channels, mean over pixels); (N,).
    """
    C, MN = _image_layout(psi)
    logits = _match(psi, logits, "bce_with_logits_loss")
    per_entry = F.binary_cross_entropy_with_logits(logits, psi.to(logits.dtype), reduction="none")
    return _per_example(per_entry).sum(dim=1) / MN


# --------------------------------------------------------------------------------------
# Def. 1.2.3, Def. 2.1.1


def _check_per_example(values: torch.Tensor, n: int, loss: Loss) -> torch.Tensor:
    name = getattr(loss, "__name__", type(loss).__name__)
    if not isinstance(values, torch.Tensor) or values.shape != (n,):
        shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise VaelabError(f"the loss {name} must return one value per example, shape ({n},); got {shape}")
    return values


def empirical_risk(
    loss: Loss,
    predictor: Callable[[torch.Tensor], torch.Tensor],
    xs: torch.Tensor,
    ys: torch.Tensor | None = None,
) -> torch.Tensor:
    """The empirical risk R_{L,D}(p) = (1/k) Σ_i L(x_i, y_i, p(x_i)) (Def. 1.2.3, eq. 1.4).

    ``xs``: (k, ...) inputs; ``ys``: (k, ...) targets, or ``None`` for the unsupervised case
    (Def. 2.1.1), where each input is its own target: L(x_i, p(x_i)). ``loss(target,
    prediction)`` returns (k,) per-example losses; ``predictor`` maps the whole batch at once.
    Returns a scalar tensor that keeps the autograd graph (its gradient is Lemma 1.2.5's).
    """
    if not isinstance(xs, torch.Tensor) or xs.dim() < 1 or xs.shape[0] < 1:
        raise VaelabError("the data set must be a tensor (k, ...) with at least one example")
    k = xs.shape[0]
    targets = xs if ys is None else ys
    if targets.shape[0] != k:
        raise VaelabError(f"{k} inputs but {targets.shape[0]} targets")
    return _check_per_example(loss(targets, predictor(xs)), k, loss).mean()


def risk(
    loss: Loss,
    predictor: Callable[[torch.Tensor], torch.Tensor],
    sampler: Callable[[int, torch.Generator | None], tuple[torch.Tensor, torch.Tensor | None]],
    n: int = 10_000,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Monte Carlo estimate of the L-risk R_{L,P}(p) = ∫ L(x, y, p(x)) dP(x, y) (Def. 1.2.1).

    The integral over an unknown P cannot be computed; given a way to draw from P it can be
    estimated. ``sampler(n, generator)`` returns n i.i.d. draws ``(xs, ys)`` from P (``ys`` may
    be ``None`` for unsupervised losses). The estimate is the empirical risk of the draws
    (eq. 1.4), which by the law of large numbers tends to R_{L,P}(p) as n → ∞.

    Returns ``(estimate, standard_error)``, both scalar tensors; the standard error is
    std(L)/√n, so the estimate is off by more than 4 standard errors only rarely.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise VaelabError(f"a Monte Carlo risk needs n ≥ 2 draws, got {n!r}")
    xs, ys = sampler(n, generator)
    if xs.shape[0] != n:
        raise VaelabError(f"the sampler returned {xs.shape[0]} draws, {n} were asked for")
    targets = xs if ys is None else ys
    with torch.no_grad():
        values = _check_per_example(loss(targets, predictor(xs)), n, loss)
    return values.mean(), values.std(correction=1) / math.sqrt(n)
