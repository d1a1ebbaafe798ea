"""Atomic file writing and careful reading.

Every file vaelab writes goes through :func:`atomic_write`: the bytes land in a temporary
file beside the target, are flushed and fsync'ed, and only then renamed over the target.
A kill at any moment leaves either the old file or the new one, never a torn one; a full
disk or an unwritable directory raises :class:`VaelabError` and leaves the old file intact.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
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


def read_bytes(path: str | os.PathLike, what: str = "file", max_bytes: int | None = None) -> bytes:
    """Read a whole file, turning OS errors into one-line :class:`VaelabError`s."""
    path = Path(path)
    try:
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise VaelabError(f"{what} is larger than the {max_bytes:,}-byte limit", path)
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise VaelabError(f"{what} not found", path) from exc
    except IsADirectoryError as exc:
        raise VaelabError(f"expected a {what}, found a directory", path) from exc
    except OSError as exc:
        raise VaelabError(f"cannot read {what} ({exc.strerror or exc})", path) from exc


def read_json(path: str | os.PathLike, what: str = "JSON file", max_bytes: int = 16 << 20) -> Any:
    """Parse a JSON file; a broken file is a :class:`VaelabError` naming the file."""
    data = read_bytes(path, what, max_bytes)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise VaelabError(f"{what} is not valid JSON ({exc.__class__.__name__}: {exc})", path) from exc
