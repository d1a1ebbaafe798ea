"""Images and image operators (thesis §1.3: Def. 1.3.1 – Prop. 1.3.9).

**Pixel domain (Def. 1.3.1, Remark 1.3.2).** An image of resolution (M, N) with d channels
assigns every pixel (i, j) ∈ Ω = {1..M} × {1..N} a value ψ_ij ∈ {1, …, 255}^d. Eight-bit
images use {0, …, 255}, so vaelab does too: images at the edges are ``uint8`` tensors shaped
(N, C, H, W) — batch, channels d, rows M, columns N — and inside they are floats in [0, 1]
(`to_float`, `to_uint8`). d = 1 is a black-and-white picture and d = 3 an RGB one
(`channel_kind`).

**Operators.** Every function here takes float tensors (N, C, H, W), is vectorised (one
PyTorch kernel per call, no loops over pixels) and differentiable.

* `flatten_image` / `unflatten_image` — Lemma 1.3.3: an M×N image is the MN-vector of its
  rows stacked (row-major).
* `ImageOperator` — Def. 1.3.4: a map from images to images that keeps the channel count.
* `ImageLayer` — Cor. 1.3.5: ψ ↦ φ̂(Tψ + b).
* `convolve` / `Convolution` — Prop. 1.3.6, eq. (1.7).
* `avg_pool`, `min_pool`, `max_pool` and their modules — Props. 1.3.7–1.3.9, eqs. (1.8)–(1.10).

**Index conventions.** With 1-based indices the thesis writes (ψ_1)_ij = Σ_{m,n=1}^s
(ψ_0)_{m+i, n+j} k_mn for i = 1, …, M_0 − s + 1; taken literally this reads one pixel past the
border at i = M_0 − s + 1. The intended window starts at pixel (i, j), i.e. index m + i − 1,
which in 0-based terms is

    (ψ_1)[i, j] = Σ_{m,n=0}^{s−1} (ψ_0)[i·s_t + m, j·s_t + n] · k[m, n]      (stride s_t)

— a cross-correlation (the kernel is not flipped), which is what ``F.conv2d`` computes.
Eqs. (1.9)–(1.10) write min/max over (ψ_0)_kl for (k, l) ∈ I without the offset (i, j); the
intended window is again the one starting at (i, j). Pooling acts on each channel separately
(the min/max of pixel vectors is taken entry-wise).

**Strides.** Props. 1.3.7–1.3.9 introduce a stride s but state the output sizes of s = 1,
M_1 = M_0 − p_1 + 1. For a general stride the windows start at rows 0, s, 2s, … and the output
has M_1 = ⌊(M_0 − p_1)/s⌋ + 1 rows (likewise for columns); s = 1 gives the thesis' sizes and is
the default here (PyTorch's own pooling defaults to s = p instead).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import VaelabError
from .activations import get_activation

__all__ = [
    "PIXEL_MAX",
    "AvgPool",
    "Convolution",
    "ImageLayer",
    "ImageOperator",
    "MaxPool",
    "MinPool",
    "avg_pool",
    "channel_kind",
    "check_pixels",
    "convolve",
    "flatten_image",
    "max_pool",
    "min_pool",
    "output_size",
    "to_float",
    "to_uint8",
    "unflatten_image",
]

#: The largest 8-bit pixel value; the pixel domain used here is {0, …, 255}.
PIXEL_MAX = 255


# --------------------------------------------------------------------------------------
# Def. 1.3.1, Remark 1.3.2


def channel_kind(channels: int) -> str:
    """Remark 1.3.2: ``"black-and-white"`` for d = 1, ``"rgb"`` for d = 3, else ``"multi-channel"``."""
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise VaelabError(f"an image has a positive number of channels (Def. 1.3.1), got {channels!r}")
    return {1: "black-and-white", 3: "rgb"}.get(channels, "multi-channel")


def _shape4(x: torch.Tensor, what: str = "image batch") -> tuple[int, int, int, int]:
    if not isinstance(x, torch.Tensor):
        raise VaelabError(f"{what} must be a torch tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise VaelabError(f"{what} must have shape (N, C, H, W), got shape {tuple(x.shape)}")
    N, C, H, W = x.shape
    if min(N, C, H, W) < 1:
        raise VaelabError(f"{what} has an empty dimension: shape {tuple(x.shape)}")
    return N, C, H, W


def check_pixels(images: torch.Tensor) -> str:
    """Check that ``images`` (N, C, H, W) lie in the pixel domain {0, …, 255}^C (Def. 1.3.1).

    Accepts ``uint8`` (always in range) and other integer dtypes whose values are in range.
    Returns :func:`channel_kind` of C. Raises :class:`VaelabError` otherwise.
    """
    _, C, _, _ = _shape4(images, "images")
    if images.dtype != torch.uint8:
        if images.dtype.is_floating_point or images.dtype.is_complex or images.dtype == torch.bool:
            raise VaelabError(
                f"pixel values must be integers in 0…255 (Def. 1.3.1), got dtype {images.dtype}; "
                "float images are handled with to_uint8()"
            )
        lo, hi = int(images.min()), int(images.max())
        if lo < 0 or hi > PIXEL_MAX:
            raise VaelabError(f"pixel values must lie in 0…{PIXEL_MAX} (Def. 1.3.1), found {lo}…{hi}")
    return channel_kind(C)


def to_float(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 (N, C, H, W) in {0..255} → float in [0, 1], same shape (the inside representation)."""
    check_pixels(images)
    return images.to(dtype) / PIXEL_MAX


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float (N, C, H, W) in [0, 1] → uint8 in {0..255}: scale, round to nearest, clip."""
    _shape4(x)
    if not x.dtype.is_floating_point:
        raise VaelabError(f"to_uint8 expects a float image in [0, 1], got dtype {x.dtype}")
    return (x.detach() * PIXEL_MAX).round().clamp(0, PIXEL_MAX).to(torch.uint8)


# --------------------------------------------------------------------------------------
# Lemma 1.3.3


def flatten_image(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) → (N, C·H·W): each channel's rows stacked one after another (Lemma 1.3.3).

    Entry ``c·H·W + i·W + j`` is pixel (i, j) of channel c. The lemma's MN-array of pixel
    vectors ψ_ij ∈ R^d would interleave the channels (pixel-major, (H, W, C) order); we keep
    the channel as the outer index because that is PyTorch's memory layout, so flattening is
    a free view, and for d = 1 both orders coincide. Either way it is a fixed bijection, which
    is all Lemma 1.3.3 needs.
    """
    N, C, H, W = _shape4(x)
    return x.reshape(N, C * H * W)


def unflatten_image(v: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """(N, C·H·W) → (N, C, H, W) for ``shape = (C, H, W)``; the inverse of :func:`flatten_image`."""
    if len(shape) != 3 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise VaelabError(f"image shape must be (C, H, W) with positive sizes, got {shape!r}")
    C, H, W = shape
    if v.dim() != 2 or v.shape[1] != C * H * W:
        raise VaelabError(f"expected vectors of shape (N, {C * H * W}) for images {tuple(shape)}, got {tuple(v.shape)}")
    return v.reshape(v.shape[0], C, H, W)


# --------------------------------------------------------------------------------------
# sizes and arguments


def _pair(value: int | tuple[int, int], what: str) -> tuple[int, int]:
    pair = (value, value) if not isinstance(value, (tuple, list)) else tuple(value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in pair):
        raise VaelabError(f"{what} must be a positive integer or a pair of them, got {value!r}")
    return pair  # type: ignore[return-value]


def output_size(size: int, window: int, stride: int = 1) -> int:
    """Output length ⌊(size − window)/stride⌋ + 1 of a valid window sweep (= size − window + 1 for stride 1)."""
    return (size - window) // stride + 1


def _check_fits(H: int, W: int, window: tuple[int, int], what: str) -> None:
    if window[0] > H or window[1] > W:
        raise VaelabError(f"the {what} {window[0]}×{window[1]} is larger than the {H}×{W} image")


def _check_float(x: torch.Tensor, what: str) -> None:
    if not x.dtype.is_floating_point:
        raise VaelabError(f"{what} must be a float tensor (got {x.dtype}); convert uint8 images with to_float()")


# --------------------------------------------------------------------------------------
# Prop. 1.3.6


def convolve(x: torch.Tensor, kernel: torch.Tensor, stride: int | tuple[int, int] = 1) -> torch.Tensor:
    """The image convolution operator T_conv of Prop. 1.3.6, eq. (1.7), with stride.

    ``x``: (N, C, M_0, N_0) float. ``kernel``:

    * (s_1, s_2) — one kernel applied to every channel separately: channels are kept, as an
      image operator must (Def. 1.3.4); the thesis' s-kernel is the case s_1 = s_2 = s;
    * (C, s_1, s_2) — one kernel per channel (still channel-keeping);
    * (C_out, C, s_1, s_2) — the general multi-channel convolution of CNNs, which mixes
      channels: (ψ_1)[o, i, j] = Σ_c Σ_{m,n} (ψ_0)[c, i·s + m, j·s + n] k[o, c, m, n].

    Returns (N, C or C_out, ⌊(M_0 − s_1)/s⌋ + 1, ⌊(N_0 − s_2)/s⌋ + 1). As in eq. (1.7) this is a
    cross-correlation (no kernel flip) over valid windows only (no padding).
    """
    N, C, H, W = _shape4(x)
    _check_float(x, "the image")
    st = _pair(stride, "the stride")
    if not isinstance(kernel, torch.Tensor):
        raise VaelabError(f"the kernel must be a torch tensor, got {type(kernel).__name__}")
    kernel = kernel.to(x.dtype)
    if kernel.dim() == 2:
        # the same s1×s2 kernel for each channel: a depthwise convolution (groups = C)
        weight = kernel.expand(C, 1, *kernel.shape)  # (C, 1, s1, s2), a view
        groups = C
    elif kernel.dim() == 3:
        if kernel.shape[0] != C:
            raise VaelabError(f"a per-channel kernel must have shape ({C}, s1, s2) for {C} channels, got {tuple(kernel.shape)}")
        weight = kernel.unsqueeze(1)  # (C, 1, s1, s2)
        groups = C
    elif kernel.dim() == 4:
        if kernel.shape[1] != C:
            raise VaelabError(f"a kernel (C_out, C_in, s1, s2) must have C_in = {C}, got {tuple(kernel.shape)}")
        weight = kernel
        groups = 1
    else:
        raise VaelabError(f"the kernel must have 2, 3 or 4 dimensions, got shape {tuple(kernel.shape)}")
    window = (int(weight.shape[-2]), int(weight.shape[-1]))
    if min(window) < 1 or weight.shape[0] < 1:
        raise VaelabError(f"the kernel has an empty dimension: shape {tuple(kernel.shape)}")
    _check_fits(H, W, window, "kernel")
    return F.conv2d(x, weight, stride=st, groups=groups)


# --------------------------------------------------------------------------------------
# Props. 1.3.7 – 1.3.9


def _pool_args(x: torch.Tensor, pool: int | tuple[int, int], stride: int | tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    _, _, H, W = _shape4(x)
    _check_float(x, "the image")
    window = _pair(pool, "the pooling window (p1, p2)")
    st = _pair(stride, "the stride")
    _check_fits(H, W, window, "pooling window")
    return window, st


def avg_pool(x: torch.Tensor, pool: int | tuple[int, int], stride: int | tuple[int, int] = 1) -> torch.Tensor:
    """Average pooling T_avg (Prop. 1.3.7, eq. 1.8): the mean of each p_1×p_2 window.

    (N, C, M_0, N_0) → (N, C, ⌊(M_0 − p_1)/s⌋ + 1, ⌊(N_0 − p_2)/s⌋ + 1), channel by channel.
    """
    window, st = _pool_args(x, pool, stride)
    return F.avg_pool2d(x, window, stride=st)


def max_pool(x: torch.Tensor, pool: int | tuple[int, int], stride: int | tuple[int, int] = 1) -> torch.Tensor:
    """Max pooling T_max (Prop. 1.3.9, eq. 1.10): the largest value of each p_1×p_2 window.

    (N, C, M_0, N_0) → (N, C, ⌊(M_0 − p_1)/s⌋ + 1, ⌊(N_0 − p_2)/s⌋ + 1), channel by channel.
    """
    window, st = _pool_args(x, pool, stride)
    return F.max_pool2d(x, window, stride=st)


def min_pool(x: torch.Tensor, pool: int | tuple[int, int], stride: int | tuple[int, int] = 1) -> torch.Tensor:
    """Min pooling T_min-pool (Prop. 1.3.8, eq. 1.9): the smallest value of each p_1×p_2 window.

    Computed as −maxpool(−x) (min t = −max(−t)), which reuses the fused max-pool kernel.
    Shapes as in :func:`max_pool`.
    """
    window, st = _pool_args(x, pool, stride)
    return -F.max_pool2d(-x, window, stride=st)


# --------------------------------------------------------------------------------------
# Def. 1.3.4 and the operators as modules


class ImageOperator(nn.Module):
    """An image operator T: Ψ_{d,Ω_0} → Ψ_{d,Ω_1} (Def. 1.3.4): images in, images out, d kept.

    Subclasses implement :meth:`operate`; ``forward`` checks the input is (N, C, H, W) and that
    T kept the number of channels, raising :class:`VaelabError` if not.
    """

    def operate(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement operate(x)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H_0, W_0) → (N, C, H_1, W_1)."""
        _, C, _, _ = _shape4(x)
        y = self.operate(x)
        if y.dim() != 4 or y.shape[1] != C:
            raise VaelabError(
                f"{type(self).__name__} is no image operator: it turned {C} channels into shape {tuple(y.shape)} "
                "(Def. 1.3.4 keeps the number of channels)"
            )
        return y


class Convolution(ImageOperator):
    """T_conv (Prop. 1.3.6) with a learnable s_1×s_2 kernel per channel (channel-keeping).

    ``kernel``, if given, is the initial kernel, shape (s_1, s_2) (shared by the channels, then
    copied per channel) or (C, s_1, s_2). Otherwise it starts uniform in ±1/√(s_1 s_2).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        kernel: torch.Tensor | None = None,
    ):
        super().__init__()
        C = channels
        channel_kind(C)
        s1, s2 = _pair(kernel_size, "the kernel size")
        self.stride = _pair(stride, "the stride")
        if kernel is None:
            bound = (s1 * s2) ** -0.5
            init = torch.empty(C, s1, s2).uniform_(-bound, bound)
        else:
            init = kernel.detach().to(torch.get_default_dtype())
            if init.dim() == 2:
                init = init.expand(C, *init.shape)
            if tuple(init.shape) != (C, s1, s2):
                raise VaelabError(f"initial kernel must have shape ({s1}, {s2}) or ({C}, {s1}, {s2}), got {tuple(kernel.shape)}")
        self.kernel = nn.Parameter(init.clone())  # (C, s1, s2)

    def operate(self, x: torch.Tensor) -> torch.Tensor:
        return convolve(x, self.kernel, self.stride)


class _Pool(ImageOperator):
    _fn: Callable[..., torch.Tensor]

    def __init__(self, pool: int | tuple[int, int], stride: int | tuple[int, int] = 1):
        super().__init__()
        self.pool = _pair(pool, "the pooling window (p1, p2)")
        self.stride = _pair(stride, "the stride")

    def operate(self, x: torch.Tensor) -> torch.Tensor:
        return type(self)._fn(x, self.pool, self.stride)

    def extra_repr(self) -> str:
        return f"pool={self.pool}, stride={self.stride}"


class AvgPool(_Pool):
    """T_avg of Prop. 1.3.7 as an image operator (see :func:`avg_pool`)."""

    _fn = staticmethod(avg_pool)


class MinPool(_Pool):
    """T_min-pool of Prop. 1.3.8 as an image operator (see :func:`min_pool`)."""

    _fn = staticmethod(min_pool)


class MaxPool(_Pool):
    """T_max of Prop. 1.3.9 as an image operator (see :func:`max_pool`)."""

    _fn = staticmethod(max_pool)


# --------------------------------------------------------------------------------------
# Cor. 1.3.5


class ImageLayer(nn.Module):
    """A neural layer on images, H(ψ) = φ̂(Tψ + b) (Cor. 1.3.5).

    ``operator`` is an :class:`ImageOperator` T; ``b`` is one learnable bias per channel,
    shape (C, 1, 1), broadcast over the pixels (the thesis leaves b's shape open; a per-channel
    bias is what convolutional layers use and does not depend on the output resolution).
    ``activation`` is φ (a name, callable or module; ``None`` for none).
    """

    def __init__(self, operator: ImageOperator, channels: int, activation: str | Callable | nn.Module | None = "relu"):
        super().__init__()
        if not isinstance(operator, ImageOperator):
            raise VaelabError(f"Cor. 1.3.5 needs an ImageOperator, got {type(operator).__name__}")
        channel_kind(channels)
        self.operator = operator
        self.bias = nn.Parameter(torch.zeros(channels, 1, 1))
        self.activation = nn.Identity() if activation is None else get_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H_0, W_0) → (N, C, H_1, W_1)."""
        _, C, _, _ = _shape4(x)
        if C != self.bias.shape[0]:
            raise VaelabError(f"this image layer has {self.bias.shape[0]} channels, the input has {C}")
        return self.activation(self.operator(x) + self.bias)
