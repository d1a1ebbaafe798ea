"""Running the explorer: binding a socket, uvicorn in the foreground or in a thread.

The socket is bound before uvicorn starts so that ``--port 0`` (any free port) still lets
us print the real URL, and a busy port is a clear error rather than a log line. The
foreground server also fixes glibc's mmap threshold (:func:`return_freed_memory`), so that
the memory of big images goes back to the system once a request is done with it.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

from ..errors import VaelabError

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
MMAP_THRESHOLD = 1 << 20   # allocations from 1 MiB up are mapped, and unmapped when freed
M_MMAP_THRESHOLD = -3      # glibc's mallopt parameter number (malloc.h)


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str) -> str | None:
    """The warning to print when ``host`` lets other machines in (None for loopback)."""
    if is_loopback(host):
        return None
    return (f"warning: listening on {host}, so other machines can reach the explorer; it has no "
            "authentication (use the default --host 127.0.0.1 to keep it local)")


def bind_socket(host: str, port: int, listen: bool = True) -> socket.socket:
    """A TCP socket bound to (host, port), listening unless ``listen=False``; port 0 picks a free one.

    ``vaelab serve`` binds first (a busy port is refused at once) and listens only when its runs
    are loaded: until then a browser's connection is refused at once rather than left hanging.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise VaelabError(f"cannot resolve host {host!r} ({exc}); try --host 127.0.0.1") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        if listen:
            sock.listen(128)
    except OSError as exc:
        sock.close()
        raise VaelabError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port, "
                          "or --port 0 for a free one") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def make_server(app, sock: socket.socket, log_level: str = "warning"):
    import uvicorn

    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                            lifespan="off", timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


def return_freed_memory() -> bool:
    """Have glibc map every allocation of 1 MiB or more, so that freeing it returns it to the system.

    By default glibc raises its mmap threshold (up to 32 MiB) each time a mapped block is freed;
    later image buffers then come from the heaps of the server's worker threads, which fragment
    and stay resident. Measured with ``benchmarks/loadtest.py --storm`` (100 uploads of a
    16-megapixel PNG, 40 at a time): 848 MB resident afterwards against 391 MB idle by default,
    395 against 383 with the fixed threshold. False where the C library has no ``mallopt``.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter already uses
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def run(app, sock: socket.socket, log_level: str = "warning") -> None:
    """Serve until interrupted (Ctrl+C), then shut down gracefully."""
    return_freed_memory()
    make_server(app, sock, log_level).run(sockets=[sock])


class BackgroundServer:
    """Serve ``app`` from a thread (tests, notebooks, screenshots); a context manager.

    >>> with BackgroundServer(app) as server:   # doctest: +SKIP
    ...     print(server.url)                    # http://127.0.0.1:PORT/
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 20.0):
        self.sock = bind_socket(host, port)
        self.url = url_of(self.sock)
        self.server = make_server(app, self.sock)
        self.startup_timeout = startup_timeout
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="vaelab-web", daemon=True)

    def __enter__(self) -> "BackgroundServer":
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the explorer server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        self.sock.close()

    def __exit__(self, *exc) -> None:
        self.stop()
