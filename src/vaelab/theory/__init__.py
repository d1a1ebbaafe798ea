"""The thesis, chapters 1–3, as code ("On variational autoencoders: theory and applications").

One concept per module, each citing the numbered items it implements:

* :mod:`~vaelab.theory.activations` — Def. 1.1.1, Ex. 1.1.2
* :mod:`~vaelab.theory.networks`    — Defs. 1.1.3–1.1.6, Remark 1.1.5, Defs. 2.1.4–2.1.7, Lemma 2.1.6
* :mod:`~vaelab.theory.losses`      — Defs. 1.2.1, 1.2.3, 2.1.1, Exs. 1.2.2, 2.1.2, Remark 2.1.3
* :mod:`~vaelab.theory.optim`       — Thm. 1.2.4, Lemma 1.2.5, Cor. 1.2.6, Thm. 1.2.7, Adam
* :mod:`~vaelab.theory.images`      — Def. 1.3.1 – Prop. 1.3.9
* :mod:`~vaelab.theory.divergences` — Defs. 3.1.1–3.1.3, Remark 3.1.4
* :mod:`~vaelab.theory.demo`        — `vaelab theory-demo`

``docs/theory-map.md`` maps every numbered item to its code and its test.
"""

from __future__ import annotations

from .activations import ACTIVATIONS, Activation, get_activation, leaky_relu, relu, sigmoid
from .divergences import (
    cross_entropy_diag_gaussians,
    cross_entropy_monte_carlo,
    entropy_diag_gaussian,
    entropy_monte_carlo,
    kl_diag_gaussians,
    kl_monte_carlo,
)
from .images import (
    PIXEL_MAX,
    AvgPool,
    Convolution,
    ImageLayer,
    ImageOperator,
    MaxPool,
    MinPool,
    avg_pool,
    channel_kind,
    check_pixels,
    convolve,
    flatten_image,
    max_pool,
    min_pool,
    output_size,
    to_float,
    to_uint8,
    unflatten_image,
)
from .losses import (
    bce_loss,
    bce_with_logits_loss,
    empirical_risk,
    linear_error,
    mse_loss,
    risk,
    squared_error,
)
from .networks import Autoencoder, Decoder, DenseLayer, DenseNetwork, Encoder, Neuron, compose
from .optim import (
    OPTIMIZERS,
    SCHEDULES,
    DescentResult,
    StepSizeSchedule,
    gradient_descent,
    make_optimizer,
    make_scheduler,
    step_size_schedule,
    stochastic_gradient_descent,
)

__all__ = [
    "ACTIVATIONS",
    "OPTIMIZERS",
    "PIXEL_MAX",
    "SCHEDULES",
    "Activation",
    "Autoencoder",
    "AvgPool",
    "Convolution",
    "Decoder",
    "DenseLayer",
    "DenseNetwork",
    "DescentResult",
    "Encoder",
    "ImageLayer",
    "ImageOperator",
    "MaxPool",
    "MinPool",
    "Neuron",
    "StepSizeSchedule",
    "avg_pool",
    "bce_loss",
    "bce_with_logits_loss",
    "channel_kind",
    "check_pixels",
    "compose",
    "convolve",
    "cross_entropy_diag_gaussians",
    "cross_entropy_monte_carlo",
    "empirical_risk",
    "entropy_diag_gaussian",
    "entropy_monte_carlo",
    "flatten_image",
    "get_activation",
    "gradient_descent",
    "kl_diag_gaussians",
    "kl_monte_carlo",
    "leaky_relu",
    "linear_error",
    "make_optimizer",
    "make_scheduler",
    "max_pool",
    "min_pool",
    "mse_loss",
    "output_size",
    "relu",
    "risk",
    "sigmoid",
    "squared_error",
    "step_size_schedule",
    "stochastic_gradient_descent",
    "to_float",
    "to_uint8",
    "unflatten_image",
]
