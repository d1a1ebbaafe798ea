"""Property-based fuzzing of every reader: mutated valid files and random bytes.

Property: a reader either returns what it promises or raises ``VaelabError`` with one line
naming the file — never any other exception, and never slowly (each example has a hypothesis
deadline; the whole test a pytest-timeout). Mutations are byte-level (bit flips, overwrites,
deletions, insertions of random bytes or format-specific tokens, truncation) and structural
(a node of the file's JSON/TOML replaced by an arbitrary value), focused on the headers where
parsers make decisions. ``VAELAB_FUZZ_EXAMPLES`` sets the examples per reader (default 200);
the ``slow`` variant runs 5,000 more. The crashes found while writing these (by the fuzzer,
or by reading the readers) were fixed in the readers; each stays as an ``@example`` that fails
on the readers as they were.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vaelab.errors import VaelabError

EXAMPLES = int(os.environ.get("VAELAB_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=5), database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
MANY = settings(FUZZ, max_examples=5000)


# -- mutation strategies ----------------------------------------------------------------------
@st.composite
def mutated(draw, seed: bytes, focus: int = 0, tokens: tuple[bytes, ...] = ()) -> bytes:
    """``seed`` with 1–4 byte-level mutations; positions favour the first ``focus`` bytes."""
    data = bytearray(seed)

    def position(n: int) -> int:
        if focus and n and draw(st.booleans()):
            return draw(st.integers(0, min(focus, n) - 1))
        return draw(st.integers(0, max(n - 1, 0)))

    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "byte", "delete", "insert", "token", "truncate"]))
        n = len(data)
        if op == "flip" and n:
            data[position(n)] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and n:
            data[position(n)] = draw(st.integers(0, 255))
        elif op == "delete" and n:
            i = position(n)
            del data[i:i + draw(st.integers(1, 64))]
        elif op == "insert":
            i = position(n + 1)
            data[i:i] = draw(st.binary(min_size=1, max_size=32))
        elif op == "token" and tokens:
            i = position(n + 1)
            width = draw(st.integers(0, 8))
            data[i:i + width] = draw(st.sampled_from(tokens))
        elif op == "truncate":
            del data[position(n + 1):]
    return bytes(data)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


@st.composite
def structurally_mutated(draw, tree, values=JSON_VALUES):
    """A deep copy of a JSON-like ``tree`` with one node replaced, deleted or given a new key."""
    tree = json.loads(json.dumps(tree))
    path = draw(st.sampled_from(list(_paths(tree))[1:]))
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    op = draw(st.sampled_from(["replace", "delete", "add"]))
    if op == "replace" or (op == "delete" and isinstance(parent, list)):
        parent[path[-1]] = draw(values)
    elif op == "delete":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[draw(st.text(min_size=1, max_size=8))] = draw(values)
    return tree


def safetensors_parts(data: bytes) -> tuple[dict, bytes]:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n]), data[8 + n:]


def safetensors_join(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header, allow_nan=True).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + body


def refused_or(fn, *args, name: str):
    """Call a reader: a result, or a one-line VaelabError naming ``name``; anything else escapes."""
    try:
        return fn(*args)
    except VaelabError as exc:
        message = str(exc)
        assert "\n" not in message and name in message, message
        return exc


# -- seeds: valid files of every kind a reader accepts ----------------------------------------
@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    from vaelab.config import from_dict
    from vaelab.runs import RunConfig
    from vaelab.training import train

    run = tmp_path_factory.mktemp("fuzz-seeds") / "run"
    train(from_dict(RunConfig, {"model": {"name": "mlp-vae", "latent_dim": 2, "hidden": [16]},
                                "data": {"name": "digits", "limit": 64},
                                "train": {"epochs": 1, "batch_size": 32, "report": False, "threads": 1}}),
          run, progress=False)
    return run


@pytest.fixture
def scratch():
    folder = Path(tempfile.mkdtemp(prefix="vaelab-fuzz-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# -- config.toml ------------------------------------------------------------------------------
TOML_TOKENS = (b"=", b"[", b"]", b"[[", b"{", b"}", b'"', b"'''", b"\n", b"#", b"1e999", b"nan", b"-inf",
               b"99999999999999999999999", b"-1", b"0x7f", b"true", b"1979-05-27T07:32:00Z", b"\\u0000", b"\xff")


def _config_fuzz(seeds, scratch, data: bytes):
    from vaelab.runs import read_config

    path = scratch / "config.toml"
    path.write_bytes(data)
    config = refused_or(read_config, path, name=str(path))
    if not isinstance(config, VaelabError):
        assert config.model.latent_dim >= 1 and config.train.lr > 0


def _config_seed(seeds) -> bytes:
    return (seeds / "config.toml").read_bytes()


@pytest.mark.timeout(600)
@FUZZ
@given(data=st.data())
def test_config_reader_on_mutated_and_random_bytes(seeds, scratch, data):
    strategy = mutated(_config_seed(seeds), tokens=TOML_TOKENS) | st.binary(max_size=512)
    _config_fuzz(seeds, scratch, data.draw(strategy))


TOML_VALUES = st.recursive(
    st.booleans() | st.integers(-(2 ** 63), 2 ** 63 - 1) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3),
    max_leaves=6)


@pytest.mark.timeout(600)
@FUZZ
@given(data=st.data())
def test_config_reader_on_structurally_mutated_configs(seeds, scratch, data):
    import tomllib

    import tomli_w

    tree = tomllib.loads(_config_seed(seeds).decode())
    _config_fuzz(seeds, scratch, tomli_w.dumps(data.draw(structurally_mutated(tree, TOML_VALUES))).encode())


# -- checkpoint.safetensors + checkpoint.json --------------------------------------------------
def _checkpoint_fuzz(scratch, tensors: bytes, mirror: bytes | None):
    from vaelab.training.checkpoint import load_checkpoint

    (scratch / "checkpoint.safetensors").write_bytes(tensors)
    if mirror is None:
        (scratch / "checkpoint.json").unlink(missing_ok=True)
    else:
        (scratch / "checkpoint.json").write_bytes(mirror)
    result = refused_or(load_checkpoint, scratch, name=str(scratch))
    if not isinstance(result, VaelabError):
        state = result["state"]
        assert all(isinstance(state[k], int) and state[k] >= 0 for k in ("epoch", "step"))
        assert isinstance(result["optimizer"], dict) and isinstance(result["model"], dict)


@pytest.mark.timeout(600)
@FUZZ
@given(data=st.data())
def test_checkpoint_reader_on_mutated_bytes(seeds, scratch, data):
    tensors = (seeds / "checkpoint.safetensors").read_bytes()
    mirror = (seeds / "checkpoint.json").read_bytes()
    focus = 8 + int.from_bytes(tensors[:8], "little")
    which = data.draw(st.sampled_from(["tensors", "mirror", "both", "random"]))
    if which in ("tensors", "both"):
        tensors = data.draw(mutated(tensors, focus=focus, tokens=(b'"', b"{", b"}", b"[", b"]", b"1e999", b"-1")))
    if which in ("mirror", "both"):
        mirror = data.draw(mutated(mirror, tokens=(b'"', b"{", b"}", b"1e999", b"null", b"-1", b"[]")))
    if which == "random":
        tensors = data.draw(st.binary(max_size=1024))
    _checkpoint_fuzz(scratch, tensors, mirror)


@pytest.mark.timeout(600)
@FUZZ
@given(data=st.data())
@example(data=("vaelab_checkpoint", "[1]"))  # AttributeError
@example(data=("vaelab_checkpoint", '{"format": 1, "state": {"epoch": 1e999, "step": 0}}'))  # OverflowError
@example(data=("vaelab_checkpoint", '{"format": 1, "state": {"epoch": "1", "step": 0}, "optimizer": {}, '
                                    '"scheduler": {}, "rng": []}'))  # a string epoch reached the engine
@example(data=("vaelab_checkpoint", "[" * 100000 + "]" * 100000))  # RecursionError
def test_checkpoint_reader_on_structurally_mutated_metadata(seeds, scratch, data):
    # The mirror is rewritten to agree with the mutated file, so the reader goes past the
    # checksum into the metadata itself (as it would for a crafted, self-consistent checkpoint).
    import hashlib

    header, body = safetensors_parts((seeds / "checkpoint.safetensors").read_bytes())
    if isinstance(data, tuple):  # regression cases: (metadata key, raw value)
        header["__metadata__"][data[0]] = data[1]
    else:
        record = json.loads(header["__metadata__"]["vaelab_checkpoint"])
        header["__metadata__"]["vaelab_checkpoint"] = json.dumps(data.draw(structurally_mutated(record)))
    tensors = safetensors_join(header, body)
    try:
        record = json.loads(header["__metadata__"]["vaelab_checkpoint"])
        mirror = json.dumps({**record, "sha256": hashlib.sha256(tensors).hexdigest(),
                             "tensors": "checkpoint.safetensors"}).encode() if isinstance(record, dict) else None
    except (ValueError, RecursionError):
        mirror = None
    _checkpoint_fuzz(scratch, tensors, mirror)


# -- model.safetensors through vaelab.load ------------------------------------------------------
def _model_fuzz(seeds, scratch, weights: bytes):
    import vaelab

    shutil.copy(seeds / "config.toml", scratch / "config.toml")
    (scratch / "model.safetensors").write_bytes(weights)
    model = refused_or(vaelab.load, scratch, name=str(scratch))
    if not isinstance(model, VaelabError):
        assert model.latent_dim == 2


@pytest.mark.timeout(600)
@FUZZ
@given(data=st.data())
def test_model_loader_on_mutated_weights(seeds, scratch, data):
    weights = (seeds / "model.safetensors").read_bytes()
    focus = 8 + int.from_bytes(weights[:8], "little")
    tokens = (b'"F64"', b'"I8"', b'"BOOL"', b'"F16"', b"[0, 99999999999]", b"[]", b"-1", b'"image_shape"', b"{")
    _model_fuzz(seeds, scratch, data.draw(mutated(weights, focus=focus, tokens=tokens) | st.binary(max_size=256)))


@pytest.mark.timeout(600)
@FUZZ
@given(data=st.data())
@example(data={"image_shape": "[1, 65536, 65536]"})  # RuntimeError: tried to allocate 256 GiB
def test_model_loader_on_structurally_mutated_headers(seeds, scratch, data):
    header, body = safetensors_parts((seeds / "model.safetensors").read_bytes())
    if isinstance(data, dict):  # regression cases: metadata values
        header["__metadata__"].update(data)
    else:
        values = JSON_VALUES | st.sampled_from(["F64", "F16", "I64", "U8", "BOOL", "[1, 8, 8]", "[3, 8, 8]"])
        header = data.draw(structurally_mutated(header, values))
    _model_fuzz(seeds, scratch, safetensors_join(header, body))


# -- images -------------------------------------------------------------------------------------
def _image_seeds() -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (12, 10), dtype=np.uint8)
    rgb = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    images = [Image.fromarray(grey), Image.fromarray(rgb), Image.fromarray(grey).convert("P"),
              Image.fromarray(np.dstack([rgb, grey])), Image.fromarray(grey.astype(np.uint16) * 257)]
    out = []
    for im, fmt in [(images[0], "PNG"), (images[1], "PNG"), (images[2], "PNG"), (images[3], "PNG"),
                    (images[4], "PNG"), (images[1], "JPEG"), (images[0], "JPEG"), (images[2], "GIF"),
                    (images[1], "BMP"), (images[1], "TIFF"), (images[1], "WEBP")]:
        buf = io.BytesIO()
        im.save(buf, format=fmt)
        out.append(buf.getvalue())
    return out


IMAGE_SEEDS = _image_seeds()
IMAGE_TOKENS = (b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff", b"IHDR", b"IDAT", b"PLTE", b"tRNS",
                b"\xff\xd8\xff\xc0", b"\xff\xda", b"II*\x00", b"GIF89a")


def _image_fuzz(data: bytes):
    from vaelab.imageio import read_image

    image = refused_or(read_image, data, "fuzz.img", name="fuzz.img")
    if not isinstance(image, VaelabError):
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[0] in (1, 3)


@pytest.mark.timeout(600)
@FUZZ
@given(data=st.data())
def test_image_reader_on_mutated_and_random_bytes(data):
    seed = data.draw(st.sampled_from(IMAGE_SEEDS))
    _image_fuzz(data.draw(mutated(seed, focus=96, tokens=IMAGE_TOKENS) | st.binary(max_size=512)))


# -- .npy arrays ----------------------------------------------------------------------------------
def _npy_seeds() -> list[bytes]:
    out = []
    for array in [np.arange(2 * 8 * 8, dtype=np.uint8).reshape(2, 8, 8), np.linspace(0, 1, 48, dtype=np.float32)
                  .reshape(1, 3, 4, 4), np.zeros((4, 4), np.uint16), np.ones((2, 4, 4, 3), np.float64)]:
        buf = io.BytesIO()
        np.save(buf, array)
        out.append(buf.getvalue())
    return out


NPY_SEEDS = _npy_seeds()


def npy_header(header: dict) -> bytes:
    """A .npy file that is only a header (it declares data that is not there)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()
NPY_TOKENS = (b"(99999999999, 99999999999)", b"(4294967296, 4294967296, 4294967296)", b"'<f8'", b"'|O'",
              b"'>u2'", b"'<c16'", b"True", b"(-1,)", b"()", b"[('a', '<f4')]", b"\x02\x00", b"\x03\x00")


def _npy_fuzz(scratch, data: bytes):
    from vaelab.imageio import read_npy

    path = scratch / "fuzz.npy"
    path.write_bytes(data)
    images = refused_or(read_npy, path, name=str(path))
    if not isinstance(images, VaelabError):
        assert images.dtype == np.uint8 and images.ndim == 4 and images.shape[1] in (1, 3)


@pytest.mark.timeout(600)
@FUZZ
@given(data=st.data())
@example(data=npy_header({"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)}))  # MemoryError
@example(data=NPY_SEEDS[0].replace(b"{", b"z", 1))  # SyntaxError from the header parser
@example(data=NPY_SEEDS[0].replace(b"}", b"(", 1))  # tokenize.TokenError from the header parser
def test_npy_reader_on_mutated_and_random_bytes(scratch, data):
    if isinstance(data, bytes):  # regression case
        return _npy_fuzz(scratch, data)
    seed = data.draw(st.sampled_from(NPY_SEEDS))
    _npy_fuzz(scratch, data.draw(mutated(seed, focus=128, tokens=NPY_TOKENS) | st.binary(max_size=256)))


# -- codec files with the coders tests/codec/test_fuzz.py does not fuzz ------------------------------
# The codec's own fuzz test (11,000 cases) decodes with a conv-rd model; these decode with a
# VAE (Gaussian-prior coder) and a plain autoencoder (fitted-Gaussian coder), whose tables
# differ, and go through ``vaelab decompress`` reading the file from disk.
@pytest.fixture(scope="module")
def codec_files(tiny_vae_run, tiny_ae_run):
    import vaelab
    from vaelab.apps import codec

    images = np.random.default_rng(0).integers(0, 256, (3, 1, 8, 8), dtype=np.uint8)
    out = {}
    for run in (tiny_vae_run, tiny_ae_run):
        model = vaelab.load(run)
        out[run] = (model, codec.compress(model, images, quality=8))
    return out


def _seal(body: bytes) -> bytes:
    import struct
    import zlib

    return body + struct.pack("<I", zlib.crc32(body))


def _codec_fuzz(model, data: bytes):
    from vaelab.apps import codec

    images = refused_or(codec.decompress, data, model, name="")
    if not isinstance(images, VaelabError):
        info = codec.inspect(data)
        assert images.dtype == np.uint8 and images.shape == (info["images"], *info["image_shape"])


@pytest.mark.timeout(600)
@FUZZ
@given(data=st.data())
def test_codec_decompress_with_vae_and_ae_coders_on_damaged_files(codec_files, data):
    model, valid = data.draw(st.sampled_from(sorted(codec_files.values(), key=lambda mv: len(mv[1]))))
    damaged = data.draw(mutated(valid[:-4], focus=32))
    _codec_fuzz(model, _seal(damaged) if data.draw(st.booleans()) else damaged + valid[-4:])


@pytest.mark.timeout(600)
@settings(FUZZ, max_examples=max(EXAMPLES // 4, 10))
@given(data=st.data())
def test_vaelab_decompress_on_damaged_files_is_one_line(codec_files, tiny_vae_run, scratch, data, capfd):
    from vaelab.cli import main

    _, valid = codec_files[tiny_vae_run]
    path = scratch / "images.vlc"
    path.write_bytes(_seal(data.draw(mutated(valid[:-4], focus=32))))
    capfd.readouterr()
    status = main(["decompress", str(path), "--run", str(tiny_vae_run), "-o", str(scratch / "out"), "-q"])
    err = capfd.readouterr().err
    assert status in (0, 2)
    if status == 2:
        assert len(err.splitlines()) == 1 and err.startswith(f"vaelab: error: {path}: "), err


# -- many more examples, for a nightly run ----------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(3600)
@MANY
@given(data=st.data())
def test_every_reader_many_examples(seeds, scratch, data):
    reader = data.draw(st.sampled_from(["config", "checkpoint", "model", "image", "npy"]))
    if reader == "config":
        _config_fuzz(seeds, scratch, data.draw(mutated(_config_seed(seeds), tokens=TOML_TOKENS)))
    elif reader == "checkpoint":
        tensors = (seeds / "checkpoint.safetensors").read_bytes()
        focus = 8 + int.from_bytes(tensors[:8], "little")
        _checkpoint_fuzz(scratch, data.draw(mutated(tensors, focus=focus)), (seeds / "checkpoint.json").read_bytes())
    elif reader == "model":
        weights = (seeds / "model.safetensors").read_bytes()
        _model_fuzz(seeds, scratch, data.draw(mutated(weights, focus=8 + int.from_bytes(weights[:8], "little"))))
    elif reader == "image":
        _image_fuzz(data.draw(mutated(data.draw(st.sampled_from(IMAGE_SEEDS)), focus=96, tokens=IMAGE_TOKENS)))
    else:
        _npy_fuzz(scratch, data.draw(mutated(data.draw(st.sampled_from(NPY_SEEDS)), focus=128, tokens=NPY_TOKENS)))
