"""Training objectives — losses live outside the models (DESIGN.md §2).

Every objective returns :class:`LossTerms`, each term per image in nats:

    reconstruction = −log p(x|z)          (the thesis' BCE/MSE losses, Ex. 2.1.2, summed)
    kl             = KL(q(z|x) ‖ p(z))    (Def. 3.1.1; 0 for plain autoencoders)
    loss           = what the optimiser minimises

The ELBO is log p(x) ≥ E_q[log p(x|z)] − KL(q‖p); with β (the β-VAE) the loss is
reconstruction + β·KL. The IWAE bound (Burda et al. 2015) averages K importance weights
inside the logarithm and is tighter for K > 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..distributions import DiagonalGaussian
from ..errors import VaelabError
from .outputs import Output


@dataclass
class LossTerms:
    loss: torch.Tensor            # (B,) minimised
    reconstruction: torch.Tensor  # (B,) −log p(x|z), nats
    kl: torch.Tensor              # (B,) KL(q‖p), nats

    @property
    def negative_elbo(self) -> torch.Tensor:
        return self.reconstruction + self.kl

    def means(self) -> dict[str, torch.Tensor]:
        """Batch means as 0-d tensors (no host synchronisation until someone reads them)."""
        return {"loss": self.loss.mean(), "reconstruction": self.reconstruction.mean(), "kl": self.kl.mean()}


def kl_term(output: Output) -> torch.Tensor:
    """KL(q‖p) per image: closed form for Gaussian priors, else a one-sample estimate."""
    if output.posterior is None:
        return torch.zeros(output.z.shape[0], device=output.z.device)
    prior = output.prior
    if prior is None:
        return output.posterior.kl()
    if isinstance(prior, DiagonalGaussian):
        return output.posterior.kl(prior)
    return output.posterior.log_prob(output.z) - prior.log_prob(output.z)


def elbo(output: Output, x: torch.Tensor, beta: float = 1.0) -> LossTerms:
    """Negative ELBO terms for one posterior sample (for an AE: the reconstruction loss)."""
    reconstruction = -output.likelihood.log_prob(x)
    kl = kl_term(output).float()
    return LossTerms(loss=reconstruction + beta * kl, reconstruction=reconstruction, kl=kl)


def log_importance_weights(model, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
                           posterior: DiagonalGaussian | None = None) -> torch.Tensor:
    """(K, B) log w_k = log p(x, z_k) − log q(z_k|x) with z_k ~ q(z|x)."""
    posterior = model.encode(x) if posterior is None else posterior
    z = posterior.sample(generator, n=k)                       # (K, B, D)
    K, B, D = z.shape
    x_hat = model.decode(z.reshape(K * B, D))                  # (K·B, C, H, W)
    x_hat = x_hat.view(K, B, *x_hat.shape[1:])
    log_px_z = model.likelihood(x_hat).log_prob(x)             # (K, B)
    log_pz = model.prior(B).log_prob(z)                        # (K, B)
    log_qz = posterior.log_prob(z)                             # (K, B)
    return log_px_z + log_pz - log_qz


def iwae(model, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> LossTerms:
    """Negative IWAE bound −log (1/K) Σ_k w_k per image; K = 1 is the ELBO."""
    posterior = model.encode(x)
    log_w = log_importance_weights(model, x, k, generator, posterior)
    bound = torch.logsumexp(log_w, dim=0) - math.log(k)
    kl = posterior.kl(model.prior(x.shape[0]))
    # The split into reconstruction and KL is reported for the logs; the bound is what trains.
    return LossTerms(loss=-bound, reconstruction=-bound - kl, kl=kl)


Objective = Callable[..., LossTerms]


def training_loss(model, x: torch.Tensor, kl_weight: float = 1.0) -> LossTerms:
    """The loss the engine minimises for ``model`` on a batch ``x`` (values in [0, 1]).

    ``kl_weight`` is the KL warm-up factor in [0, 1] that the engine anneals; it multiplies β.
    """
    name = model.objective
    config = model.config
    if name == "elbo":
        return elbo(model(x), x, beta=config.beta * kl_weight)
    if name == "iwae":
        if not model.is_variational:
            raise VaelabError("the iwae objective needs a VAE (a model with a posterior)")
        return iwae(model, x, config.iw_samples)
    custom = getattr(model, "training_loss", None)
    if custom is not None:
        return custom(x, kl_weight)
    raise VaelabError(f"unknown objective '{name}'; choose elbo or iwae")
