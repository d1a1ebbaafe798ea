"""Coding a latent grid position by position under the context model (Minnen et al. 2018).

With ``rd_context`` a conv-rd model predicts each position's (μ, s) from the positions sent
before it (rd_context.py); this module is that network's exact fixed-point twin, which the
model's entropy model (rd_entropy.py) codes with. Encoder and decoder therefore walk the grid in raster
order together: at each position both compute the prediction from the values decoded so far,
build that position's probability tables, and code its M channels (with channel groups, one
group at a time, each predicted also from the groups before it); the decoder then knows the
values the next step needs.

The prediction must come out *identical* on both sides, on any machine, or decoding derails.
Float network outputs can differ in the last bit between CPUs and thread counts, so the walk
runs :class:`IntegerContextNet`, an exact copy of the network in fixed point: activations
with ACTIVATION_BITS fractional bits, weights with WEIGHT_BITS, int64 matrix products (whose
result does not depend on summation order) and shifts for rescaling and the leaky ReLU.
Its predictions differ from the float network's by ~10⁻³ in μ and log s, which costs a
fraction of a bit per image (tested); they are what the file is coded with.

``constriction`` quantises a zero-padded row differently from the unpadded one, so a table's
width must not depend on anything the other side cannot see: each image's M rows at a
position are coded with a table as wide as its own widest row. An image's bits therefore
depend on that image alone, and images are walked together in chunks (CHUNK) only for speed.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..coding import rangecoder as entropy
from ..coding.density import CodingTables, FactorisedDensity, coding_tables
from ..errors import VaelabError
from .rd_context import LEAK, LOG_SCALE_FLOOR

ACTIVATION_BITS = 12      # fractional bits of latents and hidden activations
WEIGHT_BITS = 16          # fractional bits of weights
CHUNK = 64                # images walked together (for speed only: each image is coded on its own)
MAX_SCALE_STEPS = 256.0   # widest spread a table allows, in quantisation steps
LOC_BOUND = 1e6           # |μ| and log s beyond these come only from damaged streams
LOG_SCALE_CEILING = 20.0


def _fixed(values: np.ndarray, bits: int) -> np.ndarray:
    return np.rint(np.asarray(values, dtype=np.float64) * float(1 << bits)).astype(np.int64)


def _shift(values: np.ndarray, bits: int) -> np.ndarray:
    """Divide by 2^bits, rounding half up (an arithmetic shift: exact and the same everywhere)."""
    return (values + (1 << (bits - 1))) >> bits


class _ExactMatrix:
    """An integer weight matrix whose products with integer activations are exact.

    int64 products in numpy do not use BLAS and are slow. A float64 product is exact —
    whatever the summation order, hardware or thread count — when every partial sum is an
    integer below 2^53, which max|a| · max_j Σ_i |W_ij| < 2^53 guarantees. So BLAS is used
    when that bound holds (always, for real codes) and int64 arithmetic otherwise.
    """

    def __init__(self, weights: np.ndarray):
        self.int = np.ascontiguousarray(weights, dtype=np.int64)
        self.float = self.int.astype(np.float64)
        self.column_sum = int(np.abs(self.int).sum(axis=0).max(initial=0))

    def times(self, a: np.ndarray) -> np.ndarray:
        """a @ W, exactly."""
        if int(np.abs(a).max(initial=0)) * self.column_sum < 2**53:
            return (a.astype(np.float64) @ self.float).astype(np.int64)
        return a @ self.int


def _leaky(values: np.ndarray) -> np.ndarray:
    """Leaky ReLU with slope 1/8 = models.rd_context.LEAK, as a shift."""
    return np.where(values < 0, values >> 3, values)


class IntegerContextNet:
    """The fixed-point copy of a :class:`~vaelab.models.rd_context.LatentContextModel`."""

    def __init__(self, context):
        import torch

        if LEAK != 0.125:
            raise AssertionError("the integer copy implements a leaky-ReLU slope of 1/8")
        with torch.no_grad():
            weight = (context.causal.weight * context.causal.mask).double().cpu().numpy()    # (Wd, M, k, k)
            mask = context.causal.mask[0, 0].cpu().numpy()
            self.radius = weight.shape[-1] // 2
            self.taps = [(int(di) - self.radius, int(dj) - self.radius) for di, dj in zip(*np.nonzero(mask))]
            # rows of W1: tap-major, then input channel — the order predict() gathers them in
            w1 = np.stack([weight[:, :, di + self.radius, dj + self.radius] for di, dj in self.taps])  # (T, Wd, M)
            self.w1 = _fixed(w1.transpose(0, 2, 1).reshape(-1, weight.shape[0]), WEIGHT_BITS)
            self.b1 = _fixed(context.causal.bias.double().cpu().numpy(), ACTIVATION_BITS + WEIGHT_BITS)
            self.level_weight = context.level.weight.double().cpu().numpy()                          # (Wd, L)
            self.w2 = _fixed(context.mix.weight[:, :, 0, 0].double().cpu().numpy().T, WEIGHT_BITS)
            self.b2 = _fixed(context.mix.bias.double().cpu().numpy(), ACTIVATION_BITS + WEIGHT_BITS)
            self.w3 = _fixed(context.out.weight[:, :, 0, 0].double().cpu().numpy().T, WEIGHT_BITS)
            self.b3 = _fixed(context.out.bias.double().cpu().numpy(), ACTIVATION_BITS + WEIGHT_BITS)
            self.position = _fixed(context.position.double().cpu().numpy(), ACTIVATION_BITS)         # (2, M, h, w)
            # channel context: per group g ≥ 1, (W_in, b_in, W_hidden, W_out, b_out)
            self.group_branches = [
                (_fixed(g_in.weight[:, :, 0, 0].double().cpu().numpy().T, WEIGHT_BITS),
                 _fixed(g_in.bias.double().cpu().numpy(), ACTIVATION_BITS + WEIGHT_BITS),
                 _fixed(g_hidden.weight[:, :, 0, 0].double().cpu().numpy().T, WEIGHT_BITS),
                 _fixed(g_out.weight[:, :, 0, 0].double().cpu().numpy().T, WEIGHT_BITS),
                 _fixed(g_out.bias.double().cpu().numpy(), ACTIVATION_BITS + WEIGHT_BITS))
                for g_in, g_hidden, g_out in zip(context.group_in, context.group_hidden, context.group_out)]
        self.grid = tuple(context.grid)
        self.groups = context.groups
        self.log_scale_floor = LOG_SCALE_FLOOR
        arrays = [self.w1, self.b1, self.w2, self.b2, self.w3, self.b3, self.position]
        if any(np.abs(a).max(initial=0) > (1 << 40) for a in arrays + [a for b in self.group_branches for a in b]):
            raise VaelabError("the model's context network has weights too large for the codec; retrain the model")
        self.w1, self.w2, self.w3 = _ExactMatrix(self.w1), _ExactMatrix(self.w2), _ExactMatrix(self.w3)
        self.group_branches = [(_ExactMatrix(w_in), b_in, _ExactMatrix(w_hidden), _ExactMatrix(w_out), b_out)
                               for w_in, b_in, w_hidden, w_out, b_out in self.group_branches]

    def level_bias(self, level_weights: np.ndarray) -> np.ndarray:
        """(L,) level weights -> (Wd,) int64: the level's contribution to the first hidden layer."""
        acc = np.zeros(self.level_weight.shape[0])
        for level, w in enumerate(level_weights):  # element-wise, fixed order
            acc = acc + w * self.level_weight[:, level]
        return _fixed(acc, ACTIVATION_BITS + WEIGHT_BITS)

    @property
    def group_size(self) -> int:
        """Channels per group: each position's channels are coded in ``groups`` steps of this many."""
        return self.grid[0] // self.groups

    def spatial(self, grid: np.ndarray, i: int, j: int, level_bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Padded fixed-point grid (N, M, h+2r, w+2r) -> the hidden layer (N, Wd) and the
        fixed-point (μ, log s) (N, 2M) at position (i, j) before any channel context."""
        r = self.radius
        M = self.grid[0]
        neighbours = np.stack([grid[:, :, i + r + di, j + r + dj] for di, dj in self.taps], axis=1)  # (N, T, M)
        a = self.w1.times(neighbours.reshape(len(grid), -1)) + self.b1 + level_bias
        a = _shift(_leaky(a), WEIGHT_BITS)
        a = _shift(_leaky(self.w2.times(a) + self.b2), WEIGHT_BITS)
        out = _shift(self.w3.times(a) + self.b3, WEIGHT_BITS) + self.position[:, :, i, j].reshape(1, 2 * M)
        return a, out

    def group(self, hidden: np.ndarray, out: np.ndarray, current: np.ndarray, g: int) -> tuple[np.ndarray, np.ndarray]:
        """μ and s (N, M/G) float64 of channel group g at a position, from :meth:`spatial`'s
        results and ``current`` (N, M), the position's fixed-point values (groups < g are read)."""
        M, size = self.grid[0], self.group_size
        loc = out[:, g * size:(g + 1) * size]
        log_scale = out[:, M + g * size:M + (g + 1) * size]
        if g > 0:
            w_in, b_in, w_hidden, w_out, b_out = self.group_branches[g - 1]
            t = _shift(_leaky(w_in.times(current[:, :g * size]) + b_in + w_hidden.times(hidden)), WEIGHT_BITS)
            delta = _shift(w_out.times(t) + b_out, WEIGHT_BITS)
            loc, log_scale = loc + delta[:, :size], log_scale + delta[:, size:]
        # The bounds matter only for damaged streams (and the encoder's trial of shortened
        # ones), whose garbage values can drive the network anywhere; no real code gets near them.
        loc = np.clip(loc / float(1 << ACTIVATION_BITS), -LOC_BOUND, LOC_BOUND)
        log_scale = np.clip(log_scale / float(1 << ACTIVATION_BITS), self.log_scale_floor, LOG_SCALE_CEILING)
        return loc, np.exp(log_scale)

    def predict(self, grid: np.ndarray, i: int, j: int, level_bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Padded fixed-point grid (N, M, h+2r, w+2r) -> (N, M) float64 μ and s at position (i, j),
        each channel group predicted from the groups before it as the grid holds them."""
        r = self.radius
        hidden, out = self.spatial(grid, i, j, level_bias)
        parts = [self.group(hidden, out, grid[:, :, i + r, j + r], g) for g in range(self.groups)]
        return np.concatenate([p[0] for p in parts], 1), np.concatenate([p[1] for p in parts], 1)


def _position_tables(loc: np.ndarray, scale: np.ndarray, steps: np.ndarray) -> CodingTables:
    """(R,) μ, s and Δ of R elements -> their tables (padded to the widest, at least 2 wide).

    A spread wider than MAX_SCALE_STEPS bins is narrowed to it: so wide a density is nearly
    flat over the values that occur, and the cap keeps every table small whatever the input."""
    scale = np.minimum(scale, MAX_SCALE_STEPS * steps)
    return coding_tables(FactorisedDensity("logistic", {"loc": loc, "scale": scale}), steps, min_width=2)


def _walk(net: IntegerContextNet, steps: np.ndarray, level_bias: np.ndarray, n: int,
          choose: Callable[[int, slice, CodingTables], np.ndarray]) -> np.ndarray:
    """Walk the grid for n images: at each position p and for each channel group (``part``, a
    slice of channels), tables from the context, then ``choose(p, part, tables)`` gives the
    (n·|part|,) symbols (image-major). Returns the dequantised latents (n, D) in the model's
    (M, h, w) order."""
    M, h, w = net.grid
    r = net.radius
    size = net.group_size
    grid = np.zeros((n, M, h + 2 * r, w + 2 * r), dtype=np.int64)
    values = np.zeros((n, M, h, w))
    steps = steps.reshape(M, h, w)
    for p in range(h * w):
        i, j = divmod(p, w)
        hidden, out = net.spatial(grid, i, j, level_bias)
        for g in range(net.groups):
            part = slice(g * size, (g + 1) * size)
            loc, scale = net.group(hidden, out, grid[:, :, i + r, j + r], g)
            tables = _position_tables(loc.ravel(), scale.ravel(), np.tile(steps[part, i, j], n))
            symbols = choose(p, part, tables)
            v = tables.values(symbols[None, :])[0].reshape(n, size)
            values[:, part, i, j] = v
            grid[:, part, i + r, j + r] = _fixed(v, ACTIVATION_BITS)
    return values.reshape(n, -1)


def _image_rows(tables: CodingTables, image: int, rows: int) -> CodingTables:
    """One image's rows of a step's tables, as wide as its own widest row (at least 2): what
    a walk of that image alone builds, so each image's bits depend on it alone."""
    taken = tables.take(slice(image * rows, (image + 1) * rows))
    width = max(2, int(taken.sizes.max()))
    return CodingTables(taken.offsets, taken.sizes, np.ascontiguousarray(taken.probabilities[:, :width]), taken.steps)


def _decode_chunk(net, steps, level_bias, payloads: list[bytes]) -> tuple[np.ndarray, list]:
    """Decode a chunk's streams; a stream that fails gives None in the second list."""
    rows = net.group_size
    decoders = [entropy.StreamDecoder(p) for p in payloads]
    symbols_seen = [[] for _ in payloads]

    def choose(p: int, part: slice, tables: CodingTables) -> np.ndarray:
        out = np.zeros(len(payloads) * rows, dtype=np.int32)
        for t, decoder in enumerate(decoders):
            if decoder.failed:
                continue
            got = decoder.decode(_image_rows(tables, t, rows))
            if got is not None:
                out[t * rows:(t + 1) * rows] = got
                symbols_seen[t].append(got)
        return out

    values = _walk(net, steps, level_bias, len(payloads), choose)
    return values, [None if d.failed else np.concatenate(s) for d, s in zip(decoders, symbols_seen)]


def _one_blas_thread():
    """The walk's matrices are small: BLAS threads only spin-wait (10× slower on a busy CPU)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def encode(net: IntegerContextNet, y: np.ndarray, steps: np.ndarray, level_weights: np.ndarray,
           progress: Callable[[int], None] | None = None) -> list[bytes]:
    """(N, D) latents -> one trimmed byte string per image."""
    with _one_blas_thread():
        return _encode(net, y, steps, level_weights, progress)


def _encode(net, y, steps, level_weights, progress) -> list[bytes]:
    M, h, w = net.grid
    level_bias = net.level_bias(level_weights)
    payloads: list[bytes] = []
    for start in range(0, len(y), CHUNK):
        chunk = y[start:start + CHUNK].reshape(-1, M, h * w)
        n = len(chunk)
        encoders = [entropy.StreamEncoder() for _ in range(n)]
        coded = [[] for _ in range(n)]

        def choose(p: int, part: slice, tables: CodingTables) -> np.ndarray:
            symbols = tables.symbols(chunk[:, part, p].reshape(1, -1))[0]   # clamped to the support
            rows = net.group_size
            for t in range(n):
                mine = slice(t * rows, (t + 1) * rows)
                encoders[t].encode(symbols[mine], _image_rows(tables, t, rows))
                coded[t].append(symbols[mine])
            return symbols

        _walk(net, steps, level_bias, n, choose)
        expected = [np.concatenate(c) for c in coded]
        streams = [e.finish() for e in encoders]
        # trial streams are decoded together, one walk per round of candidates
        payloads += entropy.trim(streams, expected,
                                 lambda candidates: _decode_chunk(net, steps, level_bias, candidates)[1])
        if progress is not None:
            progress(n)
    return payloads


def decode(net: IntegerContextNet, payloads: list[bytes], steps: np.ndarray, level_weights: np.ndarray,
           progress: Callable[[int], None] | None = None) -> np.ndarray:
    """One byte string per image -> (N, D) dequantised latents; damage becomes a VaelabError."""
    with _one_blas_thread():
        return _decode(net, payloads, steps, level_weights, progress)


def _decode(net, payloads, steps, level_weights, progress) -> np.ndarray:
    level_bias = net.level_bias(level_weights)
    out = []
    for start in range(0, len(payloads), CHUNK):
        chunk = payloads[start:start + CHUNK]
        values, decoded = _decode_chunk(net, steps, level_bias, chunk)
        for t, symbols in enumerate(decoded):
            if symbols is None:
                raise VaelabError(f"image {start + t + 1}: holds a bitstream that does not decode under this model's "
                                  "entropy model; the file is damaged or was written by another model")
        out.append(values)
        if progress is not None:
            progress(len(chunk))
    return np.concatenate(out)
