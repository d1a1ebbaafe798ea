"""Kullback–Leibler divergence, entropy and cross-entropy (thesis §3.1: Defs. 3.1.1–3.1.3,
Remark 3.1.4).

For densities p, q:

* D_KL(p ‖ q) = ∫ p log(p/q) dx                          (Def. 3.1.1, eq. 3.1)
* H(p)        = −∫ p log p dx = E_p[−log p(X)]            (Def. 3.1.2, eq. 3.2)
* H_q(p)      = −∫ p log q dx = E_p[−log q(X)]            (Def. 3.1.3, eq. 3.3)
* D_KL(p ‖ q) = H_q(p) − H(p)                            (Remark 3.1.4)

Two ways to compute them:

1. Closed forms for Gaussians with diagonal covariance, parameterised as VAEs do by the mean
   μ and the log-variance log σ² (shape (..., D); results sum over the last dimension D,
   as the coordinates are independent and these quantities add over independent
   coordinates).
2. Monte Carlo estimates for any pair of ``torch.distributions.Distribution`` objects: draw
   X_1, …, X_n ~ p and average −log q(X_i), −log p(X_i) or log p(X_i) − log q(X_i).

A note on Defs. 3.1.2–3.1.3: the thesis calls entropy and cross-entropy *nonnegative*. That
holds for probability mass functions, not for densities: a Gaussian with σ² < 1/(2πe) has
negative (differential) entropy, and the cross-entropy can be negative too. The KL divergence
is nonnegative either way (Gibbs' inequality) and zero exactly when p = q almost everywhere.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Distribution

from ..errors import VaelabError

__all__ = [
    "cross_entropy_diag_gaussians",
    "cross_entropy_monte_carlo",
    "entropy_diag_gaussian",
    "entropy_monte_carlo",
    "kl_diag_gaussians",
    "kl_monte_carlo",
]

_LOG_2PI = math.log(2.0 * math.pi)


def _standard(mu: torch.Tensor, value: torch.Tensor | None) -> torch.Tensor:
    """``value``, or zeros like ``mu`` (the standard normal's μ = 0 and log σ² = 0)."""
    return torch.zeros_like(mu) if value is None else value


# --------------------------------------------------------------------------------------
# closed forms


def kl_diag_gaussians(
    mu_p: torch.Tensor,
    logvar_p: torch.Tensor,
    mu_q: torch.Tensor | None = None,
    logvar_q: torch.Tensor | None = None,
) -> torch.Tensor:
    """D_KL(p ‖ q) for p = N(μ_p, diag σ_p²), q = N(μ_q, diag σ_q²) (Def. 3.1.1), in closed form.

    Per coordinate: ½ [log σ_q² − log σ_p² + (σ_p² + (μ_p − μ_q)²)/σ_q² − 1], summed over the
    last dimension. Inputs broadcast; shape (..., D) → (...). ``mu_q``/``logvar_q`` default to
    0, i.e. q = N(0, I), the usual VAE prior.

    With δ = log σ_p² − log σ_q² the bracket is (e^δ − 1 − δ) + (μ_p − μ_q)²/σ_q², and it is
    computed in that form: ``expm1(δ) − δ`` has no cancellation for nearly equal variances, is
    never negative in floating point, and is exactly 0 for p = q — so D_KL(p ‖ p) = 0 exactly,
    as Def. 3.1.1 demands. (H_q − H, Remark 3.1.4, would subtract two ½ log 2π terms instead.)
    """
    mu_q = _standard(mu_p, mu_q)
    logvar_q = _standard(logvar_p, logvar_q)
    delta = logvar_p - logvar_q
    per_coordinate = 0.5 * ((torch.expm1(delta) - delta) + (mu_p - mu_q).square() * torch.exp(-logvar_q))
    return per_coordinate.sum(dim=-1)


def entropy_diag_gaussian(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """H(p) for p = N(μ, diag σ²) (Def. 3.1.2): Σ_d ½ (1 + log 2π + log σ_d²); (..., D) → (...).

    The entropy does not depend on μ; ``mu`` only fixes the broadcast shape.
    """
    mu, logvar = torch.broadcast_tensors(mu, logvar)
    return (0.5 * (1.0 + _LOG_2PI + logvar)).sum(dim=-1)


def cross_entropy_diag_gaussians(
    mu_p: torch.Tensor,
    logvar_p: torch.Tensor,
    mu_q: torch.Tensor | None = None,
    logvar_q: torch.Tensor | None = None,
) -> torch.Tensor:
    """H_q(p) = E_p[−log q(X)] for diagonal Gaussians p, q (Def. 3.1.3); (..., D) → (...).

    Per coordinate: ½ [log 2π + log σ_q² + (σ_p² + (μ_p − μ_q)²)/σ_q²]. ``mu_q``/``logvar_q``
    default to the standard normal.
    """
    mu_q = _standard(mu_p, mu_q)
    logvar_q = _standard(logvar_p, logvar_q)
    per_coordinate = 0.5 * (
        _LOG_2PI + logvar_q + (torch.exp(logvar_p) + (mu_p - mu_q).square()) * torch.exp(-logvar_q)
    )
    return per_coordinate.sum(dim=-1)


# --------------------------------------------------------------------------------------
# Monte Carlo


def _device_of(p: Distribution) -> torch.device:
    for attribute in ("mean", "probs", "logits", "loc"):
        try:
            value = getattr(p, attribute)
        except (NotImplementedError, AttributeError, ValueError):
            continue
        if isinstance(value, torch.Tensor):
            return value.device
    return torch.device("cpu")


def _draw(p: Distribution, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """n draws from p, shape (n, *batch_shape, *event_shape).

    ``Distribution.sample`` draws from the global RNG and takes no generator. To make the
    draws a function of ``generator`` alone, a seed is drawn from ``generator`` and the
    global generator of p's device is re-seeded with it inside ``torch.random.fork_rng``,
    which restores the global state afterwards: callers' random streams are untouched, and
    the same generator state always gives the same samples. Without a generator the global
    RNG is used as usual. Reparameterised draws (``rsample``) are used where available so
    gradients reach p's parameters.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise VaelabError(f"a Monte Carlo estimate needs n ≥ 2 samples, got {n!r}")
    if not isinstance(p, Distribution):
        raise VaelabError(f"expected a torch.distributions.Distribution, got {type(p).__name__}")
    sample = p.rsample if p.has_rsample else p.sample
    if generator is None:
        return sample((n,))
    seed = int(torch.randint(0, 2**62, (), generator=generator, device=generator.device))
    device = _device_of(p)
    if device.type == "cpu":
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(seed)
            return sample((n,))
    # accelerators: fork (and seed) only the generator of the device p lives on
    index = device.index if device.index is not None else torch.get_device_module(device.type).current_device()
    with torch.random.fork_rng(devices=[index], device_type=device.type):
        torch.random.default_generator.manual_seed(seed)
        with torch.get_device_module(device.type).device(index):
            torch.get_device_module(device.type).manual_seed(seed)
        return sample((n,))


def _mean_and_error(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, ...) per-sample values → (mean, standard error of the mean), each (...)."""
    n = values.shape[0]
    return values.mean(dim=0), values.std(dim=0, correction=1) / math.sqrt(n)


def _check_pair(p: Distribution, q: Distribution) -> None:
    for name, d in (("p", p), ("q", q)):
        if not isinstance(d, Distribution):
            raise VaelabError(f"{name} must be a torch.distributions.Distribution, got {type(d).__name__}")
    if p.event_shape != q.event_shape:
        raise VaelabError(
            f"p and q must be distributions of the same random variable: event shapes "
            f"{tuple(p.event_shape)} and {tuple(q.event_shape)}"
        )


def kl_monte_carlo(
    p: Distribution, q: Distribution, n: int = 10_000, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Monte Carlo D_KL(p ‖ q) ≈ (1/n) Σ_i [log p(X_i) − log q(X_i)], X_i ~ p (Def. 3.1.1).

    Returns ``(estimate, standard_error)`` of shape ``batch_shape``. With the same
    ``generator`` state as :func:`cross_entropy_monte_carlo` and :func:`entropy_monte_carlo`
    the three use the same draws, and then KL = H_q − H holds sample by sample (Remark
    3.1.4), so the estimates agree up to rounding. The estimate itself can be negative for
    small n even though D_KL ≥ 0.
    """
    _check_pair(p, q)
    x = _draw(p, n, generator)
    return _mean_and_error(p.log_prob(x) - q.log_prob(x))


def entropy_monte_carlo(
    p: Distribution, n: int = 10_000, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Monte Carlo H(p) ≈ (1/n) Σ_i −log p(X_i), X_i ~ p (Def. 3.1.2, eq. 3.2).

    Returns ``(estimate, standard_error)`` of shape ``batch_shape``.
    """
    x = _draw(p, n, generator)
    return _mean_and_error(-p.log_prob(x))


def cross_entropy_monte_carlo(
    p: Distribution, q: Distribution, n: int = 10_000, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Monte Carlo H_q(p) ≈ (1/n) Σ_i −log q(X_i), X_i ~ p (Def. 3.1.3, eq. 3.3).

    Returns ``(estimate, standard_error)`` of shape ``batch_shape``.
    """
    _check_pair(p, q)
    x = _draw(p, n, generator)
    return _mean_and_error(-q.log_prob(x))
