"""The codec file format: fields round-trip, lengths add up, and every damage is named."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vaelab import VaelabError
from vaelab.apps.codec import container
from vaelab.apps.codec.container import Header, pack, unpack


def _header(lengths=(3, 1, 5), shape=(1, 28, 28), quality=2.5):
    return Header("rate-distortion", bytes(range(8)), quality, shape, tuple(lengths))


def _payloads(lengths):
    return [bytes((i * 7 + j) % 256 for j in range(n)) for i, n in enumerate(lengths)]


@given(st.integers(min_value=0, max_value=2**64))
def test_varint_round_trip(value):
    encoded = container.encode_varint(value)
    assert container.decode_varint(encoded, 0, "x") == (value, len(encoded))
    # LEB128: 7 bits per byte, so the length is known in closed form
    assert len(encoded) == max(1, -(-value.bit_length() // 7))


def test_varint_refuses_overlong_and_cut_off():
    with pytest.raises(VaelabError, match="over-long"):
        container.decode_varint(b"\x80\x00", 0, "count")
    with pytest.raises(VaelabError, match="cut off inside the count"):
        container.decode_varint(b"\x80\x80", 0, "count")


def test_pack_unpack_round_trip_and_layout():
    lengths = (3, 1, 5)
    header = _header(lengths)
    data = pack(header, _payloads(lengths))
    got, payloads = unpack(data)
    assert got == header and payloads == _payloads(lengths)
    # the layout of the docstring, byte by byte
    assert data[:3] == b"VLC" and data[3] == container.FORMAT_VERSION and data[4] == 1
    assert data[5:13] == bytes(range(8))
    assert struct.unpack("<f", data[13:17])[0] == 2.5
    assert data[17:23] == bytes([1, 28, 28, 3, 3, 1]) and data[23] == 5
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])
    # every byte is either header (shared + length fields + checksum) or bitstream
    assert container.header_bytes(header) + sum(lengths) == len(data)


def test_one_image_file_overhead_is_small():
    header = _header((40,))
    assert container.header_bytes(header) == 17 + 3 + 1 + 1 + 4  # 26 bytes for a 28×28 image


@pytest.mark.parametrize("damage, message", [
    (lambda d: b"PNG" + d[3:], "wrong magic"),
    (lambda d: d[:10], "too short"),
    (lambda d: d[:-1], "checksum"),
    (lambda d: d[:20] + bytes([d[20] ^ 0x10]) + d[21:], "checksum"),
    (lambda d: d + b"\0", "checksum"),
])
def test_damage_is_named(damage, message):
    data = pack(_header(), _payloads((3, 1, 5)))
    with pytest.raises(VaelabError, match=message):
        unpack(damage(data))


def _reseal(body: bytes) -> bytes:
    """A body with a correct checksum: to reach the checks behind the checksum."""
    return body + struct.pack("<I", zlib.crc32(body))


@pytest.mark.parametrize("edit, message", [
    (lambda b: b[:3] + b"\x07" + b[4:], "format version 7"),
    (lambda b: b[:4] + b"\x09" + b[5:], "unknown coder"),
    (lambda b: b[:13] + struct.pack("<f", float("nan")) + b[17:], "not a finite number"),
    (lambda b: b[:17] + b"\x00" + b[18:], "impossible image channels"),
    (lambda b: b[:20] + b"\x7f" + b[21:], "claims 127 images"),
    (lambda b: b[:21] + b"\x04" + b[22:], "announces"),
    (lambda b: b[:22] + b"\x00" + b[23:], "empty bitstream for image 2"),
])
def test_fields_behind_the_checksum_are_validated(edit, message):
    body = pack(_header(), _payloads((3, 1, 5)))[:-4]
    with pytest.raises(VaelabError, match=message):
        unpack(_reseal(edit(body)))


def test_only_bytes_are_accepted():
    with pytest.raises(VaelabError, match="must be bytes"):
        unpack("VLC...")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=20), st.floats(1, 20, width=32))
def test_any_header_round_trips(lengths, quality):
    header = _header(lengths, quality=quality)
    data = pack(header, _payloads(lengths))
    assert unpack(data) == (header, _payloads(lengths))
    assert container.header_bytes(header) + sum(lengths) == len(data)
