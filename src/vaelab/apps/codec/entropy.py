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

import numpy as np

from ...errors import VaelabError
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


def encode(symbols: np.ndarray, tables: CodingTables) -> bytes:
    """(D,) int32 table indices -> the shortest byte string that decodes back to them."""
    import constriction

    symbols = np.ascontiguousarray(symbols, dtype=np.int32)
    encoder = constriction.stream.queue.RangeEncoder()
    encoder.encode(symbols, _model_family(), tables.probabilities)
    full = np.asarray(encoder.get_compressed(), dtype=">u4").tobytes()
    best = full
    n = len(full)
    number = int.from_bytes(full, "big")
    for k in range(1, n + 1):
        unit = 256**k
        found = None
        for candidate in (number // unit * unit, number // unit * unit + unit):
            if candidate >= 256**n:
                continue
            trimmed = candidate.to_bytes(n, "big")[: n - k]
            decoded = _decode_words(trimmed, tables)
            if decoded is not None and np.array_equal(decoded, symbols):
                found = trimmed
                break
        if found is None:  # the interval holds no multiple of 256^k, hence none of 256^(k+1)
            break
        best = found
    return best


def decode(data: bytes, tables: CodingTables) -> np.ndarray:
    """Bytes from :func:`encode` -> (D,) int32 table indices; damage becomes a VaelabError."""
    decoded = _decode_words(bytes(data), tables)
    if decoded is None:
        raise VaelabError("holds a bitstream that does not decode under this model's entropy model; "
                          "the file is damaged or was written by another model")
    if np.any(decoded >= tables.sizes):
        raise VaelabError("holds a bitstream with symbols outside the model's support; the file is damaged")
    return decoded
