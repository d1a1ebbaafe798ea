"""A VAE with a small autoregressive decoder head (PixelCNN-style; van den Oord et al. 2016,
Gulrajani et al. 2017 "PixelVAE").

A factorised Bernoulli decoder p(x|z) = Π_i p(x_i|z) must explain every pixel's correlation
with its neighbours through z alone; it cannot, and blurs. Here the conv decoder turns z into
a feature map h(z) at full resolution, and a light masked-convolution head lets each pixel's
probability also see the pixels *before* it in raster order:

    p(x|z) = Π_i p(x_i | x_<i, z),   logit_i = head(masked_conv(x)_i + W h(z)_i)

The mask (type "A": the window's centre and everything after it are zeroed) makes the product
a proper distribution; the head's receptive field is local (a few pixels), so the global
structure — shape, class, pose — still has to come through z (the VLAE argument of Chen et
al. 2017). Training and likelihood evaluation need one pass (teacher forcing: the data is the
prefix); sampling needs one pass per pixel. Channels of a pixel are conditionally independent
given the earlier pixels and z.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import option
from ..errors import VaelabError
from ..theory import get_activation
from .config import ar_kernel_option, ar_layers_option, model_name
from .conv import conv_backbones
from .likelihoods import head_for
from .registry import register_model
from .vae import VAE, ConvVAEConfig


@dataclass
class PixelVAEConfig(ConvVAEConfig):
    """``pixel-vae``: the conv VAE's settings and those of its masked-convolution head."""

    name: str = model_name("pixel-vae")
    ar_features: int = option(32, "channels of the conditioning map and of the autoregressive head", min=1, max=512)
    ar_kernel: int = ar_kernel_option()
    ar_layers: int = ar_layers_option()


class MaskedConv2d(nn.Conv2d):
    """A convolution whose kernel sees only earlier pixels (raster order; type A excludes the centre)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, include_centre: bool):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        k = kernel_size
        mask = torch.ones(k, k)
        mask[k // 2, k // 2 + (1 if include_centre else 0):] = 0
        mask[k // 2 + 1:] = 0
        self.register_buffer("mask", mask.view(1, 1, k, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class AutoregressiveHead(nn.Module):
    """logits (B, C, H, W) of p(x_i | x_<i, z) from the data x and the conditioning map h(z)."""

    def __init__(self, channels: int, features: int, kernel: int, layers: int, activation: str):
        super().__init__()
        self.first = MaskedConv2d(channels, features, kernel, include_centre=False)
        self.hidden = nn.ModuleList(MaskedConv2d(features, features, 3, include_centre=True) for _ in range(layers - 1))
        self.condition = nn.Conv2d(features, features * layers, 1)
        self.out = nn.Conv2d(features, channels, 1)
        self.act = get_activation(activation)

    @property
    def radius(self) -> int:
        """How far (rows up, columns either side) a pixel's logit looks: the receptive field."""
        return self.first.kernel_size[0] // 2 + len(self.hidden)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.run(x, self.condition(h))

    def run(self, x: torch.Tensor, conditioning: torch.Tensor, inside: torch.Tensor | None = None) -> torch.Tensor:
        """Logits from the data and the precomputed conditioning ``self.condition(h)``.

        ``inside`` (1, 1, h, w) marks which pixels of a cropped window lie inside the image:
        activations outside are zeroed after every layer, as the full image's zero padding
        would have them, so a window of ``radius`` around a pixel gives its exact logit."""
        conds = conditioning.chunk(1 + len(self.hidden), dim=1)
        a = self.act(self.first(x) + conds[0])
        for layer, cond in zip(self.hidden, conds[1:]):
            if inside is not None:
                a = a * inside
            a = a + self.act(layer(a) + cond)   # residual: type-B layers keep causality
        return self.out(a)


class AutoregressiveBernoulli:
    """p(x|z) = Π_i Bernoulli(x_i; σ(logit_i(x_<i, z))) for conditioning maps h, (*batch, F, H, W)."""

    def __init__(self, h: torch.Tensor, head: AutoregressiveHead, channels: int):
        self.h = h
        self.head = head
        self.channels = channels

    def _flat(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        lead = self.h.shape[:-3]
        h = self.h.reshape(-1, *self.h.shape[-3:])
        x = x.expand(*lead, *x.shape[-3:]).reshape(-1, *x.shape[-3:])
        return h, x, lead

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        h, xf, lead = self._flat(x)
        return self.head(xf.to(h.dtype), h).view(*lead, *x.shape[-3:])

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.logits(x).float()
        bce = F.binary_cross_entropy_with_logits(logits, x.float().expand_as(logits), reduction="none")
        return -bce.flatten(start_dim=-3).sum(dim=-1)

    @torch.no_grad()
    def _generate(self, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Ancestral sampling pixel by pixel -> (binary sample, each pixel's probability).

        Each step runs the head on the window its pixel can see (``radius`` rows up and
        columns either side), not on the whole image: ~25× less work at 28×28, same logits."""
        h = self.h.reshape(-1, *self.h.shape[-3:])
        B, _, H, W = h.shape
        r = self.head.radius
        pad = (r, r, r, 0)    # left, right, top, bottom: nothing below is ever looked at
        conditioning = F.pad(self.head.condition(h), pad)
        inside = F.pad(torch.ones(1, 1, H, W, device=h.device, dtype=h.dtype), pad)
        x = torch.zeros(B, self.channels, H + r, W + 2 * r, device=h.device, dtype=h.dtype)
        probs = torch.zeros(B, self.channels, H, W, device=h.device, dtype=torch.float32)
        for i in range(H):
            for j in range(W):
                window = (slice(None), slice(None), slice(i, i + r + 1), slice(j, j + 2 * r + 1))
                logits = self.head.run(x[window], conditioning[window], inside[window])[:, :, r, r]
                p = torch.sigmoid(logits.float())
                probs[:, :, i, j] = p
                u = torch.rand(p.shape, generator=generator, device=p.device)
                x[:, :, i + r, j + r] = (u < p).to(x.dtype)
        shape = (*self.h.shape[:-3], self.channels, H, W)
        sample = x[:, :, r:, r:W + r]
        return sample.reshape(shape), probs.to(h.dtype).view(shape)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return self._generate(generator)[0]

    @property
    def mean(self) -> torch.Tensor:
        """Each pixel's probability along one ancestral sample drawn with a fixed seed.

        E[x|z] of an autoregressive model has no closed form; this deterministic stand-in is a
        plausible image for z (the same z always gives the same picture)."""
        return self._generate(torch.Generator(device=self.h.device).manual_seed(0))[1]


def pixel_head(config, channels: int) -> AutoregressiveHead:
    """The masked-convolution head a config asks for (``ar_features``, ``ar_kernel``, ``ar_layers``),
    over binary pixels of ``channels`` channels; the decoder must then output ``ar_features`` maps."""
    check_pixel_head(config)
    return AutoregressiveHead(channels, config.ar_features, config.ar_kernel, config.ar_layers, config.activation)


def check_pixel_head(config) -> None:
    """Refuse, before anything is built, a pixel head over non-binary pixels or with an even kernel."""
    if config.likelihood != "bernoulli":
        raise VaelabError(f"{config.name} with a pixel head models binary pixels: use --likelihood bernoulli "
                          "(with --binarize)")
    if config.ar_kernel % 2 == 0:
        raise VaelabError(f"model.ar_kernel must be odd, got {config.ar_kernel}")


@register_model("pixel-vae", PixelVAEConfig)
class PixelVAE(VAE):
    """Conv VAE whose decoder ends in a local autoregressive (masked-convolution) head."""

    @classmethod
    def from_config(cls, config: PixelVAEConfig, image_shape):
        C, H, W = image_shape
        check_pixel_head(config)
        backbones = conv_backbones(image_shape, config, cls.encoder_outputs(config),
                                   decoder_shape=(config.ar_features, H, W))
        model = cls(config, image_shape, *backbones, head_for(config, C))
        model.ar_head = pixel_head(config, C)    # built last: the order the initial weights are drawn in
        return model

    def likelihood(self, x_hat: torch.Tensor) -> AutoregressiveBernoulli:
        return AutoregressiveBernoulli(x_hat, self.ar_head, self.image_shape[0])
