"""Atomic file writing and careful reading.

Every file vaelab writes goes through :func:`atomic_write`: the bytes land in a temporary
file beside the target, are flushed and fsync'ed, and only then renamed over the target.
A kill at any moment leaves either the old file or the new one, never a torn one; a full
disk or an unwritable directory raises :class:`VaelabError` and leaves the old file intact.

Every file vaelab reads from a path a user can name goes through :func:`read_bytes` (or
:func:`read_json`, or the image readers of imageio.py, which use it): it reads regular files
only — a FIFO would block forever, /dev/zero never ends, and both report a size of 0 — and it
enforces each format's size limit while reading, never trusting the size a file reports.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import VaelabError

# The names atomic_open gives its temporary files: "." + target name + "." + mkstemp's 8 random
# characters + ".tmp".
_TEMPORARY = re.compile(r"\..+\.[A-Za-z0-9_]{8}\.tmp")


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _reason(exc: OSError) -> str:
    return "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))


def _kept(path: Path) -> str:
    # The sentence users need after a failed write: their previous file is untouched.
    return "; the previous version is intact" if os.path.exists(path) else ""


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file that replaces ``path`` atomically when the block ends cleanly."""
    path = Path(path)
    if mode not in ("wb", "w"):
        raise ValueError("atomic_open writes only ('w' or 'wb')")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise VaelabError(f"cannot write here ({_reason(exc)}); nothing was changed{_kept(path)}", path) from exc
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise VaelabError(f"could not be written ({_reason(exc)}){_kept(path) or '; nothing was written'}",
                              path) from exc
        raise
    _fsync_dir(path.parent)


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed :func:`atomic_open` writers left in ``directory``.

    A SIGKILL between creating the temporary file and renaming it leaves ``.NAME.XXXXXXXX.tmp``
    behind (no cleanup code can run). Call this only where no other writer is active, e.g. when
    a run is resumed. Returns the removed paths.
    """
    removed = []
    directory = Path(directory)
    if not directory.is_dir():
        return removed
    for path in directory.iterdir():
        if _TEMPORARY.fullmatch(path.name) and path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


STDIN = "-"              # the argument that means "standard input" where a command allows it
_CHUNK = 1 << 20         # bytes per read() once a file turns out longer than it said


def _special(mode: int) -> str:
    return ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
            else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a special file")


def _not_regular(path, what: str, mode: int) -> VaelabError:
    target = os.path.realpath(path)
    link = f" ({target})" if os.path.islink(path) and target != os.fspath(path) else ""
    return VaelabError(f"is not a regular file but {_special(mode)}{link}; vaelab reads {what}s only from "
                       "regular files", path)


def _too_large(path, what: str, max_bytes: int) -> VaelabError:
    return VaelabError(f"{what} is larger than the {max_bytes:,}-byte limit", path)


def _read_capped(read, path, what: str, max_bytes: int | None, first: int) -> bytes:
    """Call ``read(n)`` until it returns b"", refusing as soon as more than ``max_bytes`` arrived.

    ``first`` is the size the file claims, so a regular file normally takes one read into one
    buffer of its own size (no copy); a file that grows, or claims 0 bytes as /proc files do, is
    read on in chunks, and never past ``max_bytes + 1`` bytes.
    """
    chunks, total, want = [], 0, first + 1
    while True:
        if max_bytes is not None:
            want = min(want, max_bytes + 1 - total)
        chunk = read(want)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise _too_large(path, what, max_bytes)
        want = _CHUNK
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _read_stdin(what: str, max_bytes: int | None) -> bytes:
    import sys

    stream = getattr(sys.stdin, "buffer", None)
    try:
        if stream is None or stream.closed:
            raise VaelabError(f"'-' asks for the {what} on standard input, but there is no standard input")
        if stream.isatty():
            # waiting for a user to type binary data is never what was meant
            raise VaelabError(f"'-' reads the {what} from standard input, which is a terminal here; "
                              f"pipe or redirect the {what} into vaelab (… - < FILE)")
        return _read_capped(stream.read, "standard input", what, max_bytes, _CHUNK - 1)
    except (OSError, ValueError) as exc:   # ValueError: a stream closed under us
        reason = getattr(exc, "strerror", None) or exc
        raise VaelabError(f"cannot read the {what} from standard input ({reason})") from exc


@contextlib.contextmanager
def _open_regular(path: Path, what: str) -> Iterator[tuple[Any, int]]:
    """Open a regular file (or a link to one) without ever blocking -> (unbuffered handle, size)."""
    try:
        mode = os.stat(path).st_mode           # follows links: a link to /dev/zero is a device
        if stat.S_ISDIR(mode):
            raise VaelabError(f"expected a {what}, found a directory", path)
        if not stat.S_ISREG(mode):
            raise _not_regular(path, what, mode)
        # O_NONBLOCK: should a FIFO be swapped in after the stat, opening it must not wait for a
        # writer (on a regular file the flag changes nothing).
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
                     | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb", buffering=0) as handle:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):   # replaced between the stat and the open
                raise _not_regular(path, what, info.st_mode)
            yield handle, info.st_size
    except FileNotFoundError as exc:
        raise VaelabError(f"{what} not found", path) from exc
    except IsADirectoryError as exc:
        raise VaelabError(f"expected a {what}, found a directory", path) from exc
    except OSError as exc:
        raise VaelabError(f"cannot read {what} ({exc.strerror or exc})", path) from exc


def read_bytes(path: str | os.PathLike, what: str = "file", max_bytes: int | None = None, *,
               stdin: bool = False) -> bytes:
    """Read a whole regular file, at most ``max_bytes`` of it; problems are one-line :class:`VaelabError`s.

    Only regular files (or links to them) are read. ``st_size`` cannot bound a read: it is 0
    for /dev/zero (endless) and for FIFOs (which also block until a writer comes). So FIFOs,
    devices and sockets are refused from ``os.stat`` before anything is opened, the file is
    opened with O_NONBLOCK and checked again with ``fstat`` (nothing swapped in between can
    block us), and the cap is enforced while reading, whatever size the file reports. With
    ``stdin=True`` the path ``-`` means standard input, capped the same way.
    """
    if stdin and os.fspath(path) == STDIN:
        return _read_stdin(what, max_bytes)
    path = Path(path)
    with _open_regular(path, what) as (handle, size):
        if max_bytes is not None and size > max_bytes:
            raise _too_large(path, what, max_bytes)
        return _read_capped(handle.read, path, what, max_bytes, size)


def read_head(path: str | os.PathLike, what: str, size: int) -> bytes:
    """The first ``size`` bytes of a regular file (fewer if it is shorter), checked as :func:`read_bytes` does.

    For formats whose header says how large the rest is: a file can be refused from its
    header before the rest of it is read.
    """
    path = Path(path)
    chunks, total = [], 0
    with _open_regular(path, what) as (handle, _):
        while total < size:
            chunk = handle.read(size - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    return b"".join(chunks)


def read_json(path: str | os.PathLike, what: str = "JSON file", max_bytes: int = 16 << 20) -> Any:
    """Parse a JSON file; a broken file is a :class:`VaelabError` naming the file."""
    data = read_bytes(path, what, max_bytes)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise VaelabError(f"{what} is not valid JSON ({exc.__class__.__name__}: {exc})", path) from exc
