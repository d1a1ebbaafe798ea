"""Entropy models: how a model's latents become bits and come back (the codec asks the model).

Every model that can be used for compression returns one from ``model.entropy_model()``
(CompressAI's pattern: the entropy model belongs to the model). It offers the codec
(apps/codec) a fixed small verb set:

    analysis(images uint8 (N,C,H,W))       -> y (N, D) float64      the encoder, continuous
    compress_latents(y, quality)           -> one byte string per image
    decompress_latents(payloads, quality)  -> ŷ (N, D) float64      the dequantised code
    synthesis(ŷ, quality)                  -> images uint8 (N,C,H,W) the decoder
    name, fingerprint, image_shape, quality_range, default_quality

and, for models that price a code (rate + λ·distortion), ``steps(quality)`` and
``pricer(x, quality)`` for the encoder-side refinement of apps/codec/refine.py.

Here: the network part every model shares, and the two Gaussian entropy models —

* VAEs: the posterior means under the N(0, I) prior discretised with step Δ (thesis ch. 3:
  the prior is the code's model);
* plain autoencoders: a Gaussian per dimension fitted to the training codes (the buffers
  ``code_mean``/``code_cov`` every AE keeps), steps in units of each dimension's spread.

For both, quality q sets Δ = 2^(−(q − 1)/2) (in prior or code-spread units): every +1 halves
Δ², about 3 dB more latent precision. The rate–distortion models' own are in rd_entropy.py.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from ..coding import rangecoder
from ..coding.density import CodingTables, FactorisedDensity, coding_tables
from ..coding.fingerprint import fingerprint_tensors
from ..errors import VaelabError
from .base import device_of

SCALAR_QUALITY_RANGE = (1.0, 20.0)
BATCH = 256  # images per network call; fixed so a file always decodes in the same batches


def scalar_step(quality: float) -> float:
    """Quality q -> step Δ = 2^(−(q−1)/2) for coders with one step for every dimension."""
    return float(2.0 ** (-(quality - 1.0) / 2.0))


class TableCoding:
    """Compress latents under factorised tables (the same tables for every image): ``tables(quality)``."""

    def tables(self, quality: float) -> CodingTables:
        raise NotImplementedError

    def tables_at(self, quality: float) -> CodingTables:
        """``tables(quality)``, built once per quality: the codec decodes a file in chunks, and a
        mixture prior's tables cost a network pass. (An entropy model serves fixed weights; its
        fingerprint assumes the same.)"""
        cache = self.__dict__.setdefault("_tables_by_quality", {})
        if quality not in cache:
            cache[quality] = self.tables(quality)
        return cache[quality]

    def compress_latents(self, y: np.ndarray, quality: float,
                         progress: Callable[[int], None] | None = None) -> list[bytes]:
        return rangecoder.encode_images(self.tables_at(quality), y, progress)

    def decompress_latents(self, payloads: list[bytes], quality: float,
                           progress: Callable[[int], None] | None = None) -> np.ndarray:
        return rangecoder.decode_images(self.tables_at(quality), payloads, progress)


class NetworkEntropyModel(TableCoding):
    """The part every registry model's entropy model shares: run the encoder and decoder networks.

    Networks run where the model lives, in float32, with gradients off; for images that are
    identical byte for byte on every machine, load the model on the CPU.
    """

    name = ""
    default_quality = 9.0
    quality_range = SCALAR_QUALITY_RANGE

    def __init__(self, model):
        self.model = model
        self.image_shape = tuple(model.image_shape)
        self.fingerprint = fingerprint_tensors(model.registry_name, model.image_shape, model.state_dict())
        self._device = device_of(model)

    def analysis(self, images: np.ndarray) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(images), BATCH):
                x = torch.from_numpy(np.ascontiguousarray(images[start:start + BATCH])).to(self._device).float() / 255.0
                out.append(self._encode(x).double().cpu().numpy())
        return np.concatenate(out)

    def _encode(self, x):
        """(B, D) values to send for a batch of images in [0, 1]: the posterior means (or codes)."""
        return self.model.encode_mean(x)

    def synthesis(self, values: np.ndarray, quality: float) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(values), BATCH):
                z = torch.from_numpy(values[start:start + BATCH]).to(self._device, torch.float32)
                mean = self._decode_mean(z, quality)
                out.append(np.clip(np.rint(mean.float().cpu().numpy() * 255.0), 0, 255).astype(np.uint8))
        return np.concatenate(out)

    def _decode_mean(self, z, quality: float):
        return self.model.decode_mean(z)

    def steps(self, quality: float) -> np.ndarray:
        return self.tables_at(quality).steps

    def pricer(self, x, quality: float):
        raise VaelabError("refining codes needs a rate–distortion model (conv-rd): only it prices a code in bits")


class GaussianPriorEntropyModel(NetworkEntropyModel):
    """VAEs: send the posterior means under the discretised prior — N(0, I), or for a mixture prior
    the Gaussian matching its moments, per dimension — with steps in units of its spread.

    ``sent_dims``: the coordinates worth sending when the decoder reads only some (a hierarchical
    VAE's z₁); the others are not coded and come back as the prior's mean.
    """

    name = "gaussian-prior"

    def __init__(self, model, sent_dims=None):
        super().__init__(model)
        self._sent = None if sent_dims is None else np.asarray(list(sent_dims), dtype=np.int64)

    @functools.cached_property
    def _prior(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, spread) per coordinate of the model's latent Gaussian; computed once (a hierarchical
        prior's moments take 16,384 ancestral draws), as the tables are for fixed weights."""
        mean, cov = self.model.latent_gaussian()
        return mean.detach().cpu().double().numpy(), np.sqrt(np.diagonal(cov.detach().cpu().double().numpy())).copy()

    def tables(self, quality: float) -> CodingTables:
        loc, scale = self._prior
        if self._sent is not None:
            loc, scale = loc[self._sent], scale[self._sent]
        density = FactorisedDensity("normal", {"loc": loc, "scale": scale})
        return coding_tables(density, scalar_step(quality) * scale)

    def compress_latents(self, y: np.ndarray, quality: float,
                         progress: Callable[[int], None] | None = None) -> list[bytes]:
        return super().compress_latents(y if self._sent is None else y[:, self._sent], quality, progress)

    def decompress_latents(self, payloads: list[bytes], quality: float,
                           progress: Callable[[int], None] | None = None) -> np.ndarray:
        sent = super().decompress_latents(payloads, quality, progress)
        if self._sent is None:
            return sent
        full = np.repeat(self._prior[0][None], len(sent), axis=0)
        full[:, self._sent] = sent
        return full


class FittedGaussianEntropyModel(NetworkEntropyModel):
    """Plain autoencoders: a Gaussian per code dimension fitted to the training codes."""

    name = "fitted-gaussian"

    def tables(self, quality: float) -> CodingTables:
        mean, cov = self.model.latent_gaussian()
        mean = mean.detach().cpu().double().numpy()
        var = np.diagonal(cov.detach().cpu().double().numpy()).copy()
        # A dimension the training codes never moved still needs a spread to be coded.
        scale = np.sqrt(np.maximum(var, 1e-12)) + 1e-6
        density = FactorisedDensity("normal", {"loc": mean, "scale": scale})
        return coding_tables(density, scalar_step(quality) * scale)
