"""Run ``vaelab ARGS`` and SIGKILL the process at a chosen moment.

Usage: ``python killpoint.py SPEC vaelab-args...`` where SPEC is one of

- ``none``                     run to the end;
- ``forward:N``                at the start of the N-th training step of this process;
- ``before-replace:NAME:N``    when the N-th atomic write of NAME has its temporary file complete
                               but not yet renamed (the temporary file is left behind);
- ``after-replace:NAME:N``     right after the N-th atomic rename onto NAME (e.g. the new
                               ``checkpoint.safetensors`` is in place, ``checkpoint.json`` not yet);
- ``evaluate:N``               inside the N-th loss evaluation of this process (validation at
                               each epoch end, then the final test evaluation);
- ``after-record:EVENT``       right after the ``metrics.jsonl`` record of EVENT is written (for
                               ``final``: where the report would be being written).

SIGKILL cannot be caught: no ``finally`` block, no ``atexit`` hook and no buffered write
runs, which is exactly what a user's ``kill -9`` or the OOM killer does. Killing from inside at
a named point (rather than from outside after a delay) makes each moment certain to be hit on
a loaded machine.
"""

from __future__ import annotations

import os
import signal
import sys


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _counter(n: int):
    calls = {"n": 0}

    def hit() -> bool:
        calls["n"] += 1
        return calls["n"] == n

    return hit


def install(spec: str) -> None:
    kind, _, rest = spec.partition(":")
    if kind == "none":
        return
    from vaelab.training import engine, metrics

    if kind == "forward":
        hit, real_forward = _counter(int(rest)), engine.LossModule.forward

        def forward(self, x, kl_weight, labels=None):
            if hit():
                _die()
            return real_forward(self, x, kl_weight, labels)

        engine.LossModule.forward = forward
    elif kind in ("before-replace", "after-replace"):
        name, _, n = rest.rpartition(":")
        hit, real_replace = _counter(int(n)), os.replace

        def replace(src, dst, *args, **kwargs):
            target = os.path.basename(os.fspath(dst)) == name
            if target and kind == "before-replace" and hit():
                _die()
            real_replace(src, dst, *args, **kwargs)
            if target and kind == "after-replace" and hit():
                _die()

        os.replace = replace
    elif kind == "evaluate":
        hit, real_evaluate = _counter(int(rest)), engine.evaluate_loss

        def evaluate(*args, **kwargs):
            if hit():
                _die()
            return real_evaluate(*args, **kwargs)

        engine.evaluate_loss = evaluate
    elif kind == "after-record":
        real_write = metrics.MetricsLog.write

        def write(self, record):
            real_write(self, record)
            if record.get("event") == rest:
                _die()

        metrics.MetricsLog.write = write
    else:
        raise SystemExit(f"unknown kill point {spec!r}")


if __name__ == "__main__":
    install(sys.argv[1])
    from vaelab.cli import main

    sys.exit(main(sys.argv[2:]))
