"""How many CPU threads to use when the user leaves it to vaelab (``--threads 0``).

PyTorch's default is one thread per core whatever else the machine runs. On a shared machine
that oversubscribes the cores: threads of one matrix product wait for each other at every
barrier while another program holds a core, and a run gets several times slower than with
fewer threads (measured on this project's 2-core machines; see the ``threads`` setting).
So the default takes the cores this process may run on, less the ones other programs keep
busy — the 1-minute load average, rounded — and shares them among the processes of a run.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def busy_cores() -> int:
    """Cores other programs keep busy right now: the 1-minute load average, rounded (0 if unknown)."""
    try:
        return int(os.getloadavg()[0] + 0.5)
    except (AttributeError, OSError):
        return 0


def default_threads(processes: int = 1) -> int:
    """Threads per process for ``--threads 0``: the idle cores shared among ``processes``, at least 1."""
    cores = usable_cores()
    idle = min(cores, max(1, cores - busy_cores()))
    return max(1, idle // max(1, processes))
