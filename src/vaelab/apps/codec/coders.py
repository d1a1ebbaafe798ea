"""Latent coders: how each kind of model turns images into quantised latents and back.

A coder bundles what the codec needs from a transform:

    analysis(images uint8 (N,C,H,W)) -> y (N, D) float64       the encoder, continuous
    tables(quality)                  -> CodingTables             steps Δ and P_d(k), float64
    synthesis(ŷ (N, D), quality)     -> images uint8 (N,C,H,W)   the decoder on the dequantised code

and the model's ``fingerprint``. The entropy model is the one the model knows:

* ``conv-rd`` (rate–distortion models): its learned factorised density and learned steps;
  quality 1..L picks (or interpolates) the trained levels.
* VAEs: the N(0, I) prior discretised with step Δ (thesis ch. 3: the prior is the code's
  model); the encoder's means are sent.
* plain autoencoders: a Gaussian per dimension fitted to the training codes (the buffers
  ``code_mean``/``code_cov`` every AE keeps), steps in units of each dimension's spread.

For the last two, quality q sets the step Δ = 2^(−(q − 1)/2) (in prior or code-spread
units): every +1 halves Δ² — about 3 dB more latent precision.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Protocol

import numpy as np

from ...errors import VaelabError
from .container import FINGERPRINT_BYTES
from .density import CodingTables, FactorisedDensity, coding_tables

SCALAR_QUALITY_RANGE = (1.0, 20.0)
BATCH = 256  # images per network call; fixed so a file always decodes in the same batches
REFINE_LR = 0.005  # Adam step of latent refinement, in quantisation bins
REFINE_SEED = 20170424  # of the Gumbel noise refinement draws its soft roundings with (any fixed value)
# Temperature of the soft rounding: held at its start for the first REFINE_HOLD of the steps,
# then lowered geometrically to its end, where the soft code is nearly the rounded one.
REFINE_TAU = (0.5, 0.1)
REFINE_HOLD = 0.3


class LatentCoder(Protocol):
    name: str                       # container.CODERS name
    image_shape: tuple[int, int, int]
    fingerprint: bytes
    default_quality: float
    quality_range: tuple[float, float]

    def analysis(self, images: np.ndarray) -> np.ndarray: ...
    def tables(self, quality: float) -> CodingTables: ...
    def synthesis(self, values: np.ndarray, quality: float) -> np.ndarray: ...


def scalar_step(quality: float) -> float:
    """Quality q -> step Δ = 2^(−(q−1)/2) for coders with one step for every dimension."""
    return float(2.0 ** (-(quality - 1.0) / 2.0))


def fingerprint_tensors(model_name: str, image_shape, tensors: dict) -> bytes:
    """8 bytes of SHA-256 over a model's name, image shape and every weight, in name order.

    ``tensors`` maps names to torch tensors or numpy arrays (a state dict or a weights file).
    Any changed weight — even one bit — changes the fingerprint.
    """
    h = hashlib.sha256(b"vaelab-codec-fingerprint\0")
    h.update(json.dumps([model_name, [int(s) for s in image_shape]]).encode())
    for name in sorted(tensors):
        value = tensors[name]
        array = value.detach().cpu().contiguous().numpy() if hasattr(value, "detach") else np.asarray(value)
        array = np.ascontiguousarray(array)
        h.update(json.dumps([name, str(array.dtype), list(array.shape)]).encode())
        h.update(array.tobytes())
    return h.digest()[:FINGERPRINT_BYTES]


def model_fingerprint(model) -> bytes:
    """The 8-byte fingerprint of a vaelab model (or a PCA coder) that the codec writes into files."""
    if hasattr(model, "fingerprint") and isinstance(model.fingerprint, bytes):
        return model.fingerprint
    return fingerprint_tensors(getattr(model, "registry_name", type(model).__name__), model.image_shape,
                               model.state_dict())


class NetworkCoder:
    """Shared by the coders of registry models: run the encoder and decoder networks.

    Networks run where the model lives, in float32, with gradients off; for images that
    are identical byte for byte on every machine, load the model on the CPU.
    """

    name = ""
    default_quality = 9.0
    quality_range = SCALAR_QUALITY_RANGE

    def __init__(self, model):
        self.model = model
        self.image_shape = tuple(model.image_shape)
        self.fingerprint = model_fingerprint(model)
        self._device = next(model.parameters()).device

    def analysis(self, images: np.ndarray) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(images), BATCH):
                x = torch.from_numpy(np.ascontiguousarray(images[start:start + BATCH])).to(self._device).float() / 255.0
                out.append(self._encode(x).double().cpu().numpy())
        return np.concatenate(out)

    def synthesis(self, values: np.ndarray, quality: float) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(values), BATCH):
                z = torch.from_numpy(values[start:start + BATCH]).to(self._device, torch.float32)
                mean = self._decode(z, quality)
                out.append(np.clip(np.rint(mean.float().cpu().numpy() * 255.0), 0, 255).astype(np.uint8))
        return np.concatenate(out)

    def _encode(self, x):
        return self.model.encode_mean(x)

    def _decode(self, z, quality: float):
        return self.model.decode_mean(z)


class GaussianPriorCoder(NetworkCoder):
    """VAEs: send the posterior means under the discretised N(0, I) prior."""

    name = "gaussian-prior"

    def tables(self, quality: float) -> CodingTables:
        D = self.model.latent_dim
        density = FactorisedDensity("normal", {"loc": np.zeros(D), "scale": np.ones(D)})
        return coding_tables(density, np.full(D, scalar_step(quality)))


class FittedGaussianCoder(NetworkCoder):
    """Plain autoencoders: a Gaussian per code dimension fitted to the training codes."""

    name = "fitted-gaussian"

    def tables(self, quality: float) -> CodingTables:
        mean = self.model.code_mean.detach().cpu().double().numpy()
        var = np.diagonal(self.model.code_cov.detach().cpu().double().numpy()).copy()
        # A dimension the training codes never moved still needs a spread to be coded.
        scale = np.sqrt(np.maximum(var, 1e-12)) + 1e-6
        density = FactorisedDensity("normal", {"loc": mean, "scale": scale})
        return coding_tables(density, scalar_step(quality) * scale)


class RateDistortionCoder(NetworkCoder):
    """``conv-rd`` models: their learned density, learned steps, and level-aware decoder."""

    name = "rate-distortion"

    def __init__(self, model):
        super().__init__(model)
        self.quality_range = (1.0, float(model.levels))
        self.default_quality = float(model.levels)
        if not model.has_context:
            self._density = FactorisedDensity("logistic-mixture", model.density.parameters_float64())
        self._log_steps = model.log_steps.detach().cpu().double().numpy()          # (L, D)

    def _level_weights(self, quality: float) -> np.ndarray:
        """Quality 1..L -> (L,) float64 interpolation weights (as the model's level_weights)."""
        L = self.model.levels
        level = min(max(float(quality) - 1.0, 0.0), L - 1.0)
        below = min(int(np.floor(level)), max(L - 2, 0))
        weights = np.zeros(L)
        weights[below] = 1.0 - (level - below)
        if L > 1:
            weights[below + 1] += level - below
        return weights

    def steps(self, quality: float) -> np.ndarray:
        """(D,) float64 quantisation steps at this quality (geometric interpolation of the levels)."""
        w = self._level_weights(quality)
        log_steps = np.zeros(self._log_steps.shape[1])
        for level in range(len(w)):  # element-wise, fixed order
            log_steps += w[level] * self._log_steps[level]
        return np.exp(log_steps)

    def tables(self, quality: float) -> CodingTables:
        return coding_tables(self._density, self.steps(quality))

    def _decode(self, z, quality: float):
        import torch

        w = torch.from_numpy(self._level_weights(quality)).to(z.device, torch.float32)
        return self.model.likelihood(self.model.decode(z, w.expand(z.shape[0], -1))).mean

    def refine(self, images: np.ndarray, y: np.ndarray, quality: float, iterations: int) -> np.ndarray:
        """Improve the encoder's latents for these very images (Campos et al. 2019; Yang et al. 2020).

        The encoder is amortised: one network guesses a good code for every image. The
        decoder then gives each guess a price, rate + λ·distortion of its rounded code, and
        that price can be lowered image by image by gradient descent on y. The price of a
        rounded code is piecewise constant in y, so the descent follows a smooth stand-in:
        stochastic Gumbel annealing (Yang et al. 2020), where each element is a soft mix of
        the two integers around it, leaning to the nearer one, and the rate and distortion
        are those of the mix. As the temperature falls the mix hardens into a rounding that
        was chosen for its price rather than its nearness (4 % fewer bytes at 34 dB than the
        uniform-noise proxy after 200 steps; docs/codec.md). The Gumbel noise comes from a
        fixed seed, so a file is the same on every run. Only the encoder changes; the file
        format and the decoder do not. Each image keeps its cheapest code seen (priced
        exactly, rounded), so refining never makes an image worse.
        """
        import torch

        model = self.model
        step_values = self.steps(quality)
        weights = torch.from_numpy(self._level_weights(quality)).float()
        lam = float(np.exp(self._level_weights(quality) @ np.log(model.lambdas.cpu().double().numpy())))
        steps = torch.from_numpy(step_values).float()
        out = np.empty_like(y)
        frozen = [p.requires_grad for p in model.parameters()]
        for p in model.parameters():
            p.requires_grad_(False)
        try:
            for start in range(0, len(images), BATCH):
                x = torch.from_numpy(np.ascontiguousarray(images[start:start + BATCH])).float().to(self._device) / 255.0
                st = steps.to(self._device).expand(len(x), -1)
                w = weights.to(self._device).expand(len(x), -1)

                def price(code):  # (B, D) in bins -> (B,) rate + λ·distortion
                    mean = model.likelihood(model.decode(code * st, w)).mean
                    return model.rate_bits(code * st, st, w) + lam * ((mean - x) * 255.0).pow(2).flatten(1).mean(1)

                # optimise u = y/Δ, so the learning rate is in quantisation bins
                u = torch.from_numpy(y[start:start + BATCH] / step_values).float().to(self._device).requires_grad_()
                optimizer = torch.optim.Adam([u], lr=REFINE_LR)
                noise = torch.Generator(device=self._device).manual_seed(REFINE_SEED + start)
                best_u, best = u.detach().clone(), torch.full((len(x),), float("inf"), device=self._device)
                for t in range(iterations + 1):
                    with torch.no_grad():
                        exact = price(torch.round(u))
                        better = exact < best
                        best = torch.where(better, exact, best)
                        best_u[better] = u.detach()[better]
                    if t == iterations:
                        break
                    with torch.enable_grad():
                        proxy = price(soft_rounding(u, annealed_temperature(t, iterations), noise))
                        optimizer.zero_grad()
                        proxy.sum().backward()
                    optimizer.step()
                out[start:start + BATCH] = (torch.round(best_u).double().cpu().numpy()) * step_values
        finally:
            for p, flag in zip(model.parameters(), frozen):
                p.requires_grad_(flag)
        return out


def annealed_temperature(step: int, steps: int) -> float:
    """REFINE_TAU[0] for the first REFINE_HOLD of the steps, then geometrically down to REFINE_TAU[1]."""
    hold = int(REFINE_HOLD * steps)
    if step < hold:
        return REFINE_TAU[0]
    rate = math.log(REFINE_TAU[0] / REFINE_TAU[1]) / max(steps - hold, 1)
    return REFINE_TAU[0] * math.exp(-rate * (step - hold))


def soft_rounding(u, tau: float, generator):
    """Stochastic Gumbel annealing's relaxed rounding of u (in bins) at temperature tau.

    Each element becomes ⌊u⌋ + a, a ∈ (0, 1) a Gumbel-softmax sample between rounding down
    (logit −atanh(r)/τ, r = u − ⌊u⌋ its distance) and up (−atanh(1 − r)/τ): the nearer integer
    is the likelier, an integer a whole bin away has probability 0, and a → {0, 1} as τ → 0.
    """
    import torch

    floor = torch.floor(u).detach()
    r = (u - floor).clamp(1e-5, 1 - 1e-5)
    logits = torch.stack([-torch.atanh(r), -torch.atanh(1 - r)], dim=-1) / tau
    uniform = torch.rand(logits.shape, generator=generator, device=u.device).clamp(1e-10, 1 - 1e-10)
    gumbel = -torch.log(-torch.log(uniform))
    return floor + torch.softmax((logits + gumbel) / tau, dim=-1)[..., 1]


class ContextRateDistortionCoder(RateDistortionCoder):
    """``conv-rd`` models with a context model: the grid is coded position by position (context.py)."""

    name = "rate-distortion-context"

    def __init__(self, model):
        from .context import IntegerContextNet

        super().__init__(model)
        self._net = IntegerContextNet(model.context)

    def tables(self, quality: float) -> CodingTables:
        raise VaelabError("a context model has no fixed tables: each position's come from the positions before it")

    def entropy_encode(self, y: np.ndarray, quality: float, progress=None) -> list[bytes]:
        """(N, D) latents -> one byte string per image."""
        from . import context

        return context.encode(self._net, y, self.steps(quality), self._level_weights(quality), progress)

    def entropy_decode(self, payloads: list[bytes], quality: float, progress=None) -> np.ndarray:
        """One byte string per image -> (N, D) dequantised latents."""
        from . import context

        return context.decode(self._net, payloads, self.steps(quality), self._level_weights(quality), progress)


def coder_for(model) -> LatentCoder:
    """The latent coder of a vaelab model (or a PCA coder, which is its own)."""
    from ...models.ae import AutoEncoder
    from ...models.rd import RateDistortionAutoEncoder
    from ...models.vae import VAE

    if hasattr(model, "tables") and hasattr(model, "synthesis"):
        return model
    if isinstance(model, RateDistortionAutoEncoder):
        return ContextRateDistortionCoder(model) if model.has_context else RateDistortionCoder(model)
    if isinstance(model, VAE):
        return GaussianPriorCoder(model)
    if isinstance(model, AutoEncoder):
        return FittedGaussianCoder(model)
    raise VaelabError(f"the codec cannot code with a {type(model).__name__}; use a vaelab model "
                      "(`vaelab.load(run_dir)`) or a PCA coder")
