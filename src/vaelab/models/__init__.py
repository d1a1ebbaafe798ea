"""Models: a registry of autoencoders and VAEs sharing one verb set (DESIGN.md §2).

A new model is one file (its class and config dataclass, ``@register_model``) and one import
line here; docs/DEVELOPING.md walks through an example.
"""

from . import ae, cond_vae, factor_vae, hvae, pixel, rd, vae, vq_vae  # noqa: F401  (registers the models)
from .base import Model, device_of
from .config import ModelConfig
from .losses import ELBO, IWAE, LossTerms, RateDistortion, elbo, iwae, kl_warmup_weight, log_weights
from .outputs import Output
from .registry import build_model, config_class, model_class, model_entry, model_names, register_model, unregister_model

__all__ = ["ELBO", "IWAE", "LossTerms", "Model", "ModelConfig", "Output", "RateDistortion", "build_model",
           "config_class", "device_of", "elbo", "iwae", "kl_warmup_weight", "log_weights", "model_class",
           "model_entry", "model_names", "register_model", "unregister_model"]
