"""Dense backbones built from the thesis' networks (Defs. 1.1.6, 2.1.4, 2.1.5).

Images are flattened row-major (Lemma 1.3.3) before the encoder and reshaped after the
decoder. The encoder's widths never increase and the decoder's never decrease, exactly as
the thesis' Defs. 2.1.4 and 2.1.5 demand; ``vaelab.theory`` refuses anything else.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import VaelabError
from ..theory import Decoder, Encoder


def default_hidden(in_features: int) -> list[int]:
    # Two hidden layers, capped by the input size so that the encoder stays non-increasing.
    return [min(512, in_features), min(256, in_features)]


def _check_widths(widths: list[int], latent_dim: int) -> None:
    if any(a < b for a, b in zip(widths, widths[1:])):
        out = widths[-1]
        what = f"latent dimension {latent_dim}" if out == latent_dim else \
            f"{out} = μ and log σ² of latent dimension {latent_dim}"
        raise VaelabError(
            f"mlp encoder widths {'-'.join(map(str, widths))} increase somewhere; an encoder's widths must "
            f"not increase (Def. 2.1.4) — choose --hidden widths from the image size {widths[0]} down to the "
            f"encoder's output ({what})")


class MLPEncoder(nn.Module):
    """(B, C, H, W) -> (B, out_features) through an ``Encoder`` of the thesis."""

    def __init__(self, image_shape: tuple[int, int, int], hidden: list[int], out_features: int, activation: str,
                 latent_dim: int | None = None):
        super().__init__()
        C, H, W = image_shape
        widths = [C * H * W, *hidden, out_features]
        _check_widths(widths, out_features if latent_dim is None else latent_dim)
        self.net = Encoder(widths, activation=activation, output_activation=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(start_dim=1))


class MLPDecoder(nn.Module):
    """(B, D) -> (B, C, H, W) likelihood parameters through a ``Decoder`` of the thesis."""

    def __init__(self, latent_dim: int, hidden: list[int], image_shape: tuple[int, int, int], activation: str):
        super().__init__()
        self.image_shape = image_shape
        C, H, W = image_shape
        widths = [latent_dim, *reversed(hidden), C * H * W]
        if any(a > b for a, b in zip(widths, widths[1:])):
            raise VaelabError(
                f"mlp decoder widths {'-'.join(map(str, widths))} decrease somewhere; a decoder's widths must "
                "not decrease (Def. 2.1.5) — use a latent dimension no larger than the narrowest hidden width"
            )
        self.net = Decoder(widths, activation=activation, output_activation=None)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.image_shape)


def mlp_backbones(image_shape: tuple[int, int, int], config, encoder_outputs: int) -> tuple[MLPEncoder, MLPDecoder]:
    """The encoder (with ``encoder_outputs`` numbers per image) and decoder a dense model's config describes."""
    C, H, W = image_shape
    hidden = config.hidden or default_hidden(C * H * W)
    return (MLPEncoder(image_shape, hidden, encoder_outputs, config.activation, config.latent_dim),
            MLPDecoder(config.latent_dim, hidden, image_shape, config.activation))
