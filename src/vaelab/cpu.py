"""How many CPU threads to use when the user leaves it to vaelab (``--threads 0``).

PyTorch's default is one thread per core whatever else the machine runs. On a shared machine
that oversubscribes the cores: threads of one matrix product wait for each other at every
barrier while another program holds a core, and a run gets several times slower than with
fewer threads (measured on this project's 2-core machines; see the ``threads`` setting).
So the default takes the cores this process may run on, less the ones other programs keep
busy right now — measured from /proc/stat over a fifth of a second (the load average lags by
a minute: right after a job ends it still counts it) — and shares them among the processes of
a run.

Measured on this project's 2-core machine (`/work/tools/threads_bench.py`: the demo's training,
images/s, two runs): quiet, 1 thread 2,542–2,576 and 2 threads 3,859–3,881; beside two busy
processes, 1 thread 1,692–1,738 and 2 threads 398–747 — two threads on busy cores are 2.3–4.4×
slower than one.
"""

from __future__ import annotations

import os
import time

SAMPLE_SECONDS = 0.2
_cache: dict[str, tuple[float, int]] = {}


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all cores since boot, from /proc/stat (None where there is none)."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)     # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores() -> int:
    """Cores other programs keep busy right now, rounded: measured over SAMPLE_SECONDS from /proc/stat
    (while this process sleeps), else the 1-minute load average; 0 if neither is known.

    Kept for a few seconds, so a command that asks twice does not wait twice."""
    cached = _cache.get("busy")
    if cached is not None and time.monotonic() - cached[0] < 5.0:
        return cached[1]
    before = _cpu_times()
    if before is not None:
        time.sleep(SAMPLE_SECONDS)
        after = _cpu_times()
        total = after[1] - before[1]
        busy = round((after[0] - before[0]) / total * (os.cpu_count() or 1)) if total > 0 else 0
    else:
        try:
            busy = int(os.getloadavg()[0] + 0.5)
        except (AttributeError, OSError):
            busy = 0
    _cache["busy"] = (time.monotonic(), busy)
    return busy


def default_threads(processes: int = 1) -> int:
    """Threads per process for ``--threads 0``: the idle cores shared among ``processes``, at least 1."""
    cores = usable_cores()
    idle = min(cores, max(1, cores - busy_cores()))
    return max(1, idle // max(1, processes))
