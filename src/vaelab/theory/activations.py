"""Activation functions (thesis §1.1: Def. 1.1.1, Ex. 1.1.2).

Def. 1.1.1 calls a function φ: R → R an *activation function* when it is continuous and not
constant. Ex. 1.1.2 names three: ReLU, Leaky ReLU (slope α for t ≤ 0) and the sigmoid.
This module gives

* the three functions of Ex. 1.1.2 as plain tensor functions (`relu`, `leaky_relu`,
  `sigmoid`), computed by PyTorch's built-in kernels, which evaluate exactly these formulas;
* `get_activation(name_or_callable)`, the one door through which networks obtain φ as an
  ``nn.Module``. Names: relu, leaky_relu (also ``"leaky_relu:0.2"`` for α = 0.2), sigmoid,
  tanh, elu, gelu, softplus, identity;
* `Activation`, a wrapper that admits any user callable after checking Def. 1.1.1 as far as
  numbers can check it (see its docstring: continuity cannot be *proven* from finitely many
  evaluations, so jumps are searched for heuristically).

All activations act entry by entry; applied to a tensor they are the component-wise map φ̂
of eq. (1.2).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import VaelabError

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "get_activation",
    "leaky_relu",
    "relu",
    "sigmoid",
]


# --------------------------------------------------------------------------------------
# Ex. 1.1.2 as tensor functions


def relu(t: torch.Tensor) -> torch.Tensor:
    """ReLU of Ex. 1.1.2: φ(t) = max{0, t}, entry by entry (any shape in, same shape out)."""
    return torch.relu(t)


def leaky_relu(t: torch.Tensor, alpha: float = 0.01) -> torch.Tensor:
    """Leaky ReLU of Ex. 1.1.2: φ(t) = αt for t ≤ 0 and t for t > 0 (any shape).

    PyTorch's kernel uses ``t ≥ 0`` for the identity branch; at t = 0 both branches give 0,
    so it is the same function.
    """
    return F.leaky_relu(t, negative_slope=alpha)


def sigmoid(t: torch.Tensor) -> torch.Tensor:
    """Sigmoid of Ex. 1.1.2: φ(t) = 1 / (1 + e^{-t}) (the thesis writes e^{-x}; same map)."""
    return torch.sigmoid(t)


# --------------------------------------------------------------------------------------
# Def. 1.1.1, checked numerically for user callables

# Probe points: a dense grid where jumps are searched for, plus a sparse logarithmic tail so
# that a function constant near 0 but not far away (e.g. relu(t - 20)) is not called constant.
_DENSE = torch.linspace(-10.0, 10.0, 2001, dtype=torch.float64)
_TAIL = torch.logspace(1.0, 4.0, 31, dtype=torch.float64)
_PROBE = torch.cat([-_TAIL.flip(0), _DENSE, _TAIL])
_JUMP_CANDIDATES = 8  # how many of the steepest grid cells are re-examined for a jump
_REFINE = 1000  # each examined cell is cut into this many sub-cells


def _evaluate(fn: Callable[[torch.Tensor], torch.Tensor], t: torch.Tensor, what: str) -> torch.Tensor:
    try:
        with torch.no_grad():
            out = fn(t)
    except Exception as exc:  # any failure of foreign code is the user's to fix
        raise VaelabError(f"activation {what} failed on a probe tensor ({exc.__class__.__name__}: {exc})") from exc
    if not isinstance(out, torch.Tensor):
        raise VaelabError(f"activation {what} must return a tensor, got {type(out).__name__}")
    if out.shape != t.shape:
        raise VaelabError(
            f"activation {what} must act entry by entry (φ: R → R, Def. 1.1.1): "
            f"input shape {tuple(t.shape)} gave output shape {tuple(out.shape)}"
        )
    return out.to(torch.float64)


def _check_activation(fn: Callable[[torch.Tensor], torch.Tensor], what: str) -> None:
    """Refuse callables that are visibly not activation functions in the sense of Def. 1.1.1."""
    # Some user code only works in float32 (e.g. a module with float32 parameters).
    probe = _PROBE
    try:
        with torch.no_grad():
            fn(probe[:2])
    except Exception:
        probe = _PROBE.to(torch.float32)
    values = _evaluate(fn, probe, what)

    if not torch.isfinite(values).all():
        bad = probe[~torch.isfinite(values)][0].item()
        raise VaelabError(f"activation {what} must be real-valued (Def. 1.1.1), but φ({bad:g}) is not finite")

    # Acting entry by entry: the same numbers arranged as a column must give the same values.
    # This catches e.g. softmax, which mixes entries and is no map R → R.
    column = _evaluate(fn, probe.reshape(-1, 1), what).reshape(-1)
    if not torch.allclose(column, values, rtol=1e-5, atol=1e-8, equal_nan=False):
        raise VaelabError(
            f"activation {what} must act on each entry alone (the component-wise φ̂ of eq. 1.2); "
            "its values depend on the tensor's shape"
        )

    scale = max(1.0, values.abs().max().item())
    if (values.max() - values.min()).item() <= 1e-12 * scale:
        raise VaelabError(
            f"activation {what} is constant on [-1e4, 1e4] ({values[0].item():g}); "
            "Def. 1.1.1 requires a non-constant function"
        )

    # Continuity heuristic: on the dense grid, pick the cells with the largest increments and
    # cut each into _REFINE sub-cells. For a continuous function the largest sub-cell increment
    # shrinks with the cell; at a jump it stays as large as the jump itself.
    n_dense = _DENSE.numel()
    start = _TAIL.numel()
    dense_t = probe[start : start + n_dense]
    dense_v = values[start : start + n_dense]
    increments = (dense_v[1:] - dense_v[:-1]).abs()
    top = torch.topk(increments, k=_JUMP_CANDIDATES).indices
    frac = torch.linspace(0.0, 1.0, _REFINE + 1, dtype=torch.float64)
    # (K, R+1) fine grids, one row per candidate cell
    left, right = dense_t[top].to(torch.float64), dense_t[top + 1].to(torch.float64)
    fine_t = (left[:, None] + (right - left)[:, None] * frac[None, :]).to(probe.dtype)
    fine_v = _evaluate(fn, fine_t.reshape(-1), what).reshape(fine_t.shape)
    fine_inc = (fine_v[:, 1:] - fine_v[:, :-1]).abs().max(dim=1)
    coarse = increments[top]
    floor = 1e-6 * scale  # increments below this are rounding noise, not jumps
    suspicious = (coarse > floor) & (fine_inc.values > 0.5 * coarse)
    if suspicious.any():
        k = int(torch.nonzero(suspicious)[0, 0])
        cell = fine_inc.indices[k]
        where = fine_t[k, cell].item()
        raise VaelabError(
            f"activation {what} seems to jump by {fine_inc.values[k].item():.3g} near t = {where:.6g}; "
            "Def. 1.1.1 requires a continuous function"
        )


class Activation(nn.Module):
    """An activation function φ (Def. 1.1.1) from any callable on tensors, as an ``nn.Module``.

    ``fn`` maps a tensor to a tensor of the same shape, entry by entry. On construction it is
    probed on [-10, 10] (2,001 points) plus a logarithmic tail out to ±10⁴ and refused with a
    :class:`VaelabError` when it

    * fails, returns something else than a same-shaped tensor, or mixes entries;
    * returns a non-finite value (φ must map into R);
    * is constant on all probe points (Def. 1.1.1 demands a non-constant function);
    * appears to jump: the eight steepest cells of the grid are refined 1000-fold, and a cell
      whose largest sub-increment stays above half of its whole increment is taken for a
      discontinuity.

    Continuity cannot be proven from finitely many values: a jump smaller than the function's
    steepest slopes, a jump outside [-10, 10], or a function continuous but steeper than the
    grid resolves can all be misjudged. The check keeps obvious mistakes (step functions,
    ``torch.sign``, ``torch.round``, constants, NaNs) out of networks; it is not a proof.

    ``fn`` may be an ``nn.Module`` (then it is registered, so its parameters train with the
    network). ``name`` is used in messages and ``repr``.
    """

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], name: str | None = None, *, check: bool = True):
        super().__init__()
        if not callable(fn):
            raise VaelabError(f"an activation must be a name or a callable, got {type(fn).__name__}")
        self.name = name or getattr(fn, "__name__", None) or fn.__class__.__name__
        if check:
            _check_activation(fn, repr(self.name))
        self.fn = fn  # an nn.Module assigned here is registered as a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply φ entry by entry: any shape in, the same shape out."""
        return self.fn(x)

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


# --------------------------------------------------------------------------------------
# names


def _parse_float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise VaelabError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise VaelabError(f"{what} must be finite, got {text!r}")
    return value


def _leaky(alpha: float = 0.01) -> nn.Module:
    return nn.LeakyReLU(negative_slope=alpha)


def _elu(alpha: float = 1.0) -> nn.Module:
    return nn.ELU(alpha=alpha)


def _softplus(beta: float = 1.0) -> nn.Module:
    if beta <= 0:
        raise VaelabError(f"softplus needs beta > 0, got {beta:g}")
    return nn.Softplus(beta=beta)


# name -> (factory, name of its one numeric parameter or None). Built-in torch modules are
# the formulas themselves, computed by fused kernels, so they need no probing.
_FACTORIES: dict[str, tuple[Callable[..., nn.Module], str | None]] = {
    "relu": (nn.ReLU, None),
    "leaky_relu": (_leaky, "alpha"),
    "sigmoid": (nn.Sigmoid, None),
    "tanh": (nn.Tanh, None),
    "elu": (_elu, "alpha"),
    "gelu": (nn.GELU, None),
    "softplus": (_softplus, "beta"),
    "identity": (nn.Identity, None),
}

# torch modules that are activation functions in the sense of Def. 1.1.1 by construction
_TRUSTED = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.ELU, nn.GELU, nn.Softplus, nn.Identity)

#: The names `get_activation` understands.
ACTIVATIONS: tuple[str, ...] = tuple(_FACTORIES)


def get_activation(spec: str | Callable[[torch.Tensor], torch.Tensor] | nn.Module, **kwargs: float) -> nn.Module:
    """Return the activation φ named or given by ``spec`` as an ``nn.Module`` (Def. 1.1.1).

    ``spec`` is one of :data:`ACTIVATIONS` (case-insensitive, ``-`` and ``_`` alike), optionally
    with its parameter after a colon: ``"leaky_relu:0.2"`` (α), ``"elu:1.0"`` (α),
    ``"softplus:2"`` (β). The parameter may also be passed as a keyword
    (``get_activation("leaky_relu", alpha=0.2)``). Any other callable is wrapped in
    :class:`Activation` and checked; an existing :class:`Activation` or an instance of one of
    torch's modules for these functions (``nn.ReLU``, ``nn.Tanh``, …) is returned as is.

    Raises :class:`VaelabError` for unknown names (listing the choices), malformed
    parameters and callables that fail the checks of :class:`Activation`.
    """
    if isinstance(spec, (Activation, _TRUSTED)):
        # already an activation: checked on construction, or one of torch's own, which
        # evaluate the formulas above and need no probing
        if kwargs:
            raise VaelabError("parameters can only be given together with an activation name")
        return spec
    if not isinstance(spec, str):
        if kwargs:
            raise VaelabError("parameters can only be given together with an activation name")
        return Activation(spec)

    head, sep, arg = spec.strip().partition(":")
    base = head.strip().lower().replace("-", "_")
    if base not in _FACTORIES:
        raise VaelabError(f"unknown activation {spec!r}; choose one of: {', '.join(ACTIVATIONS)} (or pass a callable)")
    factory, param = _FACTORIES[base]
    params: dict[str, float] = {}
    if sep:
        if param is None:
            raise VaelabError(f"activation {base!r} takes no parameter, got {spec!r}")
        params[param] = _parse_float(arg, f"the {param} of {base!r}")
    for key, value in kwargs.items():
        if key != param:
            allowed = f"only {param!r}" if param else "none"
            raise VaelabError(f"activation {base!r} has no parameter {key!r} (it takes {allowed})")
        if key in params:
            raise VaelabError(f"{key!r} given twice for activation {base!r}")
        params[key] = _parse_float(str(value), f"the {key} of {base!r}")
    return factory(**params)
