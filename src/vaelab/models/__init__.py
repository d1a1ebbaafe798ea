"""Models: a registry of autoencoders and VAEs sharing one verb set (DESIGN.md §2)."""

from . import ae, pixel, rd, vae  # noqa: F401  (registers the models)
from .base import Model
from .config import ModelConfig
from .objectives import LossTerms, elbo, iwae, training_loss
from .outputs import Output
from .registry import build_model, model_class, model_names, register_model

__all__ = ["Model", "ModelConfig", "LossTerms", "Output", "build_model", "elbo", "iwae", "model_class",
           "model_names", "register_model", "training_loss"]
