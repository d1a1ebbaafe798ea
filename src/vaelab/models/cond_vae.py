"""Conditional VAE (Sohn et al. 2015) with a label classifier q(y|x) (Kingma et al. 2014, M2).

The encoder q(z|x, y) and the decoder p(x|z, y) both see the one-hot label y: the encoder as C
extra image channels (the one-hot broadcast over the pixels), the decoder as C numbers beside
z. The prior is p(z) p(y) with p(z) = N(0, I) and p(y) uniform over the C classes. Training
sees each image with its true label and minimises, per image (Sohn et al. 2015, eq. 4, with
M2's classification term, Kingma et al. 2014, eq. 9):

    −log p(x|z, y) + β·w·KL(q(z|x, y) ‖ N(0, I)) + α·(−log q(y|x))

whose first two terms are the −ELBO of log p(x|y): what the run's `neg_elbo` reports.

Images without labels (every generic verb: reconstruct, interpolate, anomaly, likelihood,
the codec, the explorer) get the classifier's label ŷ = argmax q(y|x). The generic latent is
[z, onehot(y)], of size D + C: ``encode(x)`` is q(z|x, ŷ) beside a near point mass at
onehot(ŷ) (standard deviation ``LABEL_STD``), ``decode`` reads the label from the last C
numbers, and ``prior`` is the matching mixture Σ_k (1/C) N([0, onehot(k)], diag[1, s²]). So a
generic log-weight log p(x|z, ŷ) + log p(z, ŷ) − log q(z, ŷ|x) is M2's bound on log p(x) with
q(y|x) taken as a point mass on ŷ: the −ELBO of the conditional model plus log C (what the
anomaly scores use). The likelihood evaluation (``importance_proposal``) draws the label from
q(y|x) as well, so its IWAE bound is on log p(x) = log Σ_y p(x, y), not on log p(x, ŷ). Sampling
fixes the last C numbers to onehot(k) (``sample(n, label=k)``) or draws k ~ p(y).

Semi-supervised training (``labelled = N``; M2 proper): N training images keep their label, the
same number per class, and the others come with label −1 (``UNLABELLED``). For those, forward
also encodes and decodes the image under every label (``per_label``: C passes), and the loss is
M2's bound on −log p(x), Σ_y q(y|x)(−ELBO of log p(x|y)) − H(q(y|x)), whose gradient trains
the classifier on images without labels: q(y|x) moves to the labels under which the image is
best explained. Validation and test images keep their labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import option
from ..distributions import DiagonalGaussian, GaussianMixture, PerImageMixture
from ..errors import VaelabError
from .config import DecoderLikelihood, activation_option, dense_width_option, hidden_option, latent_dim_option, \
    model_name
from .conv import ConvDecoder, ConvEncoder, default_channels
from .likelihoods import head_for
from .losses import ConditionalELBO
from .outputs import LabelledOutput, decoded_output
from .registry import register_model
from .vae import VAE

# Spread of the label part of the generic latent: small enough that the mixture prior's C
# components (√2 apart) never overlap, so log p(z, ŷ) − log q(z, ŷ|x) is exactly −log C.
LABEL_STD = 1e-3
LABEL_LOGVAR = 2.0 * math.log(LABEL_STD)
# The label of a training image without one (semi-supervised training, ``labelled``).
UNLABELLED = -1


@dataclass
class CondVAEConfig(DecoderLikelihood):
    """``cond-vae``: a convolutional VAE conditioned on the image's class, with a classifier q(y|x)."""

    name: str = model_name("cond-vae")
    latent_dim: int = latent_dim_option(16)
    classes: int = option(10, "number of classes C of the data set's labels (0 … C−1); the generic latent is "
                              "z and the one-hot label: latent_dim + C numbers", min=2, max=1000)
    labelled: int = option(0, "training images that keep their label, the same number per class, drawn with the "
                              "run's seed; the rest train without one (M2's semi-supervised bound, Kingma et al. "
                              "2014); 0 = every image keeps its label", min=0, max=10**9)
    beta: float = option(1.0, "weight β of the KL term: 1 is the conditional VAE's ELBO", min=0.0, max=1e6)
    alpha: float = option(1.0, "weight α of the classifier's cross-entropy −log q(y|x) (Kingma et al. 2014); "
                               "with labelled = N, N_train / N is a good start", min=0.0, max=1e6)
    hidden: list[int] = hidden_option("channels per conv stage")
    activation: str = activation_option()
    dense_width: int = dense_width_option()

    def describe(self) -> str:
        beta = f", β = {self.beta:g}" if self.beta != 1 else ""
        labelled = f", {self.labelled} labelled training images" if self.labelled else ""
        return (f"{self.name}, latent dimension {self.latent_dim} + {self.classes} classes, {self.likelihood} "
                f"likelihood{beta}, α = {self.alpha:g}{labelled}")

    def loss(self) -> "ConditionalELBO":
        return ConditionalELBO(self.beta, self.alpha, semi_supervised=self.labelled > 0)


@register_model("cond-vae", CondVAEConfig)
class CondVAE(VAE):
    """Conditional VAE: q(z|x, y), p(x|z, y) and a classifier q(y|x) for images without labels (--labelled N: in training too)."""

    needs_labels = True    # the engine hands it each training image's label (model(x, labels=y))
    refits_posterior = False   # its posterior includes a near point mass on the label

    def __init__(self, config: CondVAEConfig, image_shape, encoder, decoder, head, classifier):
        super().__init__(config, image_shape, encoder, decoder, head)
        self.classes = config.classes
        self.z_dim = config.latent_dim
        self.latent_dim = config.latent_dim + config.classes     # the generic latent [z, onehot(y)]
        self.classifier = classifier

    @classmethod
    def from_config(cls, config: CondVAEConfig, image_shape):
        C, H, W = image_shape
        K, D = config.classes, config.latent_dim
        channels = config.hidden or default_channels(image_shape)
        act, width = config.activation, config.dense_width
        encoder = ConvEncoder((C + K, H, W), channels, width, 2 * D, act)     # image + one-hot label channels
        decoder = ConvDecoder(D + K, channels, width, image_shape, act)       # [z, onehot(y)] -> pixels
        classifier = ConvEncoder(image_shape, channels, width, K, act)        # image -> logits of q(y|x)
        return cls(config, image_shape, encoder, decoder, head_for(config, C), classifier)

    # -- labels --------------------------------------------------------------------------------
    def check_labels(self, labels, unlabelled_allowed: bool = False) -> None:
        """Refuse anything but integer class labels in 0 … C−1 (one tensor of any shape); with
        ``unlabelled_allowed``, −1 too: an image without a label."""
        if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.is_complex():
            raise VaelabError(f"a cond-vae model takes integer class labels; got {type(labels).__name__}")
        lowest = UNLABELLED if unlabelled_allowed else 0
        if labels.numel() and not (lowest <= int(labels.min()) and int(labels.max()) < self.classes):
            raise VaelabError(f"this cond-vae model has {self.classes} classes (labels 0–{self.classes - 1}); "
                              f"got labels {int(labels.min())}–{int(labels.max())}; set --classes")

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images -> (B, classes) logits of q(y|x)."""
        self.check_input(x)
        return self.classifier(x)

    def onehot(self, labels: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
        return F.one_hot(labels.long(), self.classes).to(dtype)

    # -- the verbs -------------------------------------------------------------------------------
    def posterior_given(self, x: torch.Tensor, labels: torch.Tensor) -> DiagonalGaussian:
        """q(z|x, y) beside the label's near point mass: a Gaussian over the generic latent (B, D + C)."""
        onehot = self.onehot(labels, x.dtype)
        maps = onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])
        mean, logvar = self.encoder(torch.cat([x, maps], dim=1)).chunk(2, dim=-1)
        return DiagonalGaussian(torch.cat([mean, onehot], dim=-1),
                                torch.cat([logvar, torch.full_like(onehot, LABEL_LOGVAR)], dim=-1))

    def _encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z|x, ŷ) with ŷ the classifier's label: what every verb that passes only images sees."""
        return self.posterior_given(x, self.classifier(x).argmax(dim=-1))

    def importance_proposal(self, x: torch.Tensor) -> PerImageMixture:
        """Σ_y q(y|x) q(z|x, y) over the generic latent, for a bound on log p(x) = log Σ_y p(x, y).

        ``encode`` fixes ŷ, so an IWAE bound from it is one on log p(x, ŷ) ≤ log p(x). Drawing the
        label from the classifier too makes the weights p(x|z, y) p(z) p(y) / (q(y|x) q(z|x, y))
        unbiased for p(x) itself: M2's bound (Kingma et al. 2014, eq. 7). The label parts of prior
        and proposal (the near point masses at onehot(y)) cancel, to float32 rounding. Mixing a share of the
        uniform into q(y|x) — so that no class goes unsampled — changed the K = 1,000 bound of the
        Fashion-MNIST run by < 0.1 nats (0.01, 0.05, 0.2 tried) and cost its ELBO 0.4–8 nats."""
        log_q_y = torch.log_softmax(self.classify(x).float(), dim=-1)
        per_label = [self.posterior_given(x, torch.full((x.shape[0],), y, device=x.device))
                     for y in range(self.classes)]                               # one pass per label: memory of one
        components = DiagonalGaussian(torch.stack([q.mean for q in per_label]), torch.stack([q.logvar for q in per_label]))
        return PerImageMixture(log_q_y.to(x.dtype), components)

    def prior(self, batch: int = 1) -> GaussianMixture:
        """p(z) p(y) on the generic latent: the uniform mixture of N([0, onehot(k)], diag[1, s²])."""
        D, K = self.z_dim, self.classes
        eye = torch.eye(K, device=self.device)
        means = torch.cat([torch.zeros(K, D, device=self.device), eye], dim=1)
        logvars = torch.cat([torch.zeros(K, D, device=self.device), torch.full_like(eye, LABEL_LOGVAR)], dim=1)
        return GaussianMixture(means, logvars, torch.zeros(K, device=self.device))

    def latent_gaussian(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The Gaussian matching the prior's moments: N(0, I) on z, the one-hot's mean 1/C and covariance on y."""
        with torch.no_grad():
            return self.prior(1).moments()

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
                samples: int | None = None) -> LabelledOutput:
        """Encode under ``labels`` (the classifier's own when None), draw z (K per image with ``samples``), decode.

        A label −1 (``UNLABELLED``) marks an image without one: it is encoded under the classifier's
        label like an unlabelled call, and also decoded under every label (``per_label``), which
        M2's bound for unlabelled images sums over."""
        logits = self.classify(x)
        guess = logits.detach().argmax(dim=-1)
        unlabelled = None
        if labels is None:
            labels = guess
        elif not isinstance(labels, torch.Tensor) or labels.shape != (x.shape[0],) or labels.is_floating_point():
            raise VaelabError(f"labels must be an integer tensor of shape ({x.shape[0]},), one per image")
        else:
            # one line, not one_hot's RuntimeError, for a class out of range
            self.check_labels(labels, unlabelled_allowed=True)
            if bool((labels == UNLABELLED).any()):
                if samples is not None:
                    raise VaelabError("images without a label (−1) are scored with one draw per label; "
                                      "samples=K needs every image labelled")
                unlabelled = labels == UNLABELLED
                labels = torch.where(unlabelled, guess, labels)
        out = self.labelled_output(x, labels, logits, generator, samples)
        if unlabelled is not None:
            out.unlabelled = unlabelled
            out.per_label = self.per_label_output(x[unlabelled], generator)
        return out

    def labelled_output(self, x: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor,
                        generator: torch.Generator | None = None, samples: int | None = None) -> LabelledOutput:
        """x encoded under ``labels`` (any shape of leading axes), z drawn, decoded."""
        posterior = self.posterior_given(x.reshape(-1, *x.shape[-3:]), labels.reshape(-1))
        posterior = DiagonalGaussian(posterior.mean.view(*labels.shape, -1), posterior.logvar.view(*labels.shape, -1))
        out = decoded_output(self, posterior, posterior.sample(generator, n=samples))
        D = self.z_dim
        z_posterior = DiagonalGaussian(posterior.mean[..., :D], posterior.logvar[..., :D])
        return LabelledOutput(**vars(out), class_logits=logits, labels=labels, z_posterior=z_posterior)

    def per_label_output(self, x: torch.Tensor, generator: torch.Generator | None = None) -> LabelledOutput:
        """The images ``x`` (B, …) each encoded and decoded under every label: fields lead with (C, B)."""
        C, B = self.classes, x.shape[0]
        labels = torch.arange(C, device=x.device).repeat_interleave(B).view(C, B)
        return self.labelled_output(x.expand(C, *x.shape), labels, None, generator)

    def label_latents(self, n: int, label: int | None, generator: torch.Generator | None) -> torch.Tensor:
        """(n, C) one-hot labels: all ``label``, or drawn from the uniform p(y) when None."""
        if label is None:
            labels = torch.randint(self.classes, (n,), generator=generator, device=self.device)
        else:
            if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < self.classes:
                raise VaelabError(f"the label must be a class number 0–{self.classes - 1}; got {label!r}")
            labels = torch.full((n,), label, dtype=torch.long, device=self.device)
        return self.onehot(labels)

    @torch.no_grad()
    def sample_latents(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0,
                       label: int | None = None) -> torch.Tensor:
        """(n, D + C) latents [T·ε, onehot(y)]; z is drawn first, so one seed gives the same z for every label."""
        z = temperature * torch.randn((n, self.z_dim), generator=generator, device=self.device)
        return torch.cat([z, self.label_latents(n, label, generator)], dim=1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0,
               label: int | None = None) -> torch.Tensor:
        """n images E[x|z, y], z ~ N(0, T²·I), y = ``label`` (or drawn from p(y))."""
        return self.decode_mean(self.sample_latents(n, generator, temperature, label))
