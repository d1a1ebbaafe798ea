"""Training by gradient descent: GD, SGD and Adam, and step-size schedules (thesis §1.2:
Thm. 1.2.4, Lemma 1.2.5, Cor. 1.2.6, Thm. 1.2.7, and the Adam to-do).

* `gradient_descent` — Thm. 1.2.4, eq. (1.5): x^{(t+1)} = x^{(t)} − γ_t ∇f(x^{(t)}) for a
  differentiable f: R^n → R given as a function of a tensor.
* `stochastic_gradient_descent` — Thm. 1.2.7, eq. (1.6) for an objective that is an average
  (1/k) Σ_i f_i(x): each step follows the gradient of one uniformly drawn f_i.
* `make_optimizer` — the same algorithms (and Adam/AdamW) for the parameters θ of a network,
  as ``torch.optim`` optimizers. For a network, Cor. 1.2.6 is GD on the empirical risk with
  the gradient of Lemma 1.2.5 — the average of per-example gradients, which autograd
  produces when it differentiates the mean loss of the full data set ("gd": feed full
  batches). Thm. 1.2.7 is the same step on one example ("sgd" with batches of 1); minibatches
  of b examples average b per-example gradients and sit in between.
* `step_size_schedule`, `make_scheduler` — the step sizes (γ_t).

On the step sizes. Thm. 1.2.4 asks for γ_t → 0. That alone does not suffice in practice: if
Σ_t γ_t < ∞ the iterates move a bounded distance and may stop short of x*. The classical
conditions (Robbins–Monro) are Σ γ_t = ∞ and, for SGD, Σ γ_t² < ∞; γ_t = γ_0/(1 + t/τ)
("inverse") satisfies both, γ_0/√(1 + t/τ) ("inverse-sqrt") the first. For GD on an
L-smooth convex f a constant γ ≤ 1/L already converges; the thesis' proof sketch (each step
moves closer to x*) holds for such small steps.

**Adam** (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015) — the thesis
leaves it as a to-do; here is the method. With the gradient g_t = ∇_θ R(θ_{t−1}) (of a
minibatch), decay rates β_1, β_2 ∈ [0, 1) (defaults 0.9, 0.999), a small ε (1e-8) and m_0 =
v_0 = 0:

    m_t = β_1 m_{t−1} + (1 − β_1) g_t              running mean of gradients (momentum)
    v_t = β_2 v_{t−1} + (1 − β_2) g_t ⊙ g_t        running mean of squared gradients
    m̂_t = m_t / (1 − β_1^t),  v̂_t = v_t / (1 − β_2^t)   bias corrections (m_0 = v_0 = 0)
    θ_t = θ_{t−1} − γ_t m̂_t / (√v̂_t + ε)          entry-wise

Each parameter gets its own effective step γ_t/(√v̂_t + ε): short where its gradients are
large, long where they are small, so Adam is insensitive to the scale of the gradients (the
first step moves every coordinate by about γ), and m̂_t averages out part of the noise of
minibatch gradients. AdamW (Loshchilov & Hutter,
ICLR 2019) applies weight decay λ as θ ← θ − γ_t λ θ apart from the adaptive step, instead of
adding λθ to g_t.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch

from ..errors import VaelabError

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "DescentResult",
    "StepSizeSchedule",
    "gradient_descent",
    "make_optimizer",
    "make_scheduler",
    "step_size_schedule",
    "stochastic_gradient_descent",
]


# --------------------------------------------------------------------------------------
# step sizes

#: The schedule names `step_size_schedule` understands.
SCHEDULES: tuple[str, ...] = ("constant", "inverse", "inverse-sqrt", "cosine")


@dataclass(frozen=True)
class StepSizeSchedule:
    """A step-size sequence t ↦ γ_t (t = 0, 1, 2, …); call it, or use ``factor`` (γ_t / γ_0).

    After ``warmup_steps`` steps of linear warm-up (γ_t = γ_0 (t + 1)/warmup_steps), with
    u = t − warmup_steps:

    * ``constant``:     γ_t = γ_0 (does not tend to 0; not the setting of Thm. 1.2.4)
    * ``inverse``:      γ_t = γ_0 / (1 + u/τ)      → 0, Σγ_t = ∞, Σγ_t² < ∞
    * ``inverse-sqrt``: γ_t = γ_0 / √(1 + u/τ)     → 0, Σγ_t = ∞
    * ``cosine``:       γ_t = γ_0 · ½(1 + cos(π u/U)) for u ≤ U = total_steps − warmup_steps,
      0 afterwards: reaches 0 at the last step of a run of known length.

    τ = ``time_scale`` (default 1) is the number of steps over which the decaying schedules
    halve (inverse) or fall by 1/√2 (inverse-sqrt) first.
    """

    name: str
    base_lr: float
    total_steps: int | None = None
    warmup_steps: int = 0
    time_scale: float = 1.0

    def factor(self, t: int) -> float:
        """γ_t / γ_0."""
        if t < 0:
            raise VaelabError(f"step sizes are defined for t ≥ 0, got t = {t}")
        if t < self.warmup_steps:
            return (t + 1) / self.warmup_steps
        u = t - self.warmup_steps
        if self.name == "constant":
            return 1.0
        if self.name == "inverse":
            return 1.0 / (1.0 + u / self.time_scale)
        if self.name == "inverse-sqrt":
            return 1.0 / math.sqrt(1.0 + u / self.time_scale)
        # cosine: validated in step_size_schedule to have total_steps > warmup_steps
        span = self.total_steps - self.warmup_steps  # type: ignore[operator]
        if u >= span:
            return 0.0
        return 0.5 * (1.0 + math.cos(math.pi * u / span))

    def __call__(self, t: int) -> float:
        """γ_t."""
        return self.base_lr * self.factor(t)


def step_size_schedule(
    name: str,
    base_lr: float,
    total_steps: int | None = None,
    warmup_steps: int = 0,
    *,
    time_scale: float = 1.0,
) -> StepSizeSchedule:
    """The step sizes t ↦ γ_t named ``name`` (one of :data:`SCHEDULES`); see :class:`StepSizeSchedule`.

    ``base_lr`` is γ_0 > 0; ``total_steps`` is required by ``cosine``; ``warmup_steps`` ≥ 0
    prepends a linear warm-up; ``time_scale`` τ > 0 stretches the decaying schedules.
    Raises :class:`VaelabError` for unknown names or invalid numbers.
    """
    key = str(name).strip().lower().replace("_", "-")
    if key not in SCHEDULES:
        raise VaelabError(f"unknown step-size schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")
    if not isinstance(base_lr, (int, float)) or isinstance(base_lr, bool) or not math.isfinite(base_lr) or base_lr <= 0:
        raise VaelabError(f"the step size γ_0 must be a positive number, got {base_lr!r}")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise VaelabError(f"warmup_steps must be a non-negative integer, got {warmup_steps!r}")
    if not isinstance(time_scale, (int, float)) or not math.isfinite(time_scale) or time_scale <= 0:
        raise VaelabError(f"time_scale must be a positive number, got {time_scale!r}")
    if total_steps is not None and (isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1):
        raise VaelabError(f"total_steps must be a positive integer, got {total_steps!r}")
    if key == "cosine":
        if total_steps is None:
            raise VaelabError("the cosine schedule needs total_steps (the length of the run)")
        if total_steps <= warmup_steps:
            raise VaelabError(f"total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})")
    return StepSizeSchedule(key, float(base_lr), total_steps, warmup_steps, float(time_scale))


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    name: str,
    total_steps: int | None = None,
    warmup_steps: int = 0,
    *,
    time_scale: float = 1.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` that sets the optimizer's step size to γ_t of :func:`step_size_schedule`.

    γ_0 is each parameter group's ``lr``. Call ``scheduler.step()`` after each
    ``optimizer.step()``. The multiplier is a plain function, which ``LambdaLR.state_dict``
    does not store; the state is then only numbers (JSON-serialisable), and a scheduler
    rebuilt with the same arguments and given ``load_state_dict(state)`` (after the
    optimizer's own ``load_state_dict``) continues exactly where the saved one stopped.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise VaelabError(f"make_scheduler needs a torch optimizer, got {type(optimizer).__name__}")
    lr = optimizer.param_groups[0]["lr"]
    schedule = step_size_schedule(name, float(lr), total_steps, warmup_steps, time_scale=time_scale)

    def factor(t: int) -> float:
        return schedule.factor(t)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# --------------------------------------------------------------------------------------
# Thm. 1.2.4 and Thm. 1.2.7 on plain functions

StepSizes = float | Callable[[int], float] | Sequence[float]


def _step_size(step_sizes: StepSizes, t: int) -> float:
    if callable(step_sizes):
        return float(step_sizes(t))
    if isinstance(step_sizes, (int, float)):
        return float(step_sizes)
    return float(step_sizes[t])


def _check_steps(steps: int, step_sizes: StepSizes) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise VaelabError(f"steps must be a non-negative integer, got {steps!r}")
    if not callable(step_sizes) and not isinstance(step_sizes, (int, float)) and len(step_sizes) < steps:
        raise VaelabError(f"{steps} steps need {steps} step sizes, got {len(step_sizes)}")


@dataclass
class DescentResult:
    """The path of a descent: ``x`` the last iterate x^{(T)}, ``iterates`` (T + 1, *x.shape)
    holding x^{(0)}, …, x^{(T)}, and ``values`` (T + 1,) the objective at each iterate (for
    SGD the full objective (1/k) Σ_i f_i)."""

    x: torch.Tensor
    iterates: torch.Tensor
    values: torch.Tensor


def _value_and_grad(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        value = f(x)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise VaelabError("the objective must return a single number (a scalar tensor)")
        (grad,) = torch.autograd.grad(value.reshape(()), x)
    return value.detach().reshape(()), grad


def gradient_descent(
    f: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    step_sizes: StepSizes,
    steps: int,
) -> DescentResult:
    """Gradient descent x^{(t+1)} = x^{(t)} − γ_t ∇f(x^{(t)}) (Thm. 1.2.4, eq. 1.5).

    ``f`` maps a tensor shaped like ``x0`` to a scalar and is differentiated by autograd.
    ``step_sizes`` is a constant γ, a function t ↦ γ_t (e.g. a :class:`StepSizeSchedule`) or
    a sequence (γ_0, γ_1, …). Runs ``steps`` steps from x^{(0)} = ``x0``. A non-finite iterate
    raises :class:`VaelabError` (the steps are too large for f).
    """
    _check_steps(steps, step_sizes)
    if not isinstance(x0, torch.Tensor) or not x0.dtype.is_floating_point:
        raise VaelabError("x0 must be a float tensor")
    x = x0.detach().clone()
    iterates, values = [x.clone()], []
    for t in range(steps):
        value, grad = _value_and_grad(f, x)
        values.append(value)
        x = x - _step_size(step_sizes, t) * grad
        if not torch.isfinite(x).all():
            raise VaelabError(f"gradient descent diverged at step {t + 1}; use smaller step sizes")
        iterates.append(x.clone())
    values.append(_value_and_grad(f, x)[0])
    return DescentResult(x, torch.stack(iterates), torch.stack(values))


def stochastic_gradient_descent(
    f_i: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    k: int,
    x0: torch.Tensor,
    step_sizes: StepSizes,
    steps: int,
    generator: torch.Generator | None = None,
) -> DescentResult:
    """SGD on f(x) = (1/k) Σ_i f_i(x): x^{(t+1)} = x^{(t)} − γ_t ∇f_{i_t}(x^{(t)}) (Thm. 1.2.7, eq. 1.6).

    ``f_i(x, i)`` is the loss on example i (``i`` a long tensor of shape (1,), so ``f_i`` can
    index data with it) and must return a scalar; i_t is drawn uniformly from {0, …, k − 1}
    with ``generator``. The recorded values are those of the whole average f, evaluated with
    ``i = arange(k)`` (so ``f_i`` must also accept a vector of indices and return their mean
    — naturally true for ``lambda x, i: loss[i].mean()``-style code).
    """
    _check_steps(steps, step_sizes)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise VaelabError(f"k, the number of examples, must be a positive integer, got {k!r}")
    if not isinstance(x0, torch.Tensor) or not x0.dtype.is_floating_point:
        raise VaelabError("x0 must be a float tensor")
    everyone = torch.arange(k)

    def full(x: torch.Tensor) -> torch.Tensor:
        return f_i(x, everyone)

    picks = torch.randint(0, k, (steps, 1), generator=generator)
    x = x0.detach().clone()
    iterates, values = [x.clone()], []
    for t in range(steps):
        with torch.no_grad():
            values.append(full(x).detach().reshape(()))
        _, grad = _value_and_grad(lambda z: f_i(z, picks[t]), x)
        x = x - _step_size(step_sizes, t) * grad
        if not torch.isfinite(x).all():
            raise VaelabError(f"stochastic gradient descent diverged at step {t + 1}; use smaller step sizes")
        iterates.append(x.clone())
    with torch.no_grad():
        values.append(full(x).detach().reshape(()))
    return DescentResult(x, torch.stack(iterates), torch.stack(values))


# --------------------------------------------------------------------------------------
# optimizers for network parameters

#: The optimizer names `make_optimizer` understands.
OPTIMIZERS: tuple[str, ...] = ("gd", "sgd", "adam", "adamw")

_ALLOWED_OPTIONS = {
    "gd": set(),
    "sgd": {"momentum", "nesterov", "dampening"},
    "adam": {"betas", "eps", "amsgrad"},
    "adamw": {"betas", "eps", "amsgrad"},
}


def make_optimizer(
    name: str,
    params: Iterable[torch.Tensor] | Iterable[dict],
    lr: float,
    weight_decay: float = 0.0,
    **options,
) -> torch.optim.Optimizer:
    """A ``torch.optim`` optimizer for the parameters θ of a network.

    * ``"gd"`` — plain gradient descent θ ← θ − γ ∂_θR (Cor. 1.2.6): ``torch.optim.SGD``
      without momentum. It is *full-batch* GD when the caller computes the loss on the whole
      data set before each step (Lemma 1.2.5 gives that gradient).
    * ``"sgd"`` — the same update on minibatches; with batches of one example it is eq. (1.6)
      (Thm. 1.2.7). Options: ``momentum`` (default 0), ``nesterov``, ``dampening``.
    * ``"adam"``, ``"adamw"`` — Adam / AdamW as in this module's docstring. Options:
      ``betas``, ``eps``, ``amsgrad``.

    ``weight_decay`` λ ≥ 0 adds λθ to the gradient (decoupled for AdamW). The multi-tensor
    (``foreach``) implementations are requested: one fused call updates all parameters.
    Raises :class:`VaelabError` for unknown names, options or invalid numbers.
    """
    key = str(name).strip().lower()
    if key not in OPTIMIZERS:
        raise VaelabError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise VaelabError(f"the learning rate must be a positive number, got {lr!r}")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not math.isfinite(weight_decay) or weight_decay < 0:
        raise VaelabError(f"weight_decay must be a non-negative number, got {weight_decay!r}")
    unknown = set(options) - _ALLOWED_OPTIONS[key]
    if unknown:
        allowed = ", ".join(sorted(_ALLOWED_OPTIONS[key])) or "none"
        raise VaelabError(f"optimizer {key!r} has no option {', '.join(sorted(unknown))} (options: {allowed})")
    params = list(params)
    if not params:
        raise VaelabError("the optimizer got no parameters to train")
    try:
        if key == "gd":
            return torch.optim.SGD(params, lr=lr, momentum=0.0, weight_decay=weight_decay, foreach=True)
        if key == "sgd":
            options.setdefault("momentum", 0.0)
            return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, foreach=True, **options)
        cls = torch.optim.Adam if key == "adam" else torch.optim.AdamW
        return cls(params, lr=lr, weight_decay=weight_decay, foreach=True, **options)
    except ValueError as exc:  # torch's own validation (e.g. betas outside [0, 1))
        raise VaelabError(f"invalid setting for optimizer {key!r}: {exc}") from exc
