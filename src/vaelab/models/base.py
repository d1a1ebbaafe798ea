"""What every vaelab model shares: the verb set of DESIGN.md §2.

``encode(x)``, ``decode(z)``, ``forward(x) -> Output``, ``sample(n)``, ``reconstruct(x)``.
Images go in as float tensors in [0, 1] shaped (B, C, H, W); ``sample`` and
``reconstruct`` return the likelihood's mean (pixel probabilities or Gaussian means).

The public verbs check their input and then call the subclass' ``_encode``/``_decode``, so a
wrongly shaped batch is one clear :class:`VaelabError` from any model, never a raw torch error
from deep inside a convolution. A model never computes its own training loss: ``forward``
returns an :class:`Output` and the losses of :mod:`vaelab.models.losses` score it.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import VaelabError
from .config import ModelConfig


def device_of(module) -> torch.device:
    """The device of a module's first parameter or buffer (the CPU for one that has none)."""
    for tensors in (module.parameters(), module.buffers()) if hasattr(module, "parameters") else ():
        for t in tensors:
            return t.device
    return torch.device("cpu")


class Model(nn.Module):
    """Base class: subclasses define ``_encode``, ``_decode`` (or a ``decoder``), ``forward`` and ``sample``."""

    is_variational = False
    # The anomaly 'regret' score re-fits q(z|x) as a diagonal Gaussian: meaningful only for a model whose
    # posterior is one (not a top-down hierarchy, a label-conditioned one or a discrete code).
    refits_posterior = True
    needs_labels = False       # True: trains on (image, label) pairs (training/labels.py)
    registry_name = "?"
    # Buffers a model sets from its config rather than learns (a fine-tune keeps its own).
    config_tensors: tuple[str, ...] = ()

    def __init__(self, config: ModelConfig, image_shape: tuple[int, int, int], encoder: nn.Module | None = None,
                 decoder: nn.Module | None = None, head: nn.Module | None = None):
        super().__init__()
        self.config = config
        self.image_shape = tuple(int(s) for s in image_shape)
        # registered in this order (head, encoder, decoder): the order of parameters() and so of
        # the optimiser's state, which a resumed run's checkpoint must match
        for name, module in (("head", head), ("encoder", encoder), ("decoder", decoder)):
            if module is not None:
                setattr(self, name, module)

    @property
    def device(self) -> torch.device:
        return device_of(self)

    # -- the verbs -------------------------------------------------------------------------
    def encode(self, x: torch.Tensor):
        """(B, C, H, W) images in [0, 1] -> q(z|x) (a DiagonalGaussian) for VAEs, (B, D) codes for AEs."""
        self.check_input(x)
        return self._encode(x)

    def importance_proposal(self, x: torch.Tensor):
        """The distribution the IWAE bound draws its latents from and divides by (Burda et al. 2015):
        q(z|x) itself, unless ``encode`` fixes a discrete choice that the bound should sum over (cond-vae
        fixes the classifier's label; it proposes the mixture over labels, so its bound is on log p(x))."""
        return self.encode(x)

    def decode(self, z: torch.Tensor, *args) -> torch.Tensor:
        """(B, D) latent codes -> (B, C, H, W) likelihood parameters (logits or pre-sigmoid means)."""
        self.check_latent(z)
        return self._decode(z, *args)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, D): the posterior mean (VAE) or the code (AE)."""
        return self.encode(x)

    def likelihood(self, x_hat: torch.Tensor):
        """p(x|z) from the decoder's output."""
        return self.head(x_hat)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, C, H, W) expected image E[x|z] in [0, 1]."""
        return self.likelihood(self.decode(z)).mean

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the encoder's most likely code: x ↦ E[x | z = mode q(z|x)]."""
        return self.decode_mean(self.encode_mean(x))

    def latent_gaussian(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The Gaussian (mean (D,), covariance (D, D)) the model draws latents from, for sampling,
        traversals, latent maps and the explorer's sliders."""
        raise VaelabError(f"a {self.registry_name} model has no Gaussian latent space (traversals, latent maps and "
                          "the explorer need one)")

    @torch.no_grad()
    def sample_latents(self, n: int, generator: torch.Generator | None = None,
                       temperature: float = 1.0) -> torch.Tensor:
        """(n, D) codes z = m + T·L·ε, ε ~ N(0, I), where N(m, LLᵀ) is :meth:`latent_gaussian`.

        The Cholesky factor is taken in float64 with a tiny jitter: fitted code covariances can
        be singular. A model whose latent is not Gaussian overrides this.
        """
        mean, cov = self.latent_gaussian()
        D = mean.shape[0]
        cov = cov.double() + 1e-6 * torch.eye(D, dtype=torch.float64, device=cov.device)
        chol = torch.linalg.cholesky(cov).to(mean.dtype)
        eps = torch.randn((n, D), generator=generator, device=mean.device)
        return mean + temperature * eps @ chol.T

    def auxiliary_parameters(self) -> list[nn.Parameter]:
        """Parameters that the loss' own second optimiser trains and the main one must not (FactorVAE's
        discriminator); saved with the model, stepped by ``loss.auxiliary_optimizer`` (models/losses.py)."""
        return []

    @property
    def distributed_training(self) -> bool:
        """Whether DDP can train it: not when state is updated outside the gradient step — a second
        optimiser's parameters (whose step runs outside DDP, so the processes' copies would drift
        apart), or a VQ codebook each process would move on its own shard (vq-vae says False)."""
        return not self.auxiliary_parameters()

    def decoded_dims(self) -> range:
        """The latent coordinates ``decode`` reads (all of them, unless a model says otherwise): what
        traversals and the explorer's sliders move first."""
        return range(self.latent_dim)

    def entropy_model(self):
        """What the codec codes this model's latents with (models/entropy_models.py)."""
        raise VaelabError(f"the codec cannot code with a {self.registry_name} model: it has no entropy model")

    # -- checks ------------------------------------------------------------------------------
    def check_input(self, x) -> None:
        """Refuse anything but a float (B, C, H, W) batch of this model's image shape."""
        C, H, W = self.image_shape
        if not isinstance(x, torch.Tensor):
            raise VaelabError(f"this model takes a float tensor of images shaped (B, {C}, {H}, {W}); "
                              f"got {type(x).__name__}")
        if not x.is_floating_point():
            raise VaelabError(f"this model takes float images in [0, 1]; got a {str(x.dtype).replace('torch.', '')} "
                              "tensor (divide 8-bit images by 255)")
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise VaelabError(f"this model takes images of shape (B, {C}, {H}, {W}); got {tuple(x.shape)}")

    def check_latent(self, z) -> None:
        """Refuse anything but a float (B, D) batch of latent codes."""
        if not isinstance(z, torch.Tensor) or not z.is_floating_point() or z.dim() != 2 \
                or z.shape[1] != self.latent_dim:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise VaelabError(f"this model decodes float latent codes of shape (B, {self.latent_dim}); got {got}")

    def extra_repr(self) -> str:
        return f"{self.registry_name}: image {self.image_shape}, latent {self.latent_dim}"


class EncoderDecoder(Model):
    """A model built from an encoder/decoder pair around a ``latent_dim`` bottleneck and a likelihood head.

    Registered subclasses name their ``backbones`` (``mlp_backbones`` or ``conv_backbones``);
    ``encoder_outputs`` is how many numbers the encoder gives per image.
    """

    backbones = None

    def __init__(self, config: ModelConfig, image_shape, encoder: nn.Module, decoder: nn.Module, head: nn.Module):
        super().__init__(config, image_shape, encoder, decoder, head)
        self.latent_dim = config.latent_dim

    @staticmethod
    def encoder_outputs(config: ModelConfig) -> int:
        return config.latent_dim

    @classmethod
    def from_config(cls, config: ModelConfig, image_shape):
        from .likelihoods import head_for

        encoder, decoder = cls.backbones(image_shape, config, cls.encoder_outputs(config))
        return cls(config, image_shape, encoder, decoder, head_for(config, image_shape[0]))
