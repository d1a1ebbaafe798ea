"""A second set of parameters that the loss trains with its own optimiser (FactorVAE's discriminator).

The contract: a model lists them in ``model.auxiliary_parameters()``; the main optimiser (and
gradient clipping) take every other parameter, in the same order, so other models' optimiser
state is unchanged; the loss builds their optimiser (``loss.auxiliary_optimizer(params)``) and
defines ``loss.auxiliary_loss(model, x)``; the engine steps it after every main step, and the
checkpoint carries its state under ``"auxiliary"`` (only when there is one).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from ..errors import VaelabError
from ..models.losses import Loss
from . import distributed


def main_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters the main optimiser trains: all but ``model.auxiliary_parameters()``, in their order."""
    auxiliary = {id(p) for p in model.auxiliary_parameters()}
    return [p for p in model.parameters() if id(p) not in auxiliary]


def auxiliary_optimizer(model: nn.Module, loss: Loss, ctx: distributed.Context) -> torch.optim.Optimizer | None:
    """The loss' optimiser of the model's auxiliary parameters (None when there are none)."""
    params = list(model.auxiliary_parameters())
    if not params:
        return None
    if ctx.distributed:   # its step runs outside DDP, so the processes' copies would drift apart
        raise VaelabError(f"the {model.registry_name} model trains a second set of parameters, which distributed "
                          "training does not support; train it on one process")
    optimizer = loss.auxiliary_optimizer(params)
    if optimizer is None:
        raise VaelabError(f"the {model.registry_name} model has auxiliary parameters that its loss {loss!r} "
                          "does not train")
    return optimizer


def auxiliary_step(model: nn.Module, loss: Loss, optimizer: torch.optim.Optimizer, x: torch.Tensor) -> None:
    """One step of the auxiliary optimiser on the batch ``x``, after the main step (in full precision:
    the auxiliary networks are small, and the grad scaler belongs to the main optimiser)."""
    optimizer.zero_grad(set_to_none=True)
    loss.auxiliary_loss(model, x).backward()
    optimizer.step()


def load_auxiliary(optimizer: torch.optim.Optimizer | None, ck: dict, source: Path) -> None:
    """The auxiliary optimiser's saved state; a checkpoint without one (a run of a model without
    auxiliary parameters, and every checkpoint older than them) leaves it fresh."""
    saved = ck.get("auxiliary")
    if optimizer is None or saved is None:
        return
    fresh = [sorted(group) for group in optimizer.state_dict()["param_groups"]]
    if fresh != [sorted(group) for group in saved.get("param_groups", [])]:
        raise VaelabError("holds the state of another auxiliary optimiser than this run's model trains; "
                          "train a new run", source)
    try:
        optimizer.load_state_dict(saved)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise VaelabError(f"auxiliary optimiser state does not fit this run's model ({exc})", source) from None
