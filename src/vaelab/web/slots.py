"""Bounded concurrency for the explorer's heavy requests: N at once, the next one 503.

An upload decodes an image whose size the client chooses (up to the pixel cap), scores it
and compresses it; its memory and CPU are paid per request, so a few dozen at once can
exhaust the machine (issue 20: 40 concurrent 4000×4000 uploads took the server to 13 GiB).
Such work runs inside a :class:`Slots` slot. There is no queue — a queue would hold the
requests' bodies and threads while they wait, and a busy server should say so at once: past
the limit the answer is 503 with ``Retry-After`` and a JSON error, and the client tries again.

A slot is taken once the request's body has arrived (so a client sending slowly cannot hold
one) and given back when the answer is computed.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from starlette.exceptions import HTTPException

RETRY_AFTER_S = 1   # an upload takes a fraction of a second; a second later a slot is likely free


class Slots:
    """At most ``size`` requests inside :meth:`take` at once; the next one gets a 503."""

    def __init__(self, size: int, what: str = "uploads"):
        if size < 1:
            raise ValueError(f"need at least one slot, not {size}")
        self.size = size
        self.what = what
        self._free = threading.BoundedSemaphore(size)

    @contextlib.contextmanager
    def take(self) -> Iterator[None]:
        """Hold a slot for the block; raise a 503 HTTPException (with Retry-After) when none is free."""
        if not self._free.acquire(blocking=False):
            raise HTTPException(503, f"the server is busy with {self.size} other {self.what} (its limit); "
                                     f"try again in {RETRY_AFTER_S} s", headers={"Retry-After": str(RETRY_AFTER_S)})
        try:
            yield
        finally:
            self._free.release()
