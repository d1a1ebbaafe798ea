"""``metrics.jsonl``: one JSON object per logged step, epoch and run end.

Lines are appended and flushed; at every checkpoint the file is fsync'ed, so what was
written before the last checkpoint survives a kill. On resume, lines newer than the
checkpoint are dropped (they will be produced again) and a torn last line is discarded.
"""

from __future__ import annotations

import errno
import json
import math
import os
from pathlib import Path
from typing import Any

from ..errors import VaelabError
from ..fileio import atomic_write_text
from ..runs.metrics_file import iter_metrics


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN; keep the fact visible
    return value


class MetricsLog:
    def __init__(self, path: Path, enabled: bool = True):
        self.path = path
        self.enabled = enabled
        self._handle = None

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        try:
            if self._handle is None:
                self._handle = open(self.path, "a", encoding="utf-8")
            self._handle.write(json.dumps({k: _clean(v) for k, v in record.items()}, sort_keys=True) + "\n")
            self._handle.flush()
        except OSError as exc:
            raise self._failed(exc) from exc

    def sync(self) -> None:
        if self._handle is not None:
            try:
                self._handle.flush()
                os.fsync(self._handle.fileno())
            except OSError as exc:
                raise self._failed(exc) from exc

    def _failed(self, exc: OSError) -> VaelabError:
        # A full disk or a lost mount while appending: the records up to the last checkpoint
        # were fsync'ed with it, and a torn last line is dropped on resume.
        reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        try:
            self._handle.close()  # drops the unwritten buffer, so no second failure at exit
        except OSError:
            pass
        self._handle = None
        return VaelabError(f"could not be appended to ({reason}); the records up to the last checkpoint are intact "
                           "— fix that, then resume with --resume", self.path)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def trim_after(path: Path, step: int, epoch: int | None = None) -> None:
    """Keep only the records up to ``step`` (inclusive), rewriting the file atomically.

    With ``epoch`` (the checkpoint's), the cut is right after that epoch's record instead: the
    records written after it at the same step (a skipped step's ``non_finite``, the ``final``
    record of a run killed while writing its report) are produced again on resume, and must
    not appear twice.
    """
    if not path.exists():
        return
    records = list(iter_metrics(path))
    ends = [i for i, r in enumerate(records) if r.get("event") == "epoch" and r.get("epoch") == epoch]
    if ends:
        records = records[:ends[0] + 1]
    kept = [r for r in records if isinstance(r.get("step"), int) and r["step"] <= step]
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))
