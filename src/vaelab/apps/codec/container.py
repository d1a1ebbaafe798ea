"""The codec's file format: one shared header, the images' bitstreams, a checksum.

Layout (integers marked *varint* are unsigned LEB128, 1 byte below 128)::

    magic        3 bytes   b"VLC"
    version      1 byte    FORMAT_VERSION
    coder        1 byte    how the latent was coded (CODERS: which transform/density family)
    fingerprint  8 bytes   first 8 bytes of SHA-256 over the model's weights (see fingerprint.py)
    quality      4 bytes   float32, little-endian: the quality the images were coded at
    C, H, W      3 varints image shape
    N            varint    number of images
    lengths      N varints bytes of each image's bitstream
    names        version 2 only: per image, a varint byte count and that many bytes of UTF-8 —
                 the image's file name, so that decompress can give it back
    payloads     Σ lengths the bitstreams, in order
    crc32        4 bytes   CRC-32 (little-endian) of every byte before it

A one-image 28×28 file therefore carries 25 bytes besides its bitstream; N images share
them (plus one length byte each). The checksum is verified before anything else is trusted,
so a truncated file, a flipped byte or random input is refused before any decoding runs.
Nothing here knows about models or torch: it moves bytes.

What a file declares is bounded before anything is allocated for it: every bitstream is at
least 1 byte long (the encoder writes the empty stream, all-zero to the range decoder, as one
zero byte), so an image costs at least 2 bytes of the file and a file of S bytes holds fewer
than S/2 images; at most MAX_IMAGES, and at most MAX_DECODED_BYTES of pixels in all.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

from ...coding.fingerprint import FINGERPRINT_BYTES
from ...errors import VaelabError

MAGIC = b"VLC"
FORMAT_VERSION = 1            # files without names; the codec's measured bytes are of these
NAMED_FORMAT_VERSION = 2      # the same with each image's file name
MAX_NAME_BYTES = 255
CHECKSUM_BYTES = 4
MAX_DIMENSION = 65536       # pixels per side, and channels (anything larger is not a vaelab image)
MAX_VARINT_BYTES = 10
MAX_IMAGES = 1 << 20        # images in one file (1,048,576; each becomes a PNG when decoded)
MAX_DECODED_BYTES = 1 << 30  # pixels (bytes of uint8) a file may decode to, all images together
MIN_STREAM_BYTES = 1        # the shortest bitstream the encoder writes (api.compress pads b"" to b"\0")

# coder byte -> name; the name tells the decoder which density family the model must provide
CODERS = {1: "rate-distortion", 2: "gaussian-prior", 3: "fitted-gaussian", 4: "pca", 5: "rate-distortion-context",
          6: "vq-codebook"}
CODER_IDS = {name: code for code, name in CODERS.items()}

_FIXED = struct.Struct("<3sBB8sf")  # magic, version, coder, fingerprint, quality


@dataclass(frozen=True)
class Header:
    """What a file says about itself (everything but the bitstreams)."""

    coder: str
    fingerprint: bytes
    quality: float
    image_shape: tuple[int, int, int]
    lengths: tuple[int, ...]
    names: tuple[str, ...] | None = None   # the images' file names (version 2), if the writer kept them

    @property
    def count(self) -> int:
        return len(self.lengths)


def encode_varint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varints are unsigned")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """Read one varint at ``pos`` -> (value, next position); refuses overlong or cut-off ones."""
    value = 0
    for i in range(MAX_VARINT_BYTES):
        if pos + i >= len(data):
            raise VaelabError(f"is cut off inside the {what} field; the file is truncated")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if i and byte == 0:
                raise VaelabError(f"has a malformed {what} field (over-long number); the file is damaged")
            return value, pos + i + 1
    raise VaelabError(f"has a malformed {what} field (number too long); the file is damaged")


def pack(header: Header, payloads: list[bytes]) -> bytes:
    """Header + bitstreams -> the bytes of a file (with its checksum)."""
    if header.coder not in CODER_IDS:
        raise ValueError(f"unknown coder {header.coder!r}")
    if len(payloads) != header.count or any(len(p) != n for p, n in zip(payloads, header.lengths)):
        raise ValueError("payload lengths do not match the header")
    if any(n < MIN_STREAM_BYTES for n in header.lengths):
        raise ValueError("an empty bitstream cannot be read back; write the empty stream as b'\\0'")
    if len(header.fingerprint) != FINGERPRINT_BYTES:
        raise ValueError("fingerprints are 8 bytes")
    version = FORMAT_VERSION if header.names is None else NAMED_FORMAT_VERSION
    body = bytearray(_FIXED.pack(MAGIC, version, CODER_IDS[header.coder], header.fingerprint, header.quality))
    for value in (*header.image_shape, header.count, *header.lengths):
        body += encode_varint(value)
    body += _pack_names(header)
    for payload in payloads:
        body += payload
    body += struct.pack("<I", zlib.crc32(body))
    return bytes(body)


def unpack(data: bytes) -> tuple[Header, list[bytes]]:
    """The bytes of a file -> (header, bitstreams), or a one-line VaelabError saying what is wrong.

    Checks, in order: the magic bytes (is it our file at all?), the checksum (is it intact?),
    the version, then every field's range and that the lengths add up to the file exactly.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise VaelabError(f"codec input must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
        raise VaelabError("is not a vaelab codec file (wrong magic bytes); compress images with `vaelab compress`")
    if len(data) < _FIXED.size + CHECKSUM_BYTES + 5:
        raise VaelabError(f"is too short to be a vaelab codec file ({len(data)} bytes); the file is truncated")
    body, (stored,) = data[:-CHECKSUM_BYTES], struct.unpack("<I", data[-CHECKSUM_BYTES:])
    if zlib.crc32(body) != stored:
        raise VaelabError("fails its checksum: the file is truncated or damaged")
    _, version, coder_id, fingerprint, quality = _FIXED.unpack_from(body)
    if version not in (FORMAT_VERSION, NAMED_FORMAT_VERSION):
        raise VaelabError(f"is in codec format version {version}, but this vaelab reads versions {FORMAT_VERSION} "
                          f"and {NAMED_FORMAT_VERSION}; use the vaelab version that wrote it")
    if coder_id not in CODERS:
        raise VaelabError(f"names an unknown coder ({coder_id}); the file is damaged or from a newer vaelab")
    if not math.isfinite(quality):
        raise VaelabError("has a quality that is not a finite number; the file is damaged")
    pos = _FIXED.size
    shape = []
    for axis in ("channels", "height", "width"):
        value, pos = decode_varint(body, pos, f"image {axis}")
        if not 1 <= value <= MAX_DIMENSION:
            raise VaelabError(f"has an impossible image {axis} ({value}); the file is damaged")
        shape.append(value)
    count, pos = decode_varint(body, pos, "image count")
    # Each image needs its length byte and a bitstream of at least MIN_STREAM_BYTES: a count
    # beyond that is damage, caught before anything per image is allocated or decoded.
    if not 1 <= count <= (len(body) - pos) // (1 + MIN_STREAM_BYTES):
        raise VaelabError(f"claims {count} images, which cannot fit in {len(data)} bytes; the file is damaged")
    if count > MAX_IMAGES:
        raise VaelabError(f"holds {count:,} images, over the {MAX_IMAGES:,} one file may hold")
    pixels = count * shape[0] * shape[1] * shape[2]
    if pixels > MAX_DECODED_BYTES:
        raise VaelabError(f"would decode to {count:,} images of shape {tuple(shape)} ({pixels:,} bytes), over the "
                          f"{MAX_DECODED_BYTES:,}-byte limit; split it into smaller files")
    lengths = []
    for i in range(count):
        length, pos = decode_varint(body, pos, f"length of image {i + 1}")
        if length < MIN_STREAM_BYTES:
            raise VaelabError(f"declares an empty bitstream for image {i + 1} (vaelab writes at least "
                              f"{MIN_STREAM_BYTES} byte per image); the file is damaged")
        lengths.append(length)
    names = None
    if version == NAMED_FORMAT_VERSION:
        names, pos = _unpack_names(body, pos, count)
    if pos + sum(lengths) != len(body):
        raise VaelabError(f"has {len(body) - pos} bytes of bitstreams but its header announces {sum(lengths)}; "
                          "the file is damaged")
    payloads = []
    for length in lengths:
        payloads.append(body[pos:pos + length])
        pos += length
    header = Header(CODERS[coder_id], fingerprint, float(quality), (shape[0], shape[1], shape[2]), tuple(lengths),
                    names)
    return header, payloads


def _pack_names(header: Header) -> bytes:
    if header.names is None:
        return b""
    if len(header.names) != header.count:
        raise ValueError("one name per image")
    out = bytearray()
    for name in header.names:
        raw = name.encode("utf-8")[:MAX_NAME_BYTES].decode("utf-8", errors="ignore").encode("utf-8")
        out += encode_varint(len(raw)) + raw
    return bytes(out)


def _unpack_names(body: bytes, pos: int, count: int) -> tuple[tuple[str, ...], int]:
    names = []
    for i in range(count):
        size, pos = decode_varint(body, pos, f"name length of image {i + 1}")
        if size > MAX_NAME_BYTES or pos + size > len(body):
            raise VaelabError(f"has an impossible name for image {i + 1}; the file is damaged")
        try:
            names.append(body[pos:pos + size].decode("utf-8"))
        except UnicodeDecodeError:
            raise VaelabError(f"has a name for image {i + 1} that is not UTF-8; the file is damaged") from None
        pos += size
    return tuple(names), pos


def header_bytes(header: Header) -> int:
    """Bytes of a file that are not bitstreams: the shared header, the length fields, the checksum."""
    return (_FIXED.size + sum(len(encode_varint(v)) for v in (*header.image_shape, header.count, *header.lengths))
            + len(_pack_names(header)) + CHECKSUM_BYTES)
