"""VQ-VAE: a discrete grid of codebook vectors with an autoregressive prior (van den Oord et al. 2017).

The encoder maps an image to a grid of D-dimensional vectors z_e (7×7 for 28×28 images); each
is replaced by its nearest codebook vector e_k (§3.1, eq. 1), and the decoder sees the grid of
those. The posterior q(k|x) is one-hot at the nearest codes, so with a prior p(k) over code
grids (§3.1: "KL = log K" for a uniform one; here learned) the ELBO is

    ELBO = log p(x|z_q) − KL(q ‖ p) = log p(x|z_q) + log p_prior(k)        (q's entropy is 0)

Training (§3.2, Appendix A.1):

* the straight-through gradient: the decoder's gradient at z_q is copied to z_e;
* the codebook is an exponential moving average of the encoder outputs assigned to each code
  (cluster sizes with Laplace smoothing, so an empty cluster never divides by 0), updated in the
  forward pass while training — it is a buffer, not an optimised parameter;
* the first training step places every code at a random encoder output of the batch, and a
  code no encoder output chose for ``restart_after`` training steps is re-initialised the same
  way (the dead-code restart of Dhariwal et al. 2020, Jukebox §3): no code stays unused;
* the commitment loss β·‖z_e − sg(z_q)‖² keeps the encoder near its codes (eq. 3, β = 0.25);
* the prior is a small PixelCNN (van den Oord et al. 2016) over the grid of code indices,
  trained on the *detached* indices: its loss −log p_prior(k) is the ELBO's KL term, and its
  gradient never reaches the encoder, so one optimiser trains everything (the paper trains it
  afterwards; jointly it sees the codes drift, and catches up as the codebook settles).

What the rest of vaelab sees: the latent is the grid of quantised vectors flattened, (B, D·h·w);
``decode`` takes any such vector (interpolations decode between codes), ``prior(B).log_prob(z)``
snaps z to its codes. The codec codes the indices under an integer table of code usage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..coding.density import CodingTables
from ..config import option
from ..distributions import GaussianMixture
from ..theory import get_activation
from .base import Model
from .config import DecoderLikelihood, activation_option, hidden_option, model_name
from .conv import checked_stage_sizes, default_channels, down_stages, up_stages
from .entropy_models import NetworkEntropyModel
from .likelihoods import head_for
from .losses import VQELBO
from .outputs import VQOutput
from .pixel import MaskedConv2d
from .registry import register_model

LAPLACE_EPSILON = 1e-5     # Laplace smoothing of the EMA cluster sizes (Sonnet's VectorQuantizerEMA)
USAGE_TOTAL = 1 << 16      # the integer code-usage table sums to about this (the codec's frequencies)


@dataclass
class VQVAEConfig(DecoderLikelihood):
    """``vq-vae``: codebook, EMA, restart and prior settings of the VQ-VAE."""

    name: str = model_name("vq-vae")
    latent_dim: int = option(16, "dimension D of each code vector (channels of the latent grid); the apps see the "
                                 "grid flattened, D·h·w numbers", min=1, max=1024)
    codebook_size: int = option(256, "codebook size K: codes each grid position chooses from", min=2, max=65536)
    commitment: float = option(0.25, "commitment weight β on ‖z_e − sg(z_q)‖² (van den Oord et al. 2017, eq. 3)",
                               min=0.0, max=1e3)
    ema_decay: float = option(0.99, "decay γ of the codebook's exponential moving averages (Appendix A.1)",
                              min=0.0, max=0.99999)
    restart_after: int = option(1, "training steps a code may go unused before it is re-initialised to an "
                                   "encoder output of the batch (0 = never; 1 = any code a batch left unused)",
                                min=0, max=10**9)
    prior_features: int = option(64, "channels of the PixelCNN prior over the code grid", min=1, max=1024)
    prior_layers: int = option(4, "masked layers of the PixelCNN prior (the first 5×5 'A', the rest 3×3 'B')",
                               min=1, max=16)
    hidden: list[int] = hidden_option("channels per stride-2 stage of the encoder (the decoder mirrors it)")
    activation: str = activation_option()

    def describe(self) -> str:
        return f"{self.name} (K = {self.codebook_size}, D = {self.latent_dim})"

    def loss(self) -> VQELBO:
        return VQELBO(self.commitment)


# -- quantisation ------------------------------------------------------------------------------
def nearest_codes(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(N, D) vectors, (K, D) codebook -> (N,) index of the nearest code (squared Euclidean; ties: lowest)."""
    distances = (z.pow(2).sum(1, keepdim=True) - 2 * z @ codebook.T + codebook.pow(2).sum(1)[None])
    return distances.argmin(1)


def ema_update(cluster_size: torch.Tensor, embed_sum: torch.Tensor, z: torch.Tensor, indices: torch.Tensor,
               decay: float) -> torch.Tensor:
    """One EMA step of Appendix A.1 in place; returns the new codebook.

    N_i ← γN_i + (1−γ)n_i,  m_i ← γm_i + (1−γ)Σ_{j: k_j = i} z_j,  e_i = m_i / Ñ_i with the
    Laplace-smoothed Ñ_i = (N_i + ε)/(n + Kε)·n, n = Σ_i N_i.
    """
    K = cluster_size.shape[0]
    onehot = F.one_hot(indices, K).to(z.dtype)                       # (N, K)
    cluster_size.mul_(decay).add_(onehot.sum(0), alpha=1 - decay)
    embed_sum.mul_(decay).add_(onehot.T @ z, alpha=1 - decay)
    n = cluster_size.sum()
    smoothed = (cluster_size + LAPLACE_EPSILON) / (n + K * LAPLACE_EPSILON) * n
    return embed_sum / smoothed[:, None]


class VectorQuantizer(nn.Module):
    """Nearest-code quantisation with an EMA codebook, dead-code restarts and a code-usage table (all buffers)."""

    def __init__(self, codes: int, dim: int, decay: float, restart_after: int):
        super().__init__()
        self.decay = decay
        self.restart_after = restart_after
        codebook = torch.randn(codes, dim)
        self.register_buffer("codebook", codebook)
        self.register_buffer("cluster_size", torch.ones(codes))
        self.register_buffer("embed_sum", codebook.clone())
        self.register_buffer("idle_steps", torch.zeros(codes, dtype=torch.long))
        # the codec's integer frequencies: set from the cluster sizes in training, read as saved
        self.register_buffer("usage", torch.ones(codes, dtype=torch.long))
        # 0 until the first training step, which places every code at an encoder output
        self.register_buffer("initialised", torch.zeros(1, dtype=torch.long))

    def quantize(self, z_e: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) encoder outputs -> (B, h, w) nearest code indices."""
        B, D, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, D)
        return nearest_codes(flat.float(), self.codebook).view(B, h, w)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """(…, h, w) indices -> (…, D, h, w) codebook vectors."""
        return self.codebook[indices].movedim(-1, -3)

    @torch.no_grad()
    def update(self, z_e: torch.Tensor, indices: torch.Tensor) -> None:
        """A training step's codebook update: EMA, dead-code restarts, then the usage table."""
        D = z_e.shape[1]
        flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, D).float()
        idx = indices.reshape(-1)
        if not bool(self.initialised):
            # Random codes far from the encoder's first outputs would leave all but one unused
            # (index collapse): start each at an encoder output, as a restart would.
            self.reset(torch.arange(self.codebook.shape[0], device=flat.device), flat)
            self.initialised.fill_(1)
            idx = nearest_codes(flat, self.codebook)
        self.codebook.copy_(ema_update(self.cluster_size, self.embed_sum, flat, idx, self.decay))
        used = torch.zeros_like(self.idle_steps, dtype=torch.bool)
        used[idx] = True
        self.idle_steps.add_(1).masked_fill_(used, 0)
        if self.restart_after:
            self.restart(flat)
        self.usage.copy_(usage_table(self.cluster_size))

    def restart(self, flat: torch.Tensor) -> None:
        """Re-initialise each code idle for ``restart_after`` steps to a random encoder output of the batch."""
        dead = (self.idle_steps >= self.restart_after).nonzero().flatten()
        if dead.numel():
            self.reset(dead, flat)

    def reset(self, codes: torch.Tensor, flat: torch.Tensor) -> None:
        """Place ``codes`` at random rows of ``flat`` (N, D), each a cluster of one from which the EMA continues."""
        picks = flat[torch.randint(flat.shape[0], (codes.numel(),), device=flat.device)]
        self.codebook[codes] = picks
        self.embed_sum[codes] = picks
        self.cluster_size[codes] = 1.0
        self.idle_steps[codes] = 0


def usage_table(cluster_size: torch.Tensor) -> torch.Tensor:
    """(K,) EMA cluster sizes -> (K,) int64 frequencies summing to about USAGE_TOTAL, every code ≥ 1.

    The codec's probabilities come from these integers alone, never from floats computed at
    decode time, so encoder and decoder build the very same table."""
    share = cluster_size.double() / cluster_size.double().sum()
    return torch.round(share * USAGE_TOTAL).long().clamp_(min=1)


# -- the PixelCNN prior over code grids ------------------------------------------------------------
class PixelCNNPrior(nn.Module):
    """logits (B, K, h, w) of p(k_i | k_<i) in raster order (van den Oord et al. 2016; masked convolutions)."""

    def __init__(self, codes: int, features: int, layers: int, activation: str):
        super().__init__()
        self.embed = nn.Embedding(codes, features)
        self.first = MaskedConv2d(features, features, 5, include_centre=False)       # type A: never sees k_i
        self.hidden = nn.ModuleList(MaskedConv2d(features, features, 3, include_centre=True)
                                    for _ in range(layers - 1))
        self.out = nn.Conv2d(features, codes, 1)
        self.act = get_activation(activation)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        a = self.act(self.first(self.embed(indices).permute(0, 3, 1, 2)))
        for layer in self.hidden:
            a = a + self.act(layer(a))        # residual type-B layers keep causality
        return self.out(a)

    def log_prob(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, h, w) code grids -> (B,) log p(k) = Σ_i log softmax(logits_i)[k_i], nats."""
        return self.position_log_prob(indices).flatten(1).sum(1)

    def position_log_prob(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, h, w) -> (B, h, w) log p(k_i | k_<i)."""
        logp = F.log_softmax(self(indices).float(), dim=1)
        return logp.gather(1, indices[:, None]).squeeze(1)

    @torch.no_grad()
    def sample(self, n: int, grid: tuple[int, int], generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """(n, h, w) code grids drawn position by position (ancestral sampling); T scales the logits' 1/T."""
        h, w = grid
        device = self.out.weight.device
        indices = torch.zeros(n, h, w, dtype=torch.long, device=device)
        for i in range(h):
            for j in range(w):
                logits = self(indices)[:, :, i, j].float() / max(temperature, 1e-6)
                indices[:, i, j] = torch.multinomial(F.softmax(logits, dim=1), 1, generator=generator)[:, 0]
        return indices


class PointMassPosterior:
    """q(z|x): all mass on the quantised grid z_q(x) (B, L) — the one-hot q(k|x) seen as a latent vector.

    Its KL to the prior is −log p_prior(k) (q's entropy is 0): ``kl_to``/``kl_per_dim_to`` say so
    to the generic KL functions (models/losses.py), which would otherwise treat it as a Gaussian.
    ``std`` is 0 (``reparameterise`` returns the code whatever the noise); ``logvar`` is −∞ in
    spirit and reported as the floor of a diagonal Gaussian's (−30) for the embeddings' files.
    """

    def __init__(self, mean: torch.Tensor):
        self.mean = mean

    @property
    def mode(self) -> torch.Tensor:
        return self.mean

    @property
    def logvar(self) -> torch.Tensor:
        return torch.full_like(self.mean, -30.0)

    @property
    def var(self) -> torch.Tensor:
        return torch.zeros_like(self.mean)

    @property
    def std(self) -> torch.Tensor:
        return torch.zeros_like(self.mean)

    def sample(self, generator: torch.Generator | None = None, n: int | None = None) -> torch.Tensor:
        return self.mean if n is None else self.mean.expand(n, *self.mean.shape)

    def reparameterise(self, eps: torch.Tensor) -> torch.Tensor:
        """z = μ + 0·ε: the code, once per noise draw ε (…, B, L)."""
        return self.mean.expand(eps.shape)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x) = 0 at the code (the only z this posterior draws), over z's leading axes."""
        return torch.zeros(z.shape[:-1], device=z.device, dtype=torch.float32)

    def entropy(self) -> torch.Tensor:
        return torch.zeros(self.mean.shape[0], device=self.mean.device)

    def kl_to(self, prior: CodeGridPrior, z: torch.Tensor) -> torch.Tensor:
        """(B,) KL(q ‖ p) = −log p_prior(k): every one of K draws is the code itself."""
        kl = -prior.log_prob(z)
        return kl.mean(0) if z.dim() == 3 else kl

    def kl_per_dim_to(self, prior: CodeGridPrior, z: torch.Tensor) -> torch.Tensor:
        """(B, L): the KL shared out over the latent's entries as :meth:`CodeGridPrior.log_prob_per_dim` does."""
        return -prior.log_prob_per_dim(z)


class CodeGridPrior:
    """p(z) over flattened latents (…, L): the PixelCNN's probability of the codes z snaps to."""

    def __init__(self, model: VQVAE, batch: int):
        self.model = model
        self.batch = batch

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """(…, L) -> (…,) log p_prior(k(z)), nats. K identical latents per image are scored once."""
        if z.dim() == 3 and bool((z == z[:1]).all()):
            return self.log_prob(z[0]).expand(z.shape[0], z.shape[1])
        lead = z.shape[:-1]
        indices = self.model.latent_to_indices(z.reshape(-1, z.shape[-1]))
        return self.model.prior_net.log_prob(indices).view(lead)

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, L): each position's log p(k_i | k_<i) shared equally by its D vector entries."""
        indices = self.model.latent_to_indices(z)
        per_position = self.model.prior_net.position_log_prob(indices)            # (B, h, w)
        D = self.model.config.latent_dim
        return (per_position[:, None] / D).expand(-1, D, -1, -1).reshape(z.shape)

    def sample(self, generator: torch.Generator | None = None, n: int | None = None) -> torch.Tensor:
        return self.model.sample_latents(n or self.batch, generator)


# -- the model -------------------------------------------------------------------------------------
def vq_backbones(image_shape, config: VQVAEConfig) -> tuple[nn.Module, nn.Module, tuple[int, int]]:
    """Encoder (B, C, H, W) -> (B, D, h, w), decoder back, and the grid (h, w): stride-2 4×4 stages (conv.py)."""
    channels = config.hidden or default_channels(image_shape)
    heights, widths = checked_stage_sizes(image_shape, channels)
    act = lambda: get_activation(config.activation)  # noqa: E731 - a fresh module per layer
    encoder = nn.Sequential(*down_stages(image_shape[0], channels, config.activation),
                            nn.Conv2d(channels[-1], channels[-1], 3, padding=1), act(),
                            nn.Conv2d(channels[-1], config.latent_dim, 1))
    up = [nn.Conv2d(config.latent_dim, channels[-1], 3, padding=1), act(),
          *up_stages(channels, image_shape[0], heights, widths, config.activation)]
    return encoder, nn.Sequential(*up), (heights[-1], widths[-1])


@register_model("vq-vae", VQVAEConfig)
class VQVAE(Model):
    """VQ-VAE: a grid of codebook vectors (EMA codebook) with a PixelCNN prior over the codes."""

    is_variational = True
    refits_posterior = False    # a one-hot posterior: nothing continuous to re-fit
    # Each process would move the EMA codebook on its own shard and DDP would keep rank 0's copy.
    distributed_training = False

    def __init__(self, config: VQVAEConfig, image_shape, encoder, decoder, head, grid: tuple[int, int]):
        super().__init__(config, image_shape, encoder, decoder, head)
        self.grid = tuple(grid)
        self.latent_dim = config.latent_dim * grid[0] * grid[1]
        self.quantizer = VectorQuantizer(config.codebook_size, config.latent_dim, config.ema_decay,
                                         config.restart_after)
        self.prior_net = PixelCNNPrior(config.codebook_size, config.prior_features, config.prior_layers,
                                       config.activation)

    @classmethod
    def from_config(cls, config: VQVAEConfig, image_shape):
        encoder, decoder, grid = vq_backbones(image_shape, config)
        return cls(config, image_shape, encoder, decoder, head_for(config, image_shape[0]), grid)

    # -- latents as the apps see them: the quantised grid, flattened ------------------------------
    def indices_to_latent(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, h, w) code indices -> (B, L) flattened codebook vectors."""
        return self.quantizer.lookup(indices).flatten(1)

    def latent_to_indices(self, z: torch.Tensor) -> torch.Tensor:
        """(B, L) latents -> (B, h, w) nearest code of each position's D-vector (exact for quantised latents)."""
        return self.quantizer.quantize(z.reshape(z.shape[0], self.config.latent_dim, *self.grid))

    def _encode(self, x: torch.Tensor) -> PointMassPosterior:
        indices = self.quantizer.quantize(self.encoder(x))
        return PointMassPosterior(self.indices_to_latent(indices))

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x).mean

    def encode_indices(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, h, w) the nearest code at every grid position."""
        self.check_input(x)
        return self.quantizer.quantize(self.encoder(x))

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z.view(z.shape[0], self.config.latent_dim, *self.grid))

    def prior(self, batch: int = 1) -> CodeGridPrior:
        return CodeGridPrior(self, batch)

    # -- training and scoring -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                samples: int | None = None) -> VQOutput:
        """Encode, quantise (straight-through), decode; in training also update the codebook.

        ``samples`` = K gives K copies of the (deterministic) latent per image, as the
        importance-weighted bound asks; they are decoded once. ``generator`` is accepted for
        that interface and unused: nothing here is random.
        """
        self.check_input(x)
        z_e = self.encoder(x)
        indices = self.quantizer.quantize(z_e)
        z_q = self.quantizer.lookup(indices)
        if self.training:
            self.quantizer.update(z_e, indices)
        z_st = z_e + (z_q - z_e).detach()                          # straight-through: ∂/∂z_q copied to z_e
        x_hat = self.decoder(z_st)
        prior_nll = -self.prior_net.log_prob(indices.detach())
        z = z_q.flatten(1)
        if samples is not None:
            x_hat = x_hat.expand(samples, *x_hat.shape)
            z = z.expand(samples, *z.shape)
        return VQOutput(x_hat=x_hat, z=z, likelihood=self.likelihood(x_hat),
                        posterior=PointMassPosterior(z_q.flatten(1)), prior=self.prior(x.shape[0]),
                        indices=indices, z_e=z_e, z_q=z_q, prior_nll=prior_nll)

    # -- generation -------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_latents(self, n: int, generator: torch.Generator | None = None,
                       temperature: float = 1.0) -> torch.Tensor:
        """(n, L) latents: code grids drawn from the PixelCNN prior (logits divided by T), looked up."""
        return self.indices_to_latent(self.prior_net.sample(n, self.grid, generator, temperature))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """n images E[x|z] with the code grid drawn from the prior by ancestral sampling."""
        return self.decode_mean(self.sample_latents(n, generator, temperature))

    @torch.no_grad()
    def latent_gaussian(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The Gaussian matching the moments of the code the codec assumes: every position independent,
        its codebook vector drawn by the code-usage table. Mean (L,), covariance (L, L) = C ⊗ I over
        the flattened (D, h, w) grid, C the usage-weighted covariance of the codebook vectors.

        What the explorer's sliders and traversals move along (the decoder takes any vector, so they
        show it between codes); sampling still draws whole grids from the PixelCNN. Computed on the
        CPU in float64 from buffers, so it is the same wherever the model lives.
        """
        codes = self.quantizer.codebook.detach().cpu().double()                   # (K, D)
        # one position's code: the codebook vectors as a mixture of point masses (a variance floor of
        # e⁻³⁰) weighted by the usage table
        usage = self.quantizer.usage.detach().cpu().double()
        points = GaussianMixture(codes, torch.full_like(codes, -30.0), usage.log())
        mean_code, code_cov = points.moments()
        positions = self.grid[0] * self.grid[1]
        mean = mean_code.repeat_interleave(positions)
        cov = torch.kron(code_cov, torch.eye(positions, dtype=torch.float64))
        return mean.float().to(self.device), cov.float().to(self.device)

    def entropy_model(self) -> VQEntropyModel:
        """Codes the grid's indices under the saved integer code-usage table."""
        return VQEntropyModel(self)


class VQEntropyModel(NetworkEntropyModel):
    """The codec for a VQ-VAE: each grid position's code index under one integer usage table.

    The table is the model's ``usage`` buffer (int64, written in training from the EMA cluster
    sizes and saved with the weights): both ends read the same integers, so range decoding
    cannot drift on float differences. The PixelCNN prior would code tighter, but its floats
    may differ between machines. There is no quality knob: the code is the code.
    """

    name = "vq-codebook"
    default_quality = 1.0
    quality_range = (1.0, 1.0)

    def _encode(self, x):
        """The (B, h·w) code indices that ``analysis`` sends."""
        return self.model.encode_indices(x).flatten(1)

    def tables(self, quality: float) -> CodingTables:
        usage = self.model.quantizer.usage.detach().cpu().numpy().astype(np.float64)
        positions = self.model.grid[0] * self.model.grid[1]
        return CodingTables(offsets=np.zeros(positions, dtype=np.int64),
                            sizes=np.full(positions, usage.shape[0], dtype=np.int64),
                            probabilities=np.tile(usage, (positions, 1)), steps=np.ones(positions))

    def _decode_mean(self, z, quality: float):
        indices = z.round().long().view(z.shape[0], *self.model.grid)
        return self.model.decode_mean(self.model.indices_to_latent(indices))
