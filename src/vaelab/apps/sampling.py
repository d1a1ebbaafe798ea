"""Sampling: new images from the captured distribution (thesis ch. 3: "generate new data
based on the captured probability distribution").

A VAE draws z ~ p(z) = N(0, I) and decodes it; a temperature T draws z ~ N(0, T²·I) instead
(T < 1 trades variety for typicality). A plain autoencoder draws from the Gaussian fitted to
its training codes (the model's ``latent_gaussian()``). The picture is either the
likelihood's mean E[x|z] (smooth) or one sample x ~ p(x|z) (what the model actually
generates, e.g. binary pixels for a Bernoulli decoder).

A label-conditioned model (cond-vae) samples p(x|z, y) with the class y fixed by ``label``
(a class number, or a class name the run's data set gives) or drawn from p(y) when None.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from ..errors import VaelabError
from ..imageio import to_uint8
from .common import generator


def _is_number(text: str) -> bool:
    """An ASCII integer of at most 9 digits ("²" and "--5" are not, and int() of them would raise)."""
    return re.fullmatch(r"-?[0-9]{1,9}", text) is not None


def resolve_label(model, label: int | str, class_names=()) -> int:
    """A class number from a number or one of ``class_names`` (case-insensitive); one-line refusals."""
    if not model.needs_labels:
        raise VaelabError(f"a {model.registry_name} model is not conditioned on labels; --label needs a label-"
                          "conditioned model (cond-vae)")
    names = [str(name) for name in class_names]
    text = str(label).strip()
    if _is_number(text):
        number = int(text)
    elif text.lower() in [name.lower() for name in names]:
        number = [name.lower() for name in names].index(text.lower())
    else:
        known = f"; its classes: {', '.join(f'{i}={name}' for i, name in enumerate(names))}" if names else ""
        raise VaelabError(f"unknown label {text!r}: give a class number 0–{model.classes - 1} or a class name{known}")
    if not 0 <= number < model.classes:
        raise VaelabError(f"label {number} is out of range: this model has classes 0–{model.classes - 1}")
    return number


def run_label(run, label: int | str) -> int:
    """``--label`` of a run: a class number, or a class name of the run's data set (loaded only for a name)."""
    from ..data import load_data

    resolve_label(run.model, 0)              # a model without labels refuses before any data is read
    if _is_number(str(label).strip()):
        return resolve_label(run.model, label)
    try:
        names = load_data(run.config.data).class_names
    except VaelabError as exc:
        raise VaelabError(f"cannot read the class names of the run's data set ({exc}); give --label as a number") from None
    return resolve_label(run.model, label, names)


def sample_latents(model, n: int, temperature: float = 1.0, seed: int | None = None,
                   label: int | None = None) -> torch.Tensor:
    """(n, D) codes the model draws (``model.sample_latents``): z = m + T·L·ε for a latent Gaussian
    N(m, LLᵀ), the learned density's for a rate–distortion model; ``label``: the class a
    label-conditioned model generates."""
    if n < 1:
        raise VaelabError(f"the number of samples must be at least 1, got {n}")
    if not temperature > 0:
        raise VaelabError(f"the temperature must be positive, got {temperature}")
    if label is not None:
        return model.sample_latents(n, generator(model, seed), temperature, label=resolve_label(model, label))
    return model.sample_latents(n, generator(model, seed), temperature)


@torch.no_grad()
def decode_latents(model, z: torch.Tensor, mean: bool = True, seed: int | None = None) -> np.ndarray:
    """(B, D) codes -> uint8 (B, C, H, W): E[x|z] when ``mean``, else one draw x ~ p(x|z)."""
    likelihood = model.likelihood(model.decode(z))
    x = likelihood.mean if mean else likelihood.sample(generator(model, seed))
    return to_uint8(x)


def sample_images(model, n: int, temperature: float = 1.0, seed: int | None = None, mean: bool = True,
                  label: int | None = None) -> np.ndarray:
    """Draw ``n`` new images: uint8 (n, C, H, W).

    ``mean=True`` shows E[x|z] (for a Bernoulli decoder: pixel probabilities as grey levels);
    ``mean=False`` draws the pixels too. With a ``seed`` the result is reproducible.
    ``label``: the class number a label-conditioned model generates (refused by other models).
    """
    z = sample_latents(model, n, temperature, seed, label)
    # The pixel noise gets its own seed so changing ``mean`` never changes the codes.
    return decode_latents(model, z, mean, None if seed is None else seed + 1)
