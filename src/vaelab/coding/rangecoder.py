"""Range coding of one image's latent symbols with ``constriction``, trimmed to whole bytes.

``constriction``'s range coder writes 32-bit words; flushing the last word wastes about
two bytes per image on average, which matters when an image costs 40. A range coder's
output is a number somewhere inside a final interval, and any number in that interval
decodes to the same symbols. So after encoding, :func:`encode` looks for the number in
that interval with the most trailing zero bytes — its only candidates at each length are
the original number rounded down or up to a multiple of 256^k — drops those zero bytes,
and checks by decoding that the shorter stream gives back exactly the same symbols. The
decoder pads the stream with zero bytes to whole words, so the trimmed bytes cost nothing.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import VaelabError
from .density import CodingTables

_PAD_WORDS = 2  # zero words appended past the end: the decoder's 64-bit state may read that far


def _model_family():
    import constriction

    return constriction.stream.model.Categorical(perfect=False)


def _words(data: bytes) -> np.ndarray:
    """Big-endian bytes -> uint32 words, zero-padded to whole words plus _PAD_WORDS."""
    padded = data + b"\0" * ((-len(data)) % 4 + 4 * _PAD_WORDS)
    return np.frombuffer(padded, dtype=">u4").astype(np.uint32)


def _decode_words(data: bytes, tables: CodingTables) -> np.ndarray | None:
    import constriction

    try:
        decoder = constriction.stream.queue.RangeDecoder(_words(data))
        return np.asarray(decoder.decode(_model_family(), tables.probabilities), dtype=np.int32)
    except (ValueError, RuntimeError, AssertionError, OverflowError):
        return None


def trim_candidates(full: bytes, k: int) -> list[bytes]:
    """The stream's number rounded down and up to a multiple of 256^k, without those k zero bytes.

    Whichever of them (if any) lies in the coder's final interval decodes like ``full``."""
    n = len(full)
    if k > n:
        return []
    number, unit = int.from_bytes(full, "big"), 256**k
    low = number // unit * unit
    return [c.to_bytes(n, "big")[: n - k] for c in (low, low + unit) if c < 256**n]


class StreamEncoder:
    """One image's range encoder, fed table by table (the context coder's positions)."""

    def __init__(self):
        import constriction

        self._encoder = constriction.stream.queue.RangeEncoder()

    def encode(self, symbols: np.ndarray, tables: CodingTables) -> None:
        self._encoder.encode(np.ascontiguousarray(symbols, dtype=np.int32), _model_family(), tables.probabilities)

    def finish(self) -> bytes:
        """The whole 32-bit words written (not yet trimmed)."""
        return np.asarray(self._encoder.get_compressed(), dtype=">u4").tobytes()


class StreamDecoder:
    """One image's range decoder, read table by table; ``failed`` once the stream proves damaged."""

    def __init__(self, data: bytes):
        import constriction

        self.failed = False
        try:
            self._decoder = constriction.stream.queue.RangeDecoder(_words(bytes(data)))
        except (ValueError, RuntimeError, AssertionError, OverflowError):
            self.failed = True

    def decode(self, tables: CodingTables) -> np.ndarray | None:
        """The next symbols under these tables, or None (and ``failed``) if they cannot be right."""
        if self.failed:
            return None
        try:
            symbols = np.asarray(self._decoder.decode(_model_family(), tables.probabilities), dtype=np.int32)
        except (ValueError, RuntimeError, AssertionError, OverflowError):
            symbols = None
        if symbols is None or np.any(symbols >= tables.sizes):
            self.failed = True
            return None
        return symbols


def trim(streams: list[bytes], expected: list[np.ndarray], decode_many) -> list[bytes]:
    """Shorten each stream as far as it still decodes to its expected symbols.

    ``decode_many(candidates)`` decodes a list of byte strings (None for one that fails);
    each round tries every still-shortening stream's candidates (trim_candidates) in one
    call, the rounded-down one first. A stream stops at the first k with no candidate
    that decodes right: then the interval holds no multiple of 256^k, hence none of 256^(k+1).
    """
    best = list(streams)
    active = list(range(len(streams)))
    k = 1
    while active:
        trials = [(t, candidate) for t in active for candidate in trim_candidates(streams[t], k)]
        if not trials:
            break
        found: dict[int, bytes] = {}
        for (t, candidate), symbols in zip(trials, decode_many([c for _, c in trials])):
            if t not in found and symbols is not None and np.array_equal(symbols, expected[t]):
                found[t] = candidate
        for t, data in found.items():
            best[t] = data
        active = sorted(found)
        k += 1
    return best


def encode(symbols: np.ndarray, tables: CodingTables) -> bytes:
    """(D,) int32 table indices -> the shortest byte string that decodes back to them."""
    encoder = StreamEncoder()
    encoder.encode(symbols, tables)
    return trim([encoder.finish()], [np.asarray(symbols)],
                lambda candidates: [_decode_words(c, tables) for c in candidates])[0]


def decode(data: bytes, tables: CodingTables) -> np.ndarray:
    """Bytes from :func:`encode` -> (D,) int32 table indices; damage becomes a VaelabError."""
    decoded = _decode_words(bytes(data), tables)
    if decoded is None:
        raise VaelabError("holds a bitstream that does not decode under this model's entropy model; "
                          "the file is damaged or was written by another model")
    if np.any(decoded >= tables.sizes):
        raise VaelabError("holds a bitstream with symbols outside the model's support; the file is damaged")
    return decoded


def encode_images(tables: CodingTables, y: np.ndarray, progress: Callable[[int], None] | None = None) -> list[bytes]:
    """(N, D) latents -> one byte string per image, every image under the same factorised tables."""
    payloads = []
    for row in tables.symbols(y):                                      # (N, D) -> (D,) per image
        payloads.append(encode(row, tables))
        if progress is not None:
            progress(1)
    return payloads


def decode_images(tables: CodingTables, payloads: list[bytes],
                  progress: Callable[[int], None] | None = None) -> np.ndarray:
    """One byte string per image -> (N, D) dequantised latents; damage names the image."""
    symbols = np.empty((len(payloads), len(tables.steps)), dtype=np.int32)
    for i, payload in enumerate(payloads):
        try:
            symbols[i] = decode(payload, tables)
        except VaelabError as exc:
            raise VaelabError(f"image {i + 1}: {exc}") from None
        if progress is not None:
            progress(1)
    return tables.values(symbols)
