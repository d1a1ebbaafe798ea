"""A hierarchical VAE with two stochastic layers and top-down inference.

Generative model (a two-layer hierarchy, Sønderby et al. 2016 "Ladder Variational Autoencoders"):

    p(z₂) = N(0, I),   p(z₁ | z₂) = N(μ_p(z₂), diag σ²_p(z₂)),   p(x | z₁)

The image is generated from the bottom layer; the top layer acts through p(z₁|z₂), a learned,
data-shaped prior for z₁ (the marginal ∫ p(z₁|z₂) p(z₂) dz₂ is a continuous mixture). Inference
runs in the same top-down order: the encoder makes one bottom-up pass over x, giving features h
and q(z₂|x); then, for a drawn z₂, z₁'s posterior is the generative model's own prediction
corrected by the data (NVAE's residual form, Vahdat & Kautz 2020, §3.2):

    q(z₁ | x, z₂) = N(μ_p(z₂) + Δμ(h, z₂),  σ²_p(z₂)·Δσ²(h, z₂))

so the top-down network is shared by inference and generation, and the KL of the bottom layer
depends only on the correction: ½ Σ (Δμ²/σ²_p + Δσ² − log Δσ² − 1).

What the design rests on (10 epochs of configs/fmnist-hvae.toml, test −ELBO; the flat conv VAE
of configs/fmnist-conv-vae.toml: 238.75): the LVAE's precision-weighted merge of a bottom-up
estimate with the prediction in place of the residual form, 241.76; a decoder that also sees
z₂ (NVAE's skip), 239.59 — the top layer then carried 10 of the 11 nats and the bottom layer
collapsed; this design, 238.02, with both layers in use (24 active dimensions of z₁, 8 of z₂).

The KL of the ELBO is then exact per layer given the drawn z₂ (Def. 3.1.1, twice):

    KL = KL(q(z₂|x) ‖ N(0, I)) + KL(q(z₁|x, z₂) ‖ p(z₁|z₂))

To the rest of vaelab the latent is one flat vector z = [z₂, z₁] of ``top_latent_dim +
latent_dim`` numbers: ``decode(z)`` takes it (and reads its z₁ part), the posterior and the
prior are distribution objects over it (:class:`TopDownPosterior`, :class:`HierarchicalPrior`),
so the ELBO, the IWAE bound, the anomaly scores, interpolation and the codec work unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..config import option
from ..distributions import DiagonalGaussian
from ..theory import get_activation
from .ae import AEConfig
from .config import ar_kernel_option, ar_layers_option, dense_width_option, model_name
from .conv import ConvDecoder, ConvEncoder, default_channels
from .losses import ELBO, IWAE, Loss
from .pixel import AutoregressiveBernoulli, check_pixel_head, pixel_head
from .registry import register_model
from .vae import VAE


@dataclass
class HVAEConfig(AEConfig):
    """``hvae``: a two-layer hierarchical VAE on the conv backbone; ``latent_dim`` is the bottom layer z₁."""

    name: str = model_name("hvae")
    top_latent_dim: int = option(16, "dimensions of the top stochastic layer z₂ (latent_dim is the bottom layer "
                                     "z₁'s)", min=1, max=4096)
    dense_width: int = dense_width_option()
    top_down_width: int = option(256, "width of the hidden layer of the networks between the stochastic layers",
                               min=1, max=65536)
    beta: float = option(1.0, "weight β of the KL term (1 is the VAE's ELBO)", min=0.0, max=1e6)
    objective: str = option("elbo", "training objective: elbo (β-weighted) or iwae (K samples, Burda et al. 2015)",
                            choices=("elbo", "iwae"))
    iw_samples: int = option(1, "samples K per image for the iwae objective", min=1, max=4096)
    ar_features: int = option(0, "channels of an autoregressive pixel head (pixel-vae's masked convolutions) "
                                 "that ends the decoder; 0 = none, a factorised likelihood", min=0, max=512)
    ar_kernel: int = ar_kernel_option()
    ar_layers: int = ar_layers_option()

    def describe(self) -> str:
        extra = f", IWAE with K = {self.iw_samples}" if self.objective == "iwae" else \
            (f", β = {self.beta:g}" if self.beta != 1 else "")
        head = f", a {self.ar_layers}-layer pixel head of {self.ar_features} channels" if self.ar_features else ""
        return (f"{self.name}, latents z₂ {self.top_latent_dim} → z₁ {self.latent_dim}, "
                f"{self.likelihood} likelihood{head}{extra}")

    def loss(self) -> Loss:
        return IWAE(self.iw_samples) if self.objective == "iwae" else ELBO(self.beta)


def _gaussian_net(inputs: int, width: int, outputs: int, activation: str) -> nn.Sequential:
    """inputs → width → 2·outputs (a mean and a log-variance per dimension)."""
    return nn.Sequential(nn.Linear(inputs, width), get_activation(activation), nn.Linear(width, 2 * outputs))


# Log-variances a network emits are squashed softly into ±LOGVAR_BOUND (σ from 0.018 to 55): the
# conditional prior sits in a KL's denominator, and an unbounded one let it reach 10¹⁰ nats.
LOGVAR_BOUND = 8.0


def _split(params: torch.Tensor) -> DiagonalGaussian:
    """A network's (…, 2·D) output as N(mean, diag exp(logvar)), the log-variance softly bounded."""
    mean, logvar = params.chunk(2, dim=-1)
    return DiagonalGaussian(mean, LOGVAR_BOUND * torch.tanh(logvar / LOGVAR_BOUND))


def corrected(prediction: DiagonalGaussian, correction: DiagonalGaussian) -> DiagonalGaussian:
    """The residual posterior N(μ_p + Δμ, σ²_p·Δσ²): a prediction shifted and rescaled by a correction
    whose ``mean`` is Δμ and ``logvar`` is log Δσ²."""
    return DiagonalGaussian(prediction.mean + correction.mean, prediction.logvar + correction.logvar)


class HierarchicalPrior:
    """p(z) = N(z₂; 0, I)·p(z₁ | z₂) over the flat z = [z₂, z₁], for a batch of ``batch`` images."""

    def __init__(self, top_down: nn.Module, top_dim: int, bottom_dim: int, batch: int, device, dtype=torch.float32):
        self.top_down = top_down
        self.top_dim, self.bottom_dim = top_dim, bottom_dim
        self.batch, self.device, self.dtype = batch, device, dtype

    def split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return z[..., :self.top_dim], z[..., self.top_dim:]

    def conditional(self, z2: torch.Tensor) -> DiagonalGaussian:
        """p(z₁ | z₂) for top-layer latents (…, D₂)."""
        return _split(self.top_down(z2))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.log_prob_per_dim(z).sum(-1)

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        """(…, D) log densities: each z₂ coordinate under N(0, 1), each z₁ coordinate under p(z₁|z₂)."""
        z2, z1 = self.split(z)
        top = DiagonalGaussian.standard(z2.shape, device=z.device, dtype=z.dtype)
        return torch.cat([top.log_prob_per_dim(z2), self.conditional(z2).log_prob_per_dim(z1)], dim=-1)

    def sample(self, generator: torch.Generator | None = None, n: int | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """(n, D) ancestral draws: z₂ ~ N(0, T²·I), then z₁ = μ_p(z₂) + T·σ_p(z₂)·ε."""
        n = self.batch if n is None else n
        z2 = temperature * torch.randn((n, self.top_dim), generator=generator, device=self.device, dtype=self.dtype)
        below = self.conditional(z2)
        eps = torch.randn((n, self.bottom_dim), generator=generator, device=self.device, dtype=self.dtype)
        return torch.cat([z2, below.mean + temperature * below.std * eps], dim=-1)

    @torch.no_grad()
    def moments(self, draws: int = 16384) -> tuple[torch.Tensor, torch.Tensor]:
        """The prior's mean (D,) and covariance (D, D), from ``draws`` ancestral samples: the Gaussian
        the codec, traversals and the explorer use.

        Computed the same way wherever the model lives — on the CPU, in float64, from a seeded CPU
        generator, rounded to 10⁻⁹ — because the codec builds its tables from it: a file written
        on a GPU must decode on a CPU.
        """
        import copy

        generator = torch.Generator().manual_seed(0)
        top_down = copy.deepcopy(self.top_down).to("cpu", torch.float64)
        cpu = HierarchicalPrior(top_down, self.top_dim, self.bottom_dim, draws, "cpu", torch.float64)
        z = cpu.sample(generator, draws)
        mean = z.mean(0)
        centred = z - mean
        cov = centred.T @ centred / (draws - 1)
        rounded = [torch.round(t * 1e9) / 1e9 for t in (mean, cov)]
        return tuple(t.to(self.device, torch.float32) for t in rounded)


class TopDownPosterior:
    """q(z₂|x)·q(z₁|x, z₂) over the flat z = [z₂, z₁]: what ``encode`` returns for the hierarchical VAE.

    ``sample``/``reparameterise`` draw z₂ first and then z₁ from its posterior at that z₂, so the
    noise ε ~ N(0, I) of shape (…, B, D) maps to latents as a diagonal Gaussian's z = μ + σ·ε
    does, only in two steps. ``mean``, ``logvar`` (and ``std``, ``var``) describe the *mean path*
    — z₂'s mean, then z₁'s posterior at that z₂ — which is the code that reconstruction, the
    codec and the embeddings use.
    """

    def __init__(self, top: DiagonalGaussian, features: torch.Tensor, correction: nn.Module, prior: HierarchicalPrior):
        self.top, self.features, self.correction, self.prior = top, features, correction, prior
        along_mean = self.bottom(top.mean)
        self.mean = torch.cat([top.mean, along_mean.mean], dim=-1)
        self.logvar = torch.cat([top.logvar, along_mean.logvar], dim=-1)

    std, var = DiagonalGaussian.std, DiagonalGaussian.var     # of the mean path, from its log-variances

    def bottom(self, z2: torch.Tensor, prediction: DiagonalGaussian | None = None) -> DiagonalGaussian:
        """q(z₁ | x, z₂) for top latents (…, B, D₂): the prior's prediction p(z₁|z₂) (computed here unless
        given), corrected from the features."""
        h = self.features.expand(*z2.shape[:-1], self.features.shape[-1])
        prediction = self.prior.conditional(z2) if prediction is None else prediction
        return corrected(prediction, _split(self.correction(torch.cat([h, z2], dim=-1))))

    def reparameterise(self, eps: torch.Tensor) -> torch.Tensor:
        """Noise (…, B, D) → latents (…, B, D): z₂ = μ₂ + σ₂·ε₂, then z₁ = μ_q(z₂) + σ_q(z₂)·ε₁."""
        D2 = self.prior.top_dim
        z2 = self.top.mean + self.top.std * eps[..., :D2]
        below = self.bottom(z2)
        return torch.cat([z2, below.mean + below.std * eps[..., D2:]], dim=-1)

    def sample(self, generator: torch.Generator | None = None, n: int | None = None) -> torch.Tensor:
        shape = self.mean.shape if n is None else (n, *self.mean.shape)
        return self.reparameterise(torch.randn(shape, generator=generator, device=self.mean.device,
                                               dtype=self.mean.dtype))

    rsample = sample

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.log_prob_per_dim(z).sum(-1)

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        z2, z1 = self.prior.split(z)
        return torch.cat([self.top.log_prob_per_dim(z2), self.bottom(z2).log_prob_per_dim(z1)], dim=-1)

    def kl_per_dim_to(self, prior: HierarchicalPrior, z: torch.Tensor) -> torch.Tensor:
        """(…, B, D): KL(q(z₂|x) ‖ N(0, I)) per z₂ dimension, then KL(q(z₁|x, z₂) ‖ p(z₁|z₂)) per z₁
        dimension at the drawn z₂ — both closed form (Def. 3.1.1)."""
        z2 = prior.split(z)[0]
        top = self.top.kl_per_dim(None).expand(*z2.shape)
        prediction = prior.conditional(z2)        # once: both the posterior's base and the KL's other side
        return torch.cat([top, self.bottom(z2, prediction).kl_per_dim(prediction)], dim=-1)

    def kl_to(self, prior: HierarchicalPrior, z: torch.Tensor) -> torch.Tensor:
        """(B,) the ELBO's KL at the drawn latents (averaged over K draws per image when z is (K, B, D))."""
        kl = self.kl_per_dim_to(prior, z).sum(-1)
        return kl.mean(0) if z.dim() == 3 else kl


@register_model("hvae", HVAEConfig)
class HierarchicalVAE(VAE):
    """Hierarchical VAE: two stochastic layers z₂ → z₁ → x with top-down inference (LVAE, NVAE)."""

    refits_posterior = False   # its posterior is top-down, not one diagonal Gaussian

    @classmethod
    def from_config(cls, config: HVAEConfig, image_shape):
        from .likelihoods import head_for

        C, H, W = image_shape
        if config.ar_features:
            check_pixel_head(config)
        channels = config.hidden or default_channels(image_shape)
        features = config.dense_width or config.top_down_width
        # conv stages → one dense layer of features h: the posteriors below are single linear maps of
        # h (and z₂), as deep as the flat conv VAE's
        encoder = ConvEncoder(image_shape, channels, 0, features, config.activation)
        decoded = (config.ar_features, H, W) if config.ar_features else image_shape   # the head's maps, or pixels
        decoder = ConvDecoder(config.latent_dim, channels, config.dense_width, decoded,
                              config.activation)
        model = cls(config, image_shape, encoder, decoder, head_for(config, image_shape[0]))
        model.latent_dim = config.top_latent_dim + config.latent_dim
        act, width = config.activation, config.top_down_width
        model.up_activation = get_activation(act)
        model.up_top = nn.Linear(features, 2 * config.top_latent_dim)                 # q(z₂|x)
        model.top_down = _gaussian_net(config.top_latent_dim, width, config.latent_dim, act)  # p(z₁|z₂)
        # p(z₁|z₂) starts as N(0, I), whatever z₂: training begins as a flat VAE over z₁ and lets the
        # top layer take over only what it predicts well.
        nn.init.zeros_(model.top_down[-1].weight)
        nn.init.zeros_(model.top_down[-1].bias)
        # (Δμ, log Δσ²) of z₁'s posterior from the features and the drawn z₂
        model.correction = nn.Linear(features + config.top_latent_dim, 2 * config.latent_dim)
        if config.ar_features:
            model.ar_head = pixel_head(config, C)
        return model

    def entropy_model(self):
        """The posterior means of z₁ under the prior's moment-matched Gaussian; z₂ is not sent (the decoder
        never reads it)."""
        from .entropy_models import GaussianPriorEntropyModel

        return GaussianPriorEntropyModel(self, sent_dims=self.decoded_dims())

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        """p(x | z₁): the image is generated from the bottom layer; z₂ acts through p(z₁|z₂)."""
        return self.decoder(z[..., self.config.top_latent_dim:])

    def likelihood(self, x_hat: torch.Tensor):
        """p(x|z): the pixel head's autoregressive Bernoulli when there is one, else the config's likelihood."""
        if self.config.ar_features:
            return AutoregressiveBernoulli(x_hat, self.ar_head, self.image_shape[0])
        return super().likelihood(x_hat)

    def prior(self, batch: int = 1) -> HierarchicalPrior:
        dtype = next(self.top_down.parameters()).dtype
        return HierarchicalPrior(self.top_down, self.config.top_latent_dim, self.config.latent_dim, batch, self.device,
                                 dtype)

    def decoded_dims(self) -> range:
        """The latent coordinates the decoder reads: z₁'s (z₂ shapes the image only through p(z₁|z₂))."""
        return range(self.config.top_latent_dim, self.latent_dim)

    def _encode(self, x: torch.Tensor) -> TopDownPosterior:
        """One bottom-up pass: features h and q(z₂|x); z₁'s posterior follows per drawn z₂."""
        h = self.up_activation(self.encoder(x))
        return TopDownPosterior(_split(self.up_top(h)), h, self.correction, self.prior(x.shape[0]))

    def latent_gaussian(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The Gaussian matching the hierarchical prior's moments (see :meth:`HierarchicalPrior.moments`)."""
        return self.prior(1).moments()

    @torch.no_grad()
    def sample_latents(self, n: int, generator: torch.Generator | None = None,
                       temperature: float = 1.0) -> torch.Tensor:
        """(n, D) ancestral draws; temperature T scales the noise of both layers (as NVAE samples)."""
        return self.prior(n).sample(generator, n, temperature)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """n images E[x|z] with z drawn top-down from the prior."""
        return self.decode_mean(self.sample_latents(n, generator, temperature))
