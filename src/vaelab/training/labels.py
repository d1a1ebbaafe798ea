"""Labels in training, for models that condition on them (``needs_labels``: a cond-vae).

The loader yields (images, labels) pairs for such a model (data/loader.py); the engine passes
``labels=`` to its forward pass in training and in the validation and test passes.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..data import DataSplits
from ..errors import VaelabError


def forward_options(loss, labels: torch.Tensor | None) -> dict:
    """The keyword arguments of the model's forward pass: the loss' own, and ``labels=`` when given."""
    return loss.forward_options if labels is None else {**loss.forward_options, "labels": labels}


def split_labels(model: nn.Module, split) -> torch.Tensor | None:
    """A split's labels for a model that trains on them (``needs_labels``: a cond-vae), else None."""
    return split.labels if model.needs_labels else None


def check_labels(model: nn.Module, data: DataSplits, data_name: str) -> None:
    """Refuse at setup, in one line, a data set without (valid) labels for a model that needs them."""
    if not model.needs_labels:
        return
    for split in (data.train, data.val, data.test):
        if len(split) and split.labels is None:
            raise VaelabError(f"the {model.registry_name} model trains on labelled images, but the {split.name or ''} "
                              f"images of data set {data_name} have no labels; choose a data set with classes")
        if len(split):
            model.check_labels(split.labels)
