"""Endless and blocking inputs: /dev/zero, FIFOs and oversized files never hang or exhaust memory.

Issue 20: ``read_bytes`` trusted ``st_size``, which is 0 for /dev/zero and for FIFOs, so
``vaelab decompress /dev/zero`` read until MemoryError and a FIFO named ``x.png`` hung forever.
Every read of a user path now accepts regular files only (links to them included), refused
from ``os.stat`` before opening, and is capped while reading. ``-`` reads standard input
where a command takes one input file (``vaelab decompress -``, image inputs).

Each CLI call here is timed and its memory watched (the high-water mark of this process's
resident set may not grow by more than a little: the old reader took gigabytes).
"""

from __future__ import annotations

import io
import json
import os
import pty
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vaelab import VaelabError
from vaelab.fileio import read_bytes, read_json

FORMAT1 = Path(__file__).parent.parent / "data" / "format1"
GROWTH_MB = 200   # what a refused input may add to the peak resident set (the old reader: gigabytes)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _vaelab(*args, stdin=None, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """The real CLI in a child process, killed if it outlives ``timeout``."""
    return subprocess.run([sys.executable, "-m", "vaelab", *map(str, args)], stdin=stdin, input=input,
                          capture_output=True, timeout=timeout, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def _one_line(stderr: bytes) -> str:
    lines = stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vaelab: error: "), stderr.decode()
    return lines[0]


@pytest.fixture
def zero_link(tmp_path) -> Path:
    link = tmp_path / "photo.png"
    link.symlink_to("/dev/zero")
    return link


@pytest.fixture(scope="module")
def codec_file(tmp_path_factory) -> Path:
    """A real codec file of the pinned conv-vae run (28×28)."""
    import vaelab
    from vaelab.apps import codec

    images = np.random.default_rng(0).integers(0, 256, (3, 1, 28, 28), dtype=np.uint8)
    path = tmp_path_factory.mktemp("codec") / "three.vlc"
    path.write_bytes(codec.compress(vaelab.load(FORMAT1 / "conv-vae"), images))
    return path


def _commands(run: Path, source: Path, out: Path) -> dict[str, list]:
    return {
        "decompress": ["decompress", source, "-o", out / "decoded", "--run", FORMAT1 / "conv-vae"],
        "decompress --info": ["decompress", source, "--info"],
        "compress": ["compress", run, source, "-o", out / "x.vlc"],
        "reconstruct": ["reconstruct", run, source, "-o", out / "recon"],
    }


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", ["decompress", "decompress --info", "compress", "reconstruct"])
@pytest.mark.parametrize("linked", [False, True], ids=["dev-zero", "link-to-dev-zero"])
def test_dev_zero_is_refused_in_one_line_fast_and_in_bounded_memory(command, linked, zero_link, tiny_run,
                                                                     tmp_path, cli, one_error_line):
    source = zero_link if linked else Path("/dev/zero")
    before, start = _peak_mb(), time.perf_counter()
    status, _, err = cli(*_commands(tiny_run, source, tmp_path)[command])
    assert time.perf_counter() - start < 5
    assert _peak_mb() - before < GROWTH_MB
    line = one_error_line(err)
    assert status == 2 and f"{source}: is not a regular file but a character device" in line
    assert ("(/dev/zero)" in line) == linked   # a link says where it leads
    assert not (tmp_path / "decoded").exists() and not (tmp_path / "x.vlc").exists()


@pytest.mark.timeout(120)
def test_a_run_whose_files_lead_to_dev_zero_is_refused(run_copy, tmp_path, cli, one_error_line):
    """``vaelab sample`` read a weights file linked to /dev/zero until MemoryError."""
    weights = run_copy / "model.safetensors"
    weights.unlink()
    weights.symlink_to("/dev/zero")
    before, start = _peak_mb(), time.perf_counter()
    status, _, err = cli("sample", run_copy, "-n", 2, "-o", tmp_path / "s.png")
    assert time.perf_counter() - start < 5 and _peak_mb() - before < GROWTH_MB
    assert status == 2 and f"{weights}: is not a regular file" in one_error_line(err)


@pytest.mark.timeout(120)
def test_a_fifo_named_like_an_image_or_codec_file_is_refused_without_hanging(tiny_run, tmp_path):
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    vlc = tmp_path / "x.vlc"
    os.mkfifo(vlc)
    for path, args in ((fifo, ["reconstruct", tiny_run, fifo, "-o", tmp_path / "out"]),
                       (vlc, ["decompress", vlc, "--info"]),
                       (fifo, ["compress", tiny_run, fifo, "-o", tmp_path / "y.vlc"])):
        start = time.perf_counter()
        done = _vaelab(*args, timeout=60)   # the old reader blocked in open() for ever
        assert time.perf_counter() - start < 30
        line = _one_line(done.stderr)
        assert done.returncode == 2 and f"{path}: is not a regular file but a FIFO (named pipe)" in line


def _in_thread(call, seconds: float = 10.0):
    """Run ``call()`` in a daemon thread -> its result or exception; fail if it is still blocked."""
    box = {}

    def run():
        try:
            box["result"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "the read blocked"
    return box


def test_a_fifo_swapped_in_after_the_check_still_cannot_block(tmp_path, monkeypatch):
    """The race: the path passes ``os.stat`` as a regular file, then is a FIFO when opened.

    Opening a FIFO for reading waits for a writer; vaelab opens with O_NONBLOCK and checks the
    opened file again with ``fstat``."""
    from vaelab import fileio

    regular = tmp_path / "regular.png"
    regular.write_bytes(b"png")
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    real_stat = os.stat
    monkeypatch.setattr(fileio.os, "stat", lambda path, *a, **k: real_stat(regular if Path(path) == fifo else path,
                                                                            *a, **k))
    box = _in_thread(lambda: read_bytes(fifo, "image", 1 << 20))
    assert isinstance(box.get("error"), VaelabError)
    assert str(box["error"]) == (f"{fifo}: is not a regular file but a FIFO (named pipe); vaelab reads images only "
                                 "from regular files")


@pytest.mark.parametrize("special", ["/dev/null", "/dev/urandom", "fifo", "socket"])
def test_every_kind_of_special_file_is_refused_by_every_reader(special, tmp_path):
    import socket

    from vaelab.imageio import read_image, read_npy
    from vaelab.weights import load_weights

    if special == "fifo":
        special = tmp_path / "f"
        os.mkfifo(special)
    elif special == "socket":
        special = tmp_path / "s"
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(special))
    from vaelab.runs import read_metrics

    readers = [lambda p: read_bytes(p, "file", 1 << 20), lambda p: read_json(p), read_image, read_npy, load_weights,
               read_metrics]
    for reader in readers:
        box = _in_thread(lambda reader=reader: reader(special))
        assert isinstance(box.get("error"), VaelabError), box
        assert str(box["error"]).startswith(f"{special}: is not a regular file but a ")


def test_symlinks_to_regular_files_keep_working(tiny_run, codec_file, tmp_path, cli):
    from vaelab.imageio import encode_png

    png = tmp_path / "digit.png"
    png.write_bytes(encode_png(np.full((1, 8, 8), 200, np.uint8)))
    (tmp_path / "link.png").symlink_to(png)
    (tmp_path / "link.vlc").symlink_to(codec_file)
    status, _, err = cli("reconstruct", tiny_run, tmp_path / "link.png", "-o", tmp_path / "recon")
    assert status == 0, err
    status, out, err = cli("decompress", tmp_path / "link.vlc", "--info")
    assert status == 0 and json.loads(out)["images"] == 3, err


def test_a_regular_file_over_the_cap_is_refused_by_its_size(tmp_path, cli, one_error_line):
    from vaelab.cli.decompress import MAX_CODEC_FILE_BYTES

    huge = tmp_path / "huge.vlc"
    with open(huge, "wb") as handle:   # sparse: a gibibyte on paper, nothing on disk
        handle.truncate(MAX_CODEC_FILE_BYTES + 1)
    before, start = _peak_mb(), time.perf_counter()
    status, _, err = cli("decompress", huge, "--info")
    assert time.perf_counter() - start < 5 and _peak_mb() - before < GROWTH_MB
    assert status == 2 and f"larger than the {MAX_CODEC_FILE_BYTES:,}-byte limit" in one_error_line(err)


def test_a_file_longer_than_it_claims_is_refused_while_reading():
    """/proc files are regular but report 0 bytes: the cap holds as the bytes arrive."""
    maps = Path("/proc/self/maps")
    if not maps.is_file() or maps.stat().st_size != 0:
        pytest.skip("needs Linux /proc")
    assert len(read_bytes(maps, "maps")) > 100
    with pytest.raises(VaelabError, match=r"maps: maps is larger than the 100-byte limit"):
        read_bytes(maps, "maps", max_bytes=100)


def test_an_endless_standard_input_is_refused_at_the_cap(monkeypatch):
    with open("/dev/zero", "rb") as zero:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(zero))
        before, start = _peak_mb(), time.perf_counter()
        with pytest.raises(VaelabError, match=r"^standard input: codec file is larger than the 4,194,304-byte"):
            read_bytes("-", "codec file", 4 << 20, stdin=True)
    assert time.perf_counter() - start < 5 and _peak_mb() - before < GROWTH_MB


@pytest.mark.timeout(120)
def test_dash_reads_a_codec_file_from_standard_input(codec_file, tmp_path):
    data = codec_file.read_bytes()
    info = _vaelab("decompress", "-", "--info", input=data)
    assert info.returncode == 0 and json.loads(info.stdout)["images"] == 3, info.stderr
    decoded = _vaelab("decompress", "-", "-o", tmp_path / "out", "--run", FORMAT1 / "conv-vae", input=data)
    assert decoded.returncode == 0, decoded.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["image-0001.png", "image-0002.png",
                                                                    "image-0003.png"]
    damaged = _vaelab("decompress", "-", "--info", input=data[:-1])
    assert damaged.returncode == 2 and "standard input: fails its checksum" in _one_line(damaged.stderr)


@pytest.mark.timeout(120)
def test_dash_reads_an_image_or_npy_array_from_standard_input(tiny_run, tmp_path):
    from vaelab.imageio import encode_png

    digits = np.random.default_rng(1).integers(0, 256, (2, 1, 8, 8), dtype=np.uint8)
    png = encode_png(digits[0])
    done = _vaelab("compress", tiny_run, "-", "-o", tmp_path / "one.vlc", input=png)
    assert done.returncode == 0 and "1 image at quality" in done.stdout.decode(), done.stderr
    buf = io.BytesIO()
    np.save(buf, digits)
    done = _vaelab("compress", tiny_run, "-", "-o", tmp_path / "two.vlc", input=buf.getvalue())
    assert done.returncode == 0 and "2 images at quality" in done.stdout.decode(), done.stderr
    done = _vaelab("reconstruct", tiny_run, "-", "-", "-o", tmp_path / "r", input=png)
    assert done.returncode == 2 and "'-' (standard input) can be given only once" in _one_line(done.stderr)


@pytest.mark.timeout(120)
def test_dash_on_a_terminal_is_refused_instead_of_waiting(tmp_path):
    controller, terminal = pty.openpty()
    try:
        done = _vaelab("decompress", "-", "--info", stdin=terminal, timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    assert done.returncode == 2 and "standard input, which is a terminal" in _one_line(done.stderr)


def _npy_header(shape, descr="|u1") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


@pytest.mark.parametrize("layout", ["tiny file", "sparse file"])
def test_a_400_megapixel_npy_is_refused_from_its_header(layout, tiny_run, tmp_path, cli, one_error_line):
    import tracemalloc

    from vaelab.imageio import MAX_PIXELS, read_npy

    path = tmp_path / "huge.npy"
    header = _npy_header((20000, 20000))
    with open(path, "wb") as handle:
        handle.write(header)
        if layout == "sparse file":   # the right size: 400 MB on paper, nothing on disk
            handle.truncate(len(header) + 20000 * 20000)
    tracemalloc.start()
    try:
        with pytest.raises(VaelabError) as err:
            read_npy(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20   # only the header was read
    assert str(err.value) == (f"{path}: holds images of 20000×20000 = 400,000,000 pixels, over the "
                              f"{MAX_PIXELS:,}-pixel limit of an image")
    start = time.perf_counter()
    status, _, stderr = cli("reconstruct", tiny_run, path, "-o", tmp_path / "out")
    assert time.perf_counter() - start < 5
    assert status == 2 and "400,000,000 pixels" in one_error_line(stderr)


def test_an_npy_of_too_many_values_is_refused_from_its_header(tmp_path):
    from vaelab.imageio import MAX_NPY_VALUES, read_npy

    path = tmp_path / "many.npy"
    with open(path, "wb") as handle:
        handle.write(_npy_header((2000, 1, 400, 400)))
        handle.truncate(handle.tell() + 2000 * 400 * 400)
    with pytest.raises(VaelabError, match=f"320,000,000 values, over the {MAX_NPY_VALUES:,}-value limit"):
        read_npy(path)
