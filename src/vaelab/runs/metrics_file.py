"""Reading ``metrics.jsonl``: one JSON object per logged step, epoch and run end.

The training engine appends the records (training/metrics.py); reports, the explorer and
comparisons read them through here. A torn or foreign line is skipped, never fatal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from ..fileio import read_bytes


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All complete records; a torn or foreign line is skipped, never fatal."""
    return list(iter_metrics(path))


MAX_LOG_BYTES = 1 << 30   # a million logged steps take about 250 MB


def iter_metrics(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a ``metrics.jsonl``, read as a regular file only (a FIFO or device there is
    one-line error, never a hang) and at most MAX_LOG_BYTES of it."""
    if not Path(path).exists():
        return
    text = read_bytes(path, "metrics log", max_bytes=MAX_LOG_BYTES).decode("utf-8", errors="replace")
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(record, dict):
            yield record
