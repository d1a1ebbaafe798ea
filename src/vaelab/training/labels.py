"""Labels in training, for models that condition on them (``needs_labels``: a cond-vae).

The loader yields (images, labels) pairs for such a model (data/loader.py); the engine passes
``labels=`` to its forward pass in training and in the validation and test passes. A model
config with ``labelled = N`` (semi-supervised training) keeps N training labels, the same
number per class, and marks the rest −1 (`hide_labels`); validation and test keep all theirs.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..data import DataSplits
from ..errors import VaelabError
from ..models.cond_vae import UNLABELLED


def forward_options(loss, labels: torch.Tensor | None) -> dict:
    """The keyword arguments of the model's forward pass: the loss' own, and ``labels=`` when given."""
    return loss.forward_options if labels is None else {**loss.forward_options, "labels": labels}


def split_labels(model: nn.Module, split) -> torch.Tensor | None:
    """A split's labels for a model that trains on them (``needs_labels``: a cond-vae), else None."""
    return split.labels if model.needs_labels else None


def training_labels(model: nn.Module, split, seed: int) -> torch.Tensor | None:
    """The training split's labels as the model trains on them: all, or ``labelled`` of them."""
    labels = split_labels(model, split)
    keep = getattr(model.config, "labelled", 0)
    if labels is None or not keep:
        return labels
    return hide_labels(labels, keep, model.classes, seed)


def hide_labels(labels: torch.Tensor, keep: int, classes: int, seed: int) -> torch.Tensor:
    """``labels`` with all but ``keep`` of them replaced by −1: keep // C of each class (one more for
    the first keep mod C classes), drawn with ``seed`` — the same images for the same seed."""
    if not classes <= keep <= len(labels):
        raise VaelabError(f"labelled = {keep} training images cannot keep a label: between {classes} (one per "
                          f"class) and the {len(labels)} training images")
    generator = torch.Generator().manual_seed(seed)
    kept = []
    for c in range(classes):
        members = (labels == c).nonzero().flatten()
        wanted = keep // classes + (1 if c < keep % classes else 0)
        if wanted > len(members):
            hint = "; is --classes the data set's number of classes?" if not len(members) else ""
            raise VaelabError(f"labelled = {keep} asks for {wanted} image{'s' * (wanted != 1)} of class {c}, but the "
                              f"training split has {len(members)}{hint}")
        kept.append(members[torch.randperm(len(members), generator=generator)[:wanted]])
    chosen = torch.cat(kept)
    hidden = torch.full_like(labels, UNLABELLED)
    hidden[chosen] = labels[chosen]
    return hidden


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
