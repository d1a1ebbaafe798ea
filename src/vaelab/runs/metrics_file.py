"""Reading ``metrics.jsonl``: one JSON object per logged step, epoch and run end.

The training engine appends the records (training/metrics.py); reports, the explorer and
comparisons read them through here. A torn or foreign line is skipped, never fatal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All complete records; a torn or foreign line is skipped, never fatal."""
    return list(iter_metrics(path))


def iter_metrics(path: Path) -> Iterator[dict[str, Any]]:
    if not Path(path).exists():
        return
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record
