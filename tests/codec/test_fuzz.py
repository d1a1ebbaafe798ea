"""Fuzzing the decoder: 11,000 random and damaged files, and nothing but VaelabError escapes.

Five families of input (hypothesis, derandomised so every run checks the same cases):
random bytes; random bytes behind our magic; valid files damaged (bit flips, overwritten,
inserted, deleted and duplicated bytes, truncation); damaged files whose checksum was
recomputed, so the damage reaches the field checks and the entropy decoder; and headers
built from random field values. Every case must end in a one-line VaelabError or — only
when the checksum matches — a uint8 array of the announced shape. Each case has a deadline,
so a hang fails the test.
"""

from __future__ import annotations

import struct
import zlib
from datetime import timedelta

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaelab import VaelabError
from vaelab.apps import codec
from vaelab.apps.codec import container
from vaelab.models import build_model
from vaelab.models.rd import RateDistortionConfig

FUZZ = settings(deadline=timedelta(seconds=2), derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def model():
    """An untrained conv-rd (the decoder's work does not depend on training)."""
    torch.manual_seed(0)
    config = RateDistortionConfig(hidden=[8, 8], latent_channels=4, rd_lambdas=[0.1, 1.0])
    return build_model(config, (1, 8, 8)).eval()


@pytest.fixture(scope="module")
def valid(model):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 1, 8, 8), dtype=np.uint8)
    return codec.compress(model, images, quality=2)


def _seal(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def _check(data: bytes, model) -> None:
    """The contract: a one-line VaelabError, or (checksum intact) images of the announced shape."""
    for call in (lambda: codec.inspect(data), lambda: codec.decompress(data, model)):
        try:
            out = call()
        except VaelabError as exc:
            assert "\n" not in str(exc) and str(exc)
            continue
        assert len(data) >= 8 and zlib.crc32(data[:-4]) == struct.unpack("<I", data[-4:])[0]
        if isinstance(out, np.ndarray):
            info = codec.inspect(data)
            assert out.dtype == np.uint8 and out.shape == (info["images"], *info["image_shape"])


# -- the damage a file can take ---------------------------------------------------------------
def damage(data: bytes, seed: int) -> bytes:
    """1–4 random edits of ``data``, chosen by ``seed`` (one draw per case keeps hypothesis fast)."""
    rng = np.random.default_rng(seed)
    data = bytearray(data)
    for _ in range(rng.integers(1, 5)):
        op = rng.choice(["flip", "set", "insert", "delete", "truncate", "duplicate"])
        n = len(data)
        pos = int(rng.integers(0, max(n, 1)))
        if op == "flip" and n:
            data[pos] ^= 1 << int(rng.integers(0, 8))
        elif op == "set" and n:
            data[pos] = int(rng.integers(0, 256))
        elif op == "insert":
            data[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
        elif op == "delete" and n:
            del data[pos:pos + int(rng.integers(1, 9))]
        elif op == "truncate":
            del data[pos:]
        elif op == "duplicate" and n:
            data[pos:pos] = data[pos:pos + int(rng.integers(1, 9))]
    return bytes(data)


@settings(FUZZ, max_examples=3000)
@given(data=st.binary(max_size=300))
def test_random_bytes(model, data):
    _check(data, model)


@settings(FUZZ, max_examples=1500)
@given(tail=st.binary(max_size=200))
def test_random_bytes_behind_the_magic(model, tail):
    _check(container.MAGIC + tail, model)


@settings(FUZZ, max_examples=3000)
@given(seed=st.integers(0, 2**63))
def test_damaged_files(model, valid, seed):
    _check(damage(valid, seed), model)


@settings(FUZZ, max_examples=2500)
@given(seed=st.integers(0, 2**63))
def test_damaged_files_with_a_recomputed_checksum(model, valid, seed):
    _check(_seal(damage(valid[:-4], seed)), model)


@settings(FUZZ, max_examples=1000)
@given(coder=st.integers(0, 255), version=st.sampled_from([container.FORMAT_VERSION, 0, 2, 255]),
       right_fingerprint=st.booleans(), quality=st.floats(width=32, allow_nan=True, allow_infinity=True),
       shape=st.tuples(st.integers(0, 2**20), st.integers(0, 2**20), st.integers(0, 2**20)),
       right_shape=st.booleans(), count=st.integers(0, 2**40), lengths=st.lists(st.integers(0, 2**20), max_size=6),
       payload=st.binary(max_size=120))
def test_random_header_fields(model, coder, version, right_fingerprint, quality, shape, right_shape, count,
                              lengths, payload):
    fingerprint = codec.coder_for(model).fingerprint if right_fingerprint else bytes(8)
    if right_shape:
        shape = (1, 8, 8)
    body = bytearray(struct.pack("<3sBB8sf", container.MAGIC, version, coder, fingerprint, quality))
    for value in (*shape, count, *lengths):
        body += container.encode_varint(value)
    _check(_seal(bytes(body) + payload), model)
