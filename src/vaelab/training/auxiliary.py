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
from .checkpoint import load_optimizer_state


def main_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters the main optimiser trains: all but ``model.auxiliary_parameters()``, in their order."""
    auxiliary = {id(p) for p in model.auxiliary_parameters()}
    return [p for p in model.parameters() if id(p) not in auxiliary]


def auxiliary_optimizer(model: nn.Module, loss: Loss) -> torch.optim.Optimizer | None:
    """The loss' optimiser of the model's auxiliary parameters (None when there are none). Such a model
    trains on one process only (``Model.distributed_training``: the step runs outside DDP)."""
    params = list(model.auxiliary_parameters())
    if not params:
        return None
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
    load_optimizer_state(optimizer, saved, source, "holds the state of another auxiliary optimiser than this run's "
                         "model trains; train a new run", "auxiliary optimiser state does not fit this run's model")
