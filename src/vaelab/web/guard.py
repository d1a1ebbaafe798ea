"""The outer ASGI layer: request-size cap, JSON errors for anything unexpected, safe headers.

It sits outside the application's routing, so it holds whatever the framework does:

- A body announced larger than the cap (``Content-Length``) is refused with 413 before the
  application sees the request; a body that grows past the cap while streaming (chunked
  uploads, lying headers) stops being read at the cap and the answer is 413 as well.
- An unexpected exception is logged with its traceback on the server and answered with a
  generic 500 JSON message; the client never sees a stack trace.
- Every response carries a Content-Security-Policy that lets the page load only its own
  files (no CDN, nothing from the network) and refuses framing, plus ``nosniff``.
"""

from __future__ import annotations

import json
import logging

log = logging.getLogger("vaelab.web")

CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]
INTERNAL_ERROR = "internal server error; the details are in the server's log"


class BodyTooLarge(Exception):
    """Raised inside ``receive`` when a request body passes the cap."""


def too_large_message(limit: int) -> str:
    return f"the request body is over the {limit:,}-byte limit; send a smaller image"


async def send_json(send, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Wrap an ASGI app with the body cap, the 500 handler and the security headers."""

    def __init__(self, app, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
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
