"""PCA transform coding: the linear baseline the learned codec has to beat.

The classic transform coder (Goyal 2001): rotate the centred image onto its principal
components, quantise every coefficient with the same step Δ (at high rate the MSE-optimal
"reverse water-filling" allocation), entropy-code the integers under a Laplace density per
component fitted to the training coefficients, and rotate back. It uses the very quantiser,
tables and range coder of the VAE codec, so the comparison isolates the transform.

A ``PCACoder`` is its own entropy model (the verbs of vaelab/models/entropy_models.py) and is
saved as safetensors.
"""

from __future__ import annotations

import os

import numpy as np

from ...coding.density import CodingTables, FactorisedDensity, coding_tables
from ...coding.fingerprint import fingerprint_tensors
from ...errors import VaelabError
from ...models.entropy_models import SCALAR_QUALITY_RANGE, TableCoding, scalar_step


class PCACoder(TableCoding):
    """mean (P,), components (K, P) orthonormal rows, scales (K,) Laplace scales of the coefficients.

    Pixels are in [0, 1], P = C·H·W; coefficients c = (x − mean)·componentsᵀ.
    """

    name = "pca"
    default_quality = 8.0
    quality_range = SCALAR_QUALITY_RANGE

    def __init__(self, mean: np.ndarray, components: np.ndarray, scales: np.ndarray, image_shape):
        self.image_shape = tuple(int(s) for s in image_shape)
        self.mean = np.ascontiguousarray(mean, dtype=np.float64)
        self.components = np.ascontiguousarray(components, dtype=np.float64)
        self.scales = np.ascontiguousarray(scales, dtype=np.float64)
        P = int(np.prod(self.image_shape))
        K = self.components.shape[0]
        if self.mean.shape != (P,) or self.components.shape != (K, P) or self.scales.shape != (K,) or K < 1:
            raise VaelabError(f"PCA coder arrays do not fit images of shape {self.image_shape}")
        if not (np.all(np.isfinite(self.components)) and np.all(np.isfinite(self.mean))
                and np.all(np.isfinite(self.scales)) and np.all(self.scales > 0)):
            raise VaelabError("PCA coder holds non-finite values or non-positive scales; refit it")
        self.fingerprint = fingerprint_tensors("pca", self.image_shape, self.state())
        self._density = FactorisedDensity("laplace", {"loc": np.zeros(K), "scale": self.scales})

    @classmethod
    def fit(cls, images: np.ndarray, components: int | None = None) -> "PCACoder":
        """Fit on uint8 images (N, C, H, W); keep ``components`` directions (default: all)."""
        images = np.asarray(images)
        if images.ndim != 4 or images.dtype != np.uint8 or len(images) < 2:
            raise VaelabError("PCA is fitted on at least 2 uint8 images shaped (N, C, H, W)")
        N, P = len(images), int(np.prod(images.shape[1:]))
        flat = images.reshape(N, P)
        chunks = range(0, N, 4096)  # chunked: 60,000 images as float64 at once would take 380 MB
        total = np.zeros(P)
        for s in chunks:
            total += flat[s:s + 4096].sum(axis=0, dtype=np.float64) / 255.0
        mean = total / N
        scatter = np.zeros((P, P))
        for s in chunks:
            centred = flat[s:s + 4096] / 255.0 - mean
            scatter += centred.T @ centred
        # Eigenvectors of the covariance, largest first.
        eigvals, eigvecs = np.linalg.eigh(scatter / N)
        order = np.argsort(eigvals)[::-1]
        K = min(components or P, P)
        basis = np.ascontiguousarray(eigvecs[:, order[:K]].T)                 # (K, P)
        # Laplace scale by maximum likelihood: the mean absolute coefficient (floored: a
        # direction with no variance still needs a valid density).
        absolute = np.zeros(K)
        for s in chunks:
            absolute += np.abs((flat[s:s + 4096] / 255.0 - mean) @ basis.T).sum(axis=0)
        scales = np.maximum(absolute / N, 1e-6)
        return cls(mean, basis, scales, images.shape[1:])

    def state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "components": self.components, "scales": self.scales}

    def save(self, path: str | os.PathLike) -> None:
        import json

        from safetensors.numpy import save

        from ...fileio import atomic_write_bytes

        atomic_write_bytes(path, save(self.state(), metadata={"kind": "vaelab-pca-coder",
                                                              "image_shape": json.dumps(list(self.image_shape))}))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PCACoder":
        import json

        from safetensors import SafetensorError
        from safetensors.numpy import load

        from ...fileio import read_bytes

        data = read_bytes(path, "PCA coder file", max_bytes=1 << 30)
        try:
            arrays = load(data)
            n = int.from_bytes(data[:8], "little")
            meta = json.loads(data[8:8 + n].decode("utf-8")).get("__metadata__", {})
            shape = tuple(int(s) for s in json.loads(meta["image_shape"]))
            assert meta.get("kind") == "vaelab-pca-coder" and len(shape) == 3
            return cls(arrays["mean"], arrays["components"], arrays["scales"], shape)
        except (SafetensorError, ValueError, KeyError, TypeError, AssertionError, UnicodeDecodeError) as exc:
            raise VaelabError(f"is not a vaelab PCA coder file ({exc.__class__.__name__})", path) from None

    # -- the entropy-model verbs ----------------------------------------------------------------
    def entropy_model(self) -> "PCACoder":
        return self

    def pricer(self, x, quality: float):
        raise VaelabError("refining codes needs a rate–distortion model (conv-rd): only it prices a code in bits")

    def analysis(self, images: np.ndarray) -> np.ndarray:
        x = np.asarray(images).reshape(len(images), -1).astype(np.float64) / 255.0
        return (x - self.mean) @ self.components.T

    def tables(self, quality: float) -> CodingTables:
        return coding_tables(self._density, np.full(len(self.scales), scalar_step(quality)))

    def synthesis(self, values: np.ndarray, quality: float) -> np.ndarray:
        x = self.mean + values @ self.components
        pixels = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
        return pixels.reshape(len(values), *self.image_shape)
