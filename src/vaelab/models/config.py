"""The ``[model]`` section of a run's config: each registered model declares its own.

``ModelConfig`` holds only ``name``; every model registers a dataclass deriving from it with
the settings that model uses and no others (``register_model("conv-vae", ConvVAEConfig)``).
Reading a ``[model]`` table, its ``name`` picks that class, so a key the model does not take
(``latent_dim`` for ``conv-rd``, ``rd_context`` for ``conv-vae``) is refused by name instead
of being silently ignored.

The field helpers below are shared by the model families so that one setting means one thing,
with one reason, wherever it appears.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..config import option

DEFAULT_MODEL = "conv-vae"


def model_name(name: str):
    """The ``name`` field of a model's own config class, defaulting to that model."""
    return option(name, "registry name of the model (see `vaelab models`)")


@dataclass
class ModelConfig:
    """Base of every model's config: the registry name; subclasses add the model's settings."""

    name: str = model_name(DEFAULT_MODEL)

    @classmethod
    def section_for(cls, data: Mapping[str, Any], where: str = "model") -> type[ModelConfig]:
        """The config class of the model ``data["name"]`` names (what the registry says)."""
        from ..errors import VaelabError
        from .registry import model_entry

        name = data.get("name", cls.__dataclass_fields__["name"].default)
        if not isinstance(name, str):
            raise VaelabError(f"{where or 'model'}.name must be a string, got {name!r}")
        config = model_entry(name).config
        if not issubclass(config, cls):
            raise VaelabError(f"{where or 'model'}.name '{name}' is not a {cls.__name__}")
        return config

    def describe(self) -> str:
        """One line for reports: the model and the settings that matter most."""
        return self.name

    @classmethod
    def unknown_setting(cls, key: str, where: str, known: list[str]) -> str:
        import difflib

        model = cls.__dataclass_fields__["name"].default
        hint = difflib.get_close_matches(key, known, n=1)
        suggestion = f"did you mean '{hint[0]}'? " if hint else ""
        settings = ", ".join(k for k in known if k != "name")
        return f"'{where}' is not a setting of the {model} model ({suggestion}it takes: {settings})"


# -- fields shared by model families (each call makes a new dataclass field) -----------------------
def latent_dim_option(default: int = 32):
    return option(default, "size of the bottleneck n_b (Def. 2.1.7): latent dimensions", min=1, max=4096)


def hidden_option(what: str = "hidden widths (MLP) or channels per stage (conv)"):
    return option([], f"{what}; empty = the model's default", min=1, max=65536)


def activation_option():
    return option("relu", "activation φ of every hidden layer (Def. 1.1.1): relu, leaky_relu, elu, gelu, tanh, "
                          "sigmoid, softplus (a parameter after a colon: leaky_relu:0.2)")


def likelihood_option():
    return option("bernoulli", "pixel likelihood p(x|z): bernoulli (BCE from logits), continuous-bernoulli (its "
                               "normalised form for grey levels) or gaussian (MSE)",
                  choices=("bernoulli", "continuous-bernoulli", "gaussian"))


def ar_kernel_option():
    return option(5, "size of the first masked convolution (odd); how far back each pixel looks", min=3, max=15)


def ar_layers_option():
    return option(2, "masked layers of the autoregressive head (the first 'A', the rest 3×3 'B')", min=1, max=12)


def dense_width_option():
    return option(256, "width of the dense layer between conv features and latent (0 = none)", min=0, max=65536)


@dataclass
class DecoderLikelihood(ModelConfig):
    """Settings of models whose decoder ends in a pixel likelihood p(x|z) (models/likelihoods.py)."""

    likelihood: str = likelihood_option()
    sigma: float = option(0.1, "gaussian likelihood: fixed pixel noise σ (initial value when learned)",
                          min=1e-4, max=10.0)
    learn_sigma: bool = option(False, "gaussian likelihood: learn one σ per channel instead of fixing it")
