"""Dense neural networks, encoders, decoders and autoencoders (thesis §1.1 and §2.1).

* `Neuron` — Def. 1.1.3: h(x) = φ(⟨w, x⟩ + b), parameters θ = (w, b).
* `DenseLayer` — Def. 1.1.4 / eq. (1.2): H(x) = φ̂(Wx + b) with W ∈ R^{m×k}; its i-th
  component is a φ-neuron with weight w_i = Wᵀe_i (row i of W) and bias b_i. Remark 1.1.5:
  θ = (W, b).
* `DenseNetwork` — Def. 1.1.6 / eq. (1.3): f = H_L ∘ … ∘ H_1 with θ = (θ_1, …, θ_L).
* `Encoder`, `Decoder` — Defs. 2.1.4 and 2.1.5: networks whose widths never increase, resp.
  never decrease.
* `compose` — Lemma 2.1.6: f_2 ∘ f_1 is a network of depth L_1 + L_2 with θ = (θ_1, θ_2).
* `Autoencoder` — Def. 2.1.7: f_a = f_d ∘ f_e with bottleneck n_b.

**Reading of the widths.** The thesis writes d_1, …, d_L for "the dimensions of each layer"
and calls d_1 the input and d_L the output dimension, while Fig. 1.1 counts input, hidden and
output sizes together. A network of L layers H_1, …, H_L needs L + 1 sizes (H_i maps
R^{d_i} → R^{d_{i+1}}), so here a width list has L + 1 entries, input dimension first:
``"784-400-20"`` is a network R^784 → R^20 of depth L = 2.

**The last layer.** Def. 1.1.6 applies φ in every layer, the last one included
(``output_activation="same"``, the default). Models usually want an affine last layer, since
logits and Gaussian means range over all of R: pass ``output_activation=None`` (or
``"identity"``). Any other activation may be named for the last layer as well.

Indices: the thesis counts neurons and layers from 1, Python from 0. `DenseLayer.neuron(i)`
and ``DenseNetwork.layers[i]`` take Python indices; error messages name layers from 1, as the
thesis does.
"""

from __future__ import annotations

import math
import operator
import re
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from ..errors import VaelabError
from .activations import get_activation

__all__ = [
    "Autoencoder",
    "Decoder",
    "DenseLayer",
    "DenseNetwork",
    "Encoder",
    "Neuron",
    "compose",
]

ActivationSpec = str | Callable[[torch.Tensor], torch.Tensor] | nn.Module


def _activation_or_identity(spec: ActivationSpec | None) -> nn.Module:
    return nn.Identity() if spec is None else get_activation(spec)


def _check_size(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise VaelabError(f"{what} must be a positive integer, got {value!r}")
    return value


# --------------------------------------------------------------------------------------
# Def. 1.1.3


class Neuron(nn.Module):
    """A φ-neuron h: R^k → R, h(x) = φ(⟨w, x⟩ + b) (Def. 1.1.3, eq. 1.1); θ = (w, b).

    ``Neuron(k, activation)`` owns fresh parameters (initialised like a width-1
    :class:`DenseLayer`). ``DenseLayer.neuron(i)`` instead returns a neuron *bound* to row i
    of that layer: its ``w`` and ``b`` are views of the layer's W and b, so the two always
    agree and gradients reach the layer's parameters.
    """

    def __init__(self, in_features: int, activation: ActivationSpec | None = "relu"):
        super().__init__()
        k = _check_size(in_features, "a neuron's input dimension k")
        linear = nn.Linear(k, 1)  # reuse torch's initialisation scheme
        self.weight = nn.Parameter(linear.weight.detach().reshape(k).clone())  # (k,)
        self.bias = nn.Parameter(linear.bias.detach().reshape(()).clone())  # ()
        self.activation = _activation_or_identity(activation)
        self._row: int | None = None

    @classmethod
    def of_layer(cls, layer: "DenseLayer", i: int) -> "Neuron":
        """The i-th component function h_i of ``layer`` (Def. 1.1.4), sharing its parameters."""
        m = layer.out_features
        if isinstance(i, bool) or not isinstance(i, int) or not -m <= i < m:
            raise VaelabError(f"neuron index {i!r} is out of range for a layer of width {m} (use 0 … {m - 1})")
        neuron = cls.__new__(cls)
        nn.Module.__init__(neuron)
        neuron.layer = layer  # registered: the neuron's parameters are the layer's
        neuron.activation = layer.activation
        neuron._row = i % m
        return neuron

    @property
    def w(self) -> torch.Tensor:
        """The weight w ∈ R^k, shape (k,); for a bound neuron, row i of the layer's W."""
        return self.weight if self._row is None else self.layer.W[self._row]

    @property
    def b(self) -> torch.Tensor:
        """The bias b ∈ R, shape (); for a bound neuron, entry i of the layer's b."""
        return self.bias if self._row is None else self.layer.b[self._row]

    @property
    def theta(self) -> tuple[torch.Tensor, torch.Tensor]:
        """θ = (w, b) of Def. 1.1.3."""
        return (self.w, self.b)

    @property
    def in_features(self) -> int:
        return self.w.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., k) → (...): φ(⟨w, x⟩ + b) for every vector x in the batch."""
        return self.activation(x @ self.w + self.b)


# --------------------------------------------------------------------------------------
# Def. 1.1.4 / Remark 1.1.5


class DenseLayer(nn.Module):
    """A φ-layer H: R^k → R^m of width m, H(x) = φ̂(Wx + b) (Def. 1.1.4, eq. 1.2).

    The affine part is an ``nn.Linear`` (one fused matrix product for the whole batch), whose
    weight is exactly W ∈ R^{m×k} and whose bias is b ∈ R^m. ``activation=None`` leaves the
    layer affine.
    """

    def __init__(self, in_features: int, out_features: int, activation: ActivationSpec | None = "relu"):
        super().__init__()
        k = _check_size(in_features, "a layer's input dimension")
        m = _check_size(out_features, "a layer's width")
        self.linear = nn.Linear(k, m)
        self.activation = _activation_or_identity(activation)

    @property
    def W(self) -> nn.Parameter:
        """The weight matrix W, shape (m, k): the live parameter, not a copy."""
        return self.linear.weight

    @property
    def b(self) -> nn.Parameter:
        """The bias vector b, shape (m,): the live parameter, not a copy."""
        return self.linear.bias

    @property
    def theta(self) -> tuple[nn.Parameter, nn.Parameter]:
        """θ = (W, b) (Remark 1.1.5)."""
        return (self.linear.weight, self.linear.bias)

    @property
    def in_features(self) -> int:
        return self.linear.in_features

    @property
    def out_features(self) -> int:
        return self.linear.out_features

    def neuron(self, i: int) -> Neuron:
        """The component h_i (0-based i) as a :class:`Neuron` sharing this layer's parameters."""
        return Neuron.of_layer(self, i)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, k) → (B, m): φ̂(Wx + b) for each row x."""
        return self.activation(self.linear(x))


# --------------------------------------------------------------------------------------
# Def. 1.1.6

_WIDTH_SEPARATORS = re.compile(r"\s*[-,]\s*|\s+")


class DenseNetwork(nn.Module):
    """A φ-deep neural network f = H_L ∘ … ∘ H_1: R^{d_1} → R^{d_{L+1}} (Def. 1.1.6, eq. 1.3).

    ``widths``: L + 1 positive integers, input dimension first, or the same as text
    (``"784-400-20"``: depth 2; commas and spaces also separate). ``activation``: the φ of
    every hidden layer (a name understood by :func:`get_activation`, a callable or a module);
    one module instance is shared by the layers, as Def. 1.1.6 uses one φ throughout.
    ``output_activation``: ``"same"`` (φ on the last layer too — Def. 1.1.6 exactly),
    ``None``/``"identity"`` (affine last layer, for logits or means) or another activation.

    ``forward`` takes (B, d_1) — or images (B, C, H, W) with C·H·W = d_1, flattened row-major
    as in Lemma 1.3.3 — and returns (B, d_{L+1}). A single vector (d_1,) gives (d_{L+1},).
    """

    def __init__(
        self,
        widths: Sequence[int] | str,
        activation: ActivationSpec = "relu",
        output_activation: ActivationSpec | None = "same",
    ):
        super().__init__()
        sizes = self.parse_widths(widths)
        self.check_widths(sizes)
        phi = get_activation(activation)
        if isinstance(output_activation, str) and output_activation.strip().lower() == "same":
            last = phi
        else:
            last = _activation_or_identity(output_activation)
        L = len(sizes) - 1
        self.layers = nn.ModuleList(
            DenseLayer(sizes[i], sizes[i + 1], phi if i < L - 1 else last) for i in range(L)
        )

    # -- construction helpers ----------------------------------------------------------

    @staticmethod
    def parse_widths(widths: Sequence[int] | str) -> tuple[int, ...]:
        """``"784-400-20"`` or ``[784, 400, 20]`` → ``(784, 400, 20)``; at least two positive sizes.

        Raises :class:`VaelabError` for anything else, naming the bad entry.
        """
        if isinstance(widths, str):
            text = widths.strip()
            parts = _WIDTH_SEPARATORS.split(text) if text else []
            sizes = []
            for position, part in enumerate(parts, start=1):
                if not re.fullmatch(r"[0-9]+", part):
                    raise VaelabError(
                        f"width list {widths!r}: entry {position} ({part!r}) is not a positive integer; "
                        "write e.g. '784-400-20'"
                    )
                sizes.append(int(part))
        else:
            try:
                entries = list(widths)
            except TypeError:
                raise VaelabError(
                    f"widths must be a list of integers or a string like '784-400-20', got {widths!r}"
                ) from None
            sizes = []
            for position, size in enumerate(entries, start=1):
                # operator.index admits Python and numpy integers but not 4.0 or True
                try:
                    if isinstance(size, bool):
                        raise TypeError
                    sizes.append(operator.index(size))
                except TypeError:
                    raise VaelabError(f"width list {widths!r}: entry {position} ({size!r}) is not an integer") from None
        if len(sizes) < 2:
            raise VaelabError(
                f"width list {widths!r} needs at least two sizes (input and output dimension), e.g. '784-400-20'"
            )
        for position, size in enumerate(sizes, start=1):
            if size < 1:
                raise VaelabError(f"width list {widths!r}: entry {position} is {size}; every width must be at least 1")
        return tuple(sizes)

    @classmethod
    def check_widths(cls, widths: Sequence[int]) -> None:
        """Hook for subclasses that restrict the widths (Defs. 2.1.4, 2.1.5); none here."""

    @classmethod
    def from_layers(cls, layers: Iterable[DenseLayer]) -> "DenseNetwork":
        """A network made of existing layers (shared, not copied), each keeping its activation."""
        layers = list(layers)
        if not layers:
            raise VaelabError("a network needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, DenseLayer):
                raise VaelabError(f"layer {i + 1} is a {type(layer).__name__}, not a DenseLayer")
        for i in range(len(layers) - 1):
            if layers[i].out_features != layers[i + 1].in_features:
                raise VaelabError(
                    f"layer {i + 1} outputs {layers[i].out_features} numbers but layer {i + 2} "
                    f"expects {layers[i + 1].in_features}"
                )
        widths = (layers[0].in_features,) + tuple(layer.out_features for layer in layers)
        cls.check_widths(widths)
        network = cls.__new__(cls)
        nn.Module.__init__(network)
        network.layers = nn.ModuleList(layers)
        return network

    # -- what the thesis names ------------------------------------------------------------

    @property
    def depth(self) -> int:
        """L, the number of layers."""
        return len(self.layers)

    @property
    def widths(self) -> tuple[int, ...]:
        """(d_1, …, d_{L+1}): input dimension, hidden widths, output dimension."""
        return (self.layers[0].in_features,) + tuple(layer.out_features for layer in self.layers)

    @property
    def in_features(self) -> int:
        return self.layers[0].in_features

    @property
    def out_features(self) -> int:
        return self.layers[-1].out_features

    @property
    def theta(self) -> tuple[tuple[nn.Parameter, nn.Parameter], ...]:
        """θ = (θ_1, …, θ_L) with θ_i = (W_i, b_i) (Def. 1.1.6): the live parameters."""
        return tuple(layer.theta for layer in self.layers)

    # -- evaluation -------------------------------------------------------------------------

    def _as_matrix(self, x: torch.Tensor) -> torch.Tensor:
        d = self.in_features
        if x.dim() == 2 and x.shape[1] == d:
            return x
        if x.dim() == 1 and x.shape[0] == d:
            return x.unsqueeze(0)
        if x.dim() >= 3 and math.prod(x.shape[1:]) == d:
            # Lemma 1.3.3: an image is the row-major concatenation of its rows (B, C·H·W)
            return x.reshape(x.shape[0], d)
        raise VaelabError(
            f"this network takes inputs of dimension {d} (shape (B, {d}), or images whose C·H·W = {d}); "
            f"got shape {tuple(x.shape)}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, d_1) or (B, C, H, W) → (B, d_{L+1}); (d_1,) → (d_{L+1},). Eq. (1.3)."""
        h = self._as_matrix(x)
        for layer in self.layers:  # H_L ∘ … ∘ H_1, innermost first
            h = layer(h)
        return h.squeeze(0) if x.dim() == 1 else h

    def extra_repr(self) -> str:
        return "widths=" + "-".join(str(w) for w in self.widths)


# --------------------------------------------------------------------------------------
# Defs. 2.1.4 and 2.1.5


class Encoder(DenseNetwork):
    """An encoding network f_e: widths n_i = d_1 ≥ d_2 ≥ … ≥ n_o (Def. 2.1.4).

    Same signature as :class:`DenseNetwork`; any width list that increases somewhere is
    refused with a :class:`VaelabError` naming the layer.
    """

    @classmethod
    def check_widths(cls, widths: Sequence[int]) -> None:
        for i in range(len(widths) - 1):
            if widths[i + 1] > widths[i]:
                raise VaelabError(
                    f"an encoder's widths must not increase (Def. 2.1.4): "
                    f"{widths[i]} → {widths[i + 1]} at layer {i + 1}"
                )


class Decoder(DenseNetwork):
    """A decoding network f_d: widths n_i = d_1 ≤ d_2 ≤ … ≤ n_o (Def. 2.1.5).

    Same signature as :class:`DenseNetwork`; any width list that decreases somewhere is
    refused with a :class:`VaelabError` naming the layer.
    """

    @classmethod
    def check_widths(cls, widths: Sequence[int]) -> None:
        for i in range(len(widths) - 1):
            if widths[i + 1] < widths[i]:
                raise VaelabError(
                    f"a decoder's widths must not decrease (Def. 2.1.5): "
                    f"{widths[i]} → {widths[i + 1]} at layer {i + 1}"
                )


# --------------------------------------------------------------------------------------
# Lemma 2.1.6


def compose(f1: DenseNetwork, f2: DenseNetwork) -> DenseNetwork:
    """f_2 ∘ f_1 as one network of depth L_1 + L_2 with θ = (θ_1, θ_2) (Lemma 2.1.6).

    The result *shares* the layers of ``f1`` and ``f2`` (same parameter objects, so
    ``compose(f1, f2).theta == f1.theta + f2.theta``) and each layer keeps its own activation,
    so its output equals ``f2(f1(x))``. Requires d_{L_1} = d̃_1, i.e.
    ``f1.out_features == f2.in_features``.
    """
    for name, f in (("f1", f1), ("f2", f2)):
        if not isinstance(f, DenseNetwork):
            raise VaelabError(f"compose takes two DenseNetworks; {name} is a {type(f).__name__}")
    if f1.out_features != f2.in_features:
        raise VaelabError(
            f"cannot compose: f1 outputs {f1.out_features} numbers but f2 takes {f2.in_features} "
            "(Lemma 2.1.6 needs d_L1 = d̃_1)"
        )
    return DenseNetwork.from_layers(list(f1.layers) + list(f2.layers))


# --------------------------------------------------------------------------------------
# Def. 2.1.7


class Autoencoder(nn.Module):
    """An autoencoding network f_a = f_d ∘ f_e: R^{n_i} → R^{n_i} (Def. 2.1.7).

    ``encoder`` and ``decoder`` are dense networks whose widths never increase, resp. never
    decrease (checked with the rules of :class:`Encoder` and :class:`Decoder`, so plain
    :class:`DenseNetwork` instances with suitable widths are accepted). The encoder's output
    dimension is the bottleneck n_b and must be the decoder's input dimension; the decoder's
    output dimension must be the encoder's input dimension n_i.

    ``forward(x)`` returns f_d(f_e(x)) in the shape of ``x``: images (B, C, H, W) are
    flattened (Lemma 1.3.3) on the way in and unflattened on the way out.
    """

    def __init__(self, encoder: DenseNetwork, decoder: DenseNetwork):
        super().__init__()
        for name, f in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(f, DenseNetwork):
                raise VaelabError(f"the {name} must be a DenseNetwork, got {type(f).__name__}")
        Encoder.check_widths(encoder.widths)
        Decoder.check_widths(decoder.widths)
        if encoder.out_features != decoder.in_features:
            raise VaelabError(
                f"the encoder outputs {encoder.out_features} numbers but the decoder takes {decoder.in_features}; "
                "both must equal the bottleneck n_b (Def. 2.1.7)"
            )
        if decoder.out_features != encoder.in_features:
            raise VaelabError(
                f"an autoencoder maps R^n_i to R^n_i (Def. 2.1.7): the encoder takes {encoder.in_features} "
                f"numbers but the decoder returns {decoder.out_features}"
            )
        self.encoder = encoder
        self.decoder = decoder

    @classmethod
    def from_widths(
        cls,
        encoder_widths: Sequence[int] | str,
        activation: ActivationSpec = "relu",
        code_activation: ActivationSpec | None = None,
        output_activation: ActivationSpec | None = None,
    ) -> "Autoencoder":
        """The symmetric autoencoder of ``encoder_widths`` (e.g. ``"64-32-8"`` → 64-32-8-32-64).

        ``code_activation`` is the last activation of the encoder and ``output_activation``
        that of the decoder (``None``: affine; ``"same"``: φ, as in Def. 1.1.6).
        """
        widths = DenseNetwork.parse_widths(encoder_widths)
        encoder = Encoder(widths, activation, code_activation)
        decoder = Decoder(tuple(reversed(widths)), activation, output_activation)
        return cls(encoder, decoder)

    @property
    def bottleneck(self) -> int:
        """n_b, the output dimension of the encoder."""
        return self.encoder.out_features

    @property
    def depth(self) -> int:
        """L_e + L_d, the depth of f_d ∘ f_e (Lemma 2.1.6)."""
        return self.encoder.depth + self.decoder.depth

    @property
    def theta(self) -> tuple[tuple[nn.Parameter, nn.Parameter], ...]:
        """(θ_e, θ_d) flattened to the layers' (W_i, b_i), as in Lemma 2.1.6."""
        return self.encoder.theta + self.decoder.theta

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_i) or (B, C, H, W) → (B, n_b)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, n_b) → (B, n_i)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """f_d(f_e(x)), shaped like ``x``."""
        return self.decoder(self.encoder(x)).reshape(x.shape)
