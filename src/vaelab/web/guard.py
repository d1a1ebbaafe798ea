"""The outer ASGI layer: who may ask, request-size cap, JSON errors for anything unexpected, safe headers.

It sits outside the application's routing, so it holds whatever the framework does:

- The ``Host`` header must name this server: ``localhost``, ``127.0.0.1``, ``[::1]``, the
  address it is bound to, or a name it was given (``vaelab serve --allowed-host``), with the
  port it listens on; anything else is 421. A web page that rebinds its own domain name to
  127.0.0.1 (DNS rebinding) reaches the socket, but with its own name in ``Host``.
- A state-changing request (POST, PUT, PATCH, DELETE) whose ``Origin`` — or, without one,
  ``Referer`` — is another origin than the server's own is 403: any page a user visits can
  make the browser send such a request (a cross-origin form post needs no CORS permission).
  Requests with neither header (curl, Python clients) are let through; browsers send
  ``Origin`` with every POST, and the explorer's own page sends its own origin.
- A body announced larger than the cap (``Content-Length``) is refused with 413 before the
  application sees the request; a body that grows past the cap while streaming (chunked
  uploads, lying headers) stops being read at the cap and the answer is 413 as well.
- An unexpected exception is logged with its traceback on the server and answered with a
  generic 500 JSON message; the client never sees a stack trace.
- Every response carries a Content-Security-Policy that lets the page load only its own
  files (no CDN, nothing from the network) and refuses framing, plus ``nosniff``, and a
  ``same-origin`` referrer policy: the page's own requests name their origin (under
  ``no-referrer`` the Fetch standard has a POST say ``Origin: null``), other sites learn nothing.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from typing import Iterable
from urllib.parse import urlsplit

log = logging.getLogger("vaelab.web")

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
DEFAULT_PORTS = {"http": 80, "https": 443}
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"   # one part of a DNS name
DNS_NAME = re.compile(rf"(?:{LABEL}\.)*{LABEL}")
# a Host header: a name or IP literal with an optional port; no user info, path or spaces to confuse a parser
HOST_HEADER = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?")

CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY")]
INTERNAL_ERROR = "internal server error; the details are in the server's log"


class BodyTooLarge(Exception):
    """Raised inside ``receive`` when a request body passes the cap."""


def too_large_message(limit: int) -> str:
    return f"the request body is over the {limit:,}-byte limit; send a smaller image"


def host_name(name: str) -> str:
    """A host name or address as the ``Host`` header writes it: lower case, IPv6 in brackets."""
    name = name.strip().lower()
    return f"[{name}]" if ":" in name and not name.startswith("[") else name


def is_host_name(value: str) -> bool:
    """True for a DNS name or an IP address (IPv6 with or without brackets), without port or scheme."""
    try:
        ipaddress.ip_address(value[1:-1] if value.startswith("[") and value.endswith("]") else value)
        return True
    except ValueError:
        return DNS_NAME.fullmatch(value) is not None


def parse_host(value: str) -> tuple[str, int | None] | None:
    """A ``Host`` header -> (name as :func:`host_name` writes it, port or None); None if malformed."""
    match = HOST_HEADER.fullmatch(value)
    if not match:
        return None
    return host_name(match.group(1)), None if match.group(2) is None else int(match.group(2))


def origin_of(url: str) -> tuple[str, str, int] | None:
    """``scheme://host[:port]…`` -> (scheme, host name, port with the scheme's default); None if it has none.

    The literal ``null`` (sandboxed frames, privacy-stripped requests) is no origin either.
    """
    try:
        parts = urlsplit(url.strip())
        scheme, port = parts.scheme.lower(), parts.port
    except ValueError:
        return None
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, host_name(parts.hostname), port if port is not None else DEFAULT_PORTS[scheme]


def misdirected_message(host: str, allowed: list[str]) -> str:
    return (f"the Host header {host[:100]!r} does not name this server (refused against DNS rebinding); it answers "
            f"to {', '.join(allowed)}; start vaelab serve with --allowed-host NAME to add a name")


async def send_json(send, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Wrap an ASGI app with the Host and Origin checks, the body cap, the 500 handler and the security headers.

    ``allowed_hosts`` are names (or addresses) the ``Host`` header may carry besides the
    loopback ones and the address the server is bound to.
    """

    def __init__(self, app, max_body_bytes: int, allowed_hosts: Iterable[str] = ()):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.allowed_hosts = {host_name(h) for h in allowed_hosts}

    def refusal(self, scope) -> tuple[int, str] | None:
        """(status, message) when this request must not reach the application, else None."""
        hosts = [v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"]
        if len(hosts) != 1:
            return 400, "the request must carry exactly one Host header"
        own = self.own_origin(scope, hosts[0])
        if own is None:
            server = scope.get("server") or (None, None)
            return 421, misdirected_message(hosts[0], [f"{n}:{server[1]}" if server[1] else n
                                                       for n in self.names(scope)])
        if scope.get("method") not in STATE_CHANGING:
            return None  # reads change nothing, and without CORS headers no other page may see them
        headers = dict(scope.get("headers", []))
        claimed = headers.get(b"origin", headers.get(b"referer"))
        if claimed is None or origin_of(claimed.decode("latin-1")) == own:
            return None
        source = "Origin" if b"origin" in headers else "Referer"
        return 403, (f"cross-origin request refused: its {source} {claimed.decode('latin-1')[:100]!r} is not this "
                     f"server ({own[0]}://{hosts[0]}); only the explorer's own page may post here")

    def names(self, scope) -> list[str]:
        """Host names this server answers to: loopback, the bound address, the allowed ones."""
        bound = (scope.get("server") or (None, None))[0]
        return sorted({*LOOPBACK_HOSTS, *self.allowed_hosts, *([host_name(bound)] if bound else [])})

    def own_origin(self, scope, host: str) -> tuple[str, str, int] | None:
        """The origin (scheme, name, port) the ``Host`` header gives, or None when it is not this server."""
        parsed = parse_host(host)
        if parsed is None or parsed[0] not in self.names(scope):
            return None
        scheme = scope.get("scheme", "http")
        port = parsed[1] if parsed[1] is not None else DEFAULT_PORTS.get(scheme, 80)
        listening = (scope.get("server") or (None, None))[1]
        return (scheme, parsed[0], port) if listening in (None, port) else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self.refusal(scope)
        if refused is not None:
            await send_json(send, refused[0], {"error": refused[1]})
            return
        limit = self.max_body_bytes
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            try:
                declared_bytes = int(declared)
            except ValueError:
                await send_json(send, 400, {"error": "the Content-Length header is not a number"})
                return
            if declared_bytes > limit:
                await send_json(send, 413, {"error": too_large_message(limit)})
                return

        received = 0
        overflowed = False
        started = False

        async def limited_receive():
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflowed = True
                    raise BodyTooLarge(too_large_message(limit))
            return message

        async def guarded_send(message):
            nonlocal started
            if overflowed:
                return  # the framework's own answer to the aborted read is replaced by our 413
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not overflowed:
                log.exception("%s %s failed", scope.get("method"), scope.get("path"))
                if not started:
                    await send_json(send, 500, {"error": INTERNAL_ERROR})
                return
        if overflowed and not started:
            await send_json(send, 413, {"error": too_large_message(limit)})
