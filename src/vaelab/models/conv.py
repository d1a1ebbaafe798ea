"""Convolutional backbones: strided convolutions down, transposed convolutions up.

Each encoder stage is a 4×4 convolution with stride 2 (Prop. 1.3.6 with the general
stride: output ⌊(M + 2 − 4)/2⌋ + 1 = ⌊M/2⌋), so 28 → 14 → 7; each decoder stage undoes one,
choosing the transposed convolution's output padding so that odd sizes come back exactly.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import VaelabError
from ..theory import get_activation


def default_channels(image_shape: tuple[int, int, int]) -> list[int]:
    _, H, W = image_shape
    # Two stages for small images (8×8 digits end at 2×2), a third for 64×64 and up.
    return [32, 64] if min(H, W) < 48 else [32, 64, 128]


def stage_sizes(size: int, stages: int) -> list[int]:
    sizes = [size]
    for _ in range(stages):
        sizes.append(sizes[-1] // 2)
    return sizes


def checked_stage_sizes(image_shape, channels: list[int]) -> tuple[list[int], list[int]]:
    """The heights and widths after each stage; refused when the stages halve the image to nothing."""
    _, H, W = image_shape
    heights, widths = stage_sizes(H, len(channels)), stage_sizes(W, len(channels))
    if min(heights[-1], widths[-1]) < 1:
        raise VaelabError(
            f"{len(channels)} conv stages halve a {H}×{W} image to nothing; use fewer --hidden channels"
        )
    return heights, widths


def down_stages(in_channels: int, channels: list[int], activation: str) -> list[nn.Module]:
    """A 4×4 stride-2 convolution and an activation per entry of ``channels``: each halves the size."""
    layers: list[nn.Module] = []
    for out_ch in channels:
        layers += [nn.Conv2d(in_channels, out_ch, kernel_size=4, stride=2, padding=1), get_activation(activation)]
        in_channels = out_ch
    return layers


def up_stages(channels: list[int], out_channels: int, heights: list[int], widths: list[int],
              activation: str) -> list[nn.Module]:
    """The mirror of `down_stages`: transposed convolutions from ``channels[-1]`` back to
    ``out_channels`` at heights[0] × widths[0], an activation between stages (none after the last)."""
    layers: list[nn.Module] = []
    outs = list(reversed(channels[:-1])) + [out_channels]
    in_ch = channels[-1]
    for i, out_ch in enumerate(outs):
        # stage i maps size heights[-1-i] to heights[-2-i]; output padding restores odd sizes
        pad = (heights[-2 - i] % 2, widths[-2 - i] % 2)
        layers.append(nn.ConvTranspose2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1, output_padding=pad))
        if i < len(outs) - 1:
            layers.append(get_activation(activation))
        in_ch = out_ch
    return layers


class ConvEncoder(nn.Module):
    """(B, C, H, W) -> (B, out_features)."""

    def __init__(self, image_shape, channels: list[int], dense_width: int, out_features: int, activation: str):
        super().__init__()
        heights, widths = checked_stage_sizes(image_shape, channels)
        self.features = nn.Sequential(*down_stages(image_shape[0], channels, activation))
        flat = channels[-1] * heights[-1] * widths[-1]
        if dense_width:
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, dense_width), get_activation(activation),
                                      nn.Linear(dense_width, out_features))
        else:
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ConvDecoder(nn.Module):
    """(B, D) -> (B, C, H, W) likelihood parameters."""

    def __init__(self, latent_dim: int, channels: list[int], dense_width: int, image_shape, activation: str):
        super().__init__()
        C, H, W = image_shape
        heights, widths = stage_sizes(H, len(channels)), stage_sizes(W, len(channels))
        self.start_shape = (channels[-1], heights[-1], widths[-1])
        flat = channels[-1] * heights[-1] * widths[-1]
        act = lambda: get_activation(activation)  # noqa: E731 - a fresh module per layer
        if dense_width:
            self.head = nn.Sequential(nn.Linear(latent_dim, dense_width), act(), nn.Linear(dense_width, flat), act())
        else:
            self.head = nn.Sequential(nn.Linear(latent_dim, flat), act())
        self.features = nn.Sequential(*up_stages(channels, C, heights, widths, activation))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.head(z).view(z.shape[0], *self.start_shape)
        return self.features(h)


def conv_backbones(image_shape: tuple[int, int, int], config, encoder_outputs: int,
                   decoder_shape: tuple[int, int, int] | None = None) -> tuple[ConvEncoder, ConvDecoder]:
    """The encoder (with ``encoder_outputs`` numbers per image) and decoder a conv model's config describes.

    ``decoder_shape``: what the decoder produces, when not the image itself (pixel-vae's feature map).
    """
    channels = config.hidden or default_channels(image_shape)
    return (ConvEncoder(image_shape, channels, config.dense_width, encoder_outputs, config.activation),
            ConvDecoder(config.latent_dim, channels, config.dense_width, decoder_shape or image_shape,
                        config.activation))
