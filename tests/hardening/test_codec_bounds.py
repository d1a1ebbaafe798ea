"""What a codec file declares is bounded by its size, and decoding runs in bounded memory.

Issue 20: a 10 KB file declaring 10,000 zero-length streams decoded for minutes into 10,000
PNGs, and the decoder held every image's float64 latents at once. Now every stream is at
least one byte (the encoder writes the empty stream as one zero byte, which decodes the same),
so a file of S bytes declares fewer than S/2 images; the image count and the decoded pixels
are capped before anything per image is allocated; and images are decoded DECODE_CHUNK at a
time, with the very pixels a whole-file decode gives.
"""

from __future__ import annotations

import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

import vaelab
from vaelab import VaelabError
from vaelab.apps import codec
from vaelab.apps.codec import container
from vaelab.apps.codec.pca import PCACoder

FORMAT1 = Path(__file__).parent.parent / "data" / "format1"


@pytest.fixture(scope="module")
def conv_vae():
    return vaelab.load(FORMAT1 / "conv-vae")


def crafted(model, lengths, shape=None, payload: bytes | None = None) -> bytes:
    """A sealed file for ``model`` whose header declares ``lengths`` (built by hand, as an attacker would)."""
    coder = codec.coder_for(model)
    body = bytearray(struct.pack("<3sBB8sf", container.MAGIC, container.FORMAT_VERSION,
                                 container.CODER_IDS[coder.name], coder.fingerprint, coder.default_quality))
    for value in (*(shape or coder.image_shape), len(lengths), *lengths):
        body += container.encode_varint(value)
    body += b"\0" * sum(lengths) if payload is None else payload
    return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))


@pytest.mark.timeout(120)
def test_ten_thousand_empty_streams_in_ten_kilobytes_are_refused_fast(conv_vae, tmp_path, cli, one_error_line):
    attack = tmp_path / "attack.vlc"
    attack.write_bytes(crafted(conv_vae, [0] * 10_000))
    assert len(attack.read_bytes()) == 10_026
    for args in (["--info"], ["-o", tmp_path / "out", "--run", FORMAT1 / "conv-vae"]):
        start = time.perf_counter()
        status, _, err = cli("decompress", attack, *args)
        assert time.perf_counter() - start < 5   # it decoded for 22–139 s into 10,000 PNGs
        assert status == 2 and one_error_line(err) == (
            f"vaelab: error: {attack}: claims 10000 images, which cannot fit in 10026 bytes; the file is damaged")
    assert not (tmp_path / "out").exists()


def test_an_empty_stream_is_refused_as_damage(conv_vae):
    with pytest.raises(VaelabError, match=r"^declares an empty bitstream for image 2 \(vaelab writes at least 1 "):
        codec.decompress(crafted(conv_vae, [4, 0, 4]), conv_vae)
    with pytest.raises(ValueError, match="empty bitstream"):
        container.pack(container.Header("pca", bytes(8), 1.0, (1, 2, 2), (0,)), [b""])


def test_the_encoder_writes_an_empty_stream_as_one_byte_that_decodes_the_same():
    """A real coder can produce the empty stream: every latent at the bottom of its support."""
    pixels = 4
    coder = PCACoder(np.full(pixels, 1000.0), np.eye(pixels), np.ones(pixels), (1, 2, 2))
    images = np.zeros((2, 1, 2, 2), np.uint8)
    assert coder.compress_latents(coder.analysis(images), 8.0) == [b"", b""]
    data = codec.compress(coder, images, quality=8.0)
    assert codec.inspect(data)["image_bytes"] == [1, 1]
    empty = coder.synthesis(coder.decompress_latents([b"", b""], 8.0), 8.0)
    assert np.array_equal(codec.decompress(data, coder), empty)


def test_more_images_than_a_file_may_hold_are_refused(tiny_run):
    n = container.MAX_IMAGES + 1
    with pytest.raises(VaelabError, match=f"holds {n:,} images, over the {container.MAX_IMAGES:,} one file may hold"):
        codec.inspect(crafted(vaelab.load(tiny_run), [1] * n, shape=(1, 1, 1)))
    model = vaelab.load(tiny_run)
    start = time.perf_counter()
    with pytest.raises(VaelabError, match=f"{n:,} images are more than the {container.MAX_IMAGES:,} one file"):
        codec.compress(model, np.zeros((n, *model.image_shape), np.uint8))
    assert time.perf_counter() - start < 5   # refused before any coding


def test_a_file_decoding_to_more_than_a_gibibyte_is_refused_before_allocating(conv_vae):
    data = crafted(conv_vae, [1] * 30, shape=(3, 4096, 4096))   # 30 × 50 MB from 63 bytes
    tracemalloc.start()
    try:
        with pytest.raises(VaelabError, match=r"would decode to 30 images of shape \(3, 4096, 4096\) "
                                              r"\(1,509,949,440 bytes\), over the 1,073,741,824-byte limit"):
            codec.inspect(data)
        assert tracemalloc.get_traced_memory()[1] < 1 << 20
    finally:
        tracemalloc.stop()


def test_the_decode_chunk_keeps_every_network_batch_as_it_was():
    from vaelab.models.entropy_models import BATCH
    from vaelab.models.rd_context_exact import CHUNK

    assert codec.api.DECODE_CHUNK % BATCH == 0 and codec.api.DECODE_CHUNK % CHUNK == 0


@pytest.mark.timeout(300)
@pytest.mark.parametrize("run", ["conv-vae", "conv-rd-context"])
def test_decoding_in_chunks_gives_the_pixels_of_a_whole_file_decode(run):
    model = vaelab.load(FORMAT1 / run)
    rng = np.random.default_rng(3)
    n = 2 * codec.api.DECODE_CHUNK + 8   # two whole chunks and a part
    images = np.clip(rng.normal(60, 70, (n, 1, 28, 28)), 0, 255).astype(np.uint8)
    data = codec.compress(model, images, quality=1.0)
    header, payloads = container.unpack(data)
    coder = codec.coder_for(model)
    whole = coder.synthesis(coder.decompress_latents(payloads, header.quality), header.quality)
    assert np.array_equal(codec.decompress(data, model), whole)


@pytest.mark.timeout(300)
def test_decode_memory_is_one_chunk_of_latents_beside_the_images():
    """20,000 images of conv-rd (196 latents each): float64 latents of all would be 31 MB."""
    model = vaelab.load(FORMAT1 / "conv-rd")
    n = 20_000
    data = crafted(model, [1] * n)
    tracemalloc.start()
    try:
        images = codec.decompress(data, model)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert images.shape == (n, 1, 28, 28)
    assert peak < images.nbytes + (12 << 20)   # whole-file decoding peaked at 79 MB here


def test_a_damaged_stream_in_a_later_chunk_is_named_by_its_place_in_the_file(conv_vae):
    lengths = [1] * 300
    lengths[289] = 64
    payload = b"\0" * 289 + b"\xff" * 64 + b"\0" * 10
    with pytest.raises(VaelabError, match=r"^image 290: holds a bitstream that does not decode"):
        codec.decompress(crafted(conv_vae, lengths, payload=payload), conv_vae)
