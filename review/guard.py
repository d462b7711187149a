"""Request guards of the review app that sit below FastAPI: the Host allow-list, the request-body size limit,
validation errors that never echo the request, and an access log without query strings.

Why each: a Host check stops a web page from reaching the loopback server through a DNS name it rebinds to
127.0.0.1; a body limit stops one request from filling memory; a 422 that echoed its input would send a 50 MB
body straight back; and the page's URLs carry `?token=`, which an access log would otherwise keep in clear.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from schemas.text import bounded_reason

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 64 * 1024  # a decision is a few hundred bytes; a comment is at most 2000 characters
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
MAX_ERRORS_SHOWN = 20


def host_name(header: str) -> str:
    """The name part of a Host header, lower-cased, port dropped: "[::1]:8765" -> "[::1]", "a.b:80" -> "a.b"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def allowed_host_names(extra: Iterable[str] = ()) -> frozenset[str]:
    """Loopback names plus `extra` (host names or addresses, an IPv6 address with or without brackets)."""
    names = {host_name(f"[{h}]" if ":" in h and not h.startswith("[") else h) for h in extra if h}
    return LOOPBACK_HOSTS | names


class RequestGuard:
    """ASGI middleware: 400 for a Host outside `allowed`, 413 for a body over `max_body` bytes, whether the
    Content-Length says so or the streamed body turns out longer. The bound address (the ASGI `server`) is
    always allowed, so a server bound to a LAN address answers requests made to that address."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str], max_body: int = MAX_BODY_BYTES,
                 headers: dict[str, str] | None = None) -> None:
        self.app = app
        self.allowed = allowed
        self.max_body = max_body
        self.headers = headers or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = host_name(headers.get("host", ""))
        if host not in self.allowed and host != self._bound(scope):
            return await self._refuse(send, 400, f"host {bounded_reason(host, 80)!r} is not served here; use "
                                                 f"one of {sorted(self.allowed)}")
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await self._refuse(send, 413, self._too_large())
        await self._limited(scope, receive, send)

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, counting body bytes as they stream in. Past the limit (a chunked body, or one longer than
        its Content-Length said) the client gets 413 at once and the app sees a disconnect; whatever the app
        then tries to send is dropped."""
        received, refused = 0, False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > self.max_body:
                    refused = True
                    await self._refuse(send, 413, self._too_large())
            return {"type": "http.disconnect"} if refused else message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)

    def _too_large(self) -> str:
        return f"request body larger than {self.max_body} bytes"

    @staticmethod
    def _bound(scope: Scope) -> str | None:
        server = scope.get("server")
        return host_name(f"[{server[0]}]" if ":" in str(server[0]) else str(server[0])) if server else None

    async def _refuse(self, send: Send, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close"), *((k.lower().encode(), v.encode()) for k, v in self.headers.items())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each bad field and what is wrong with it; never the submitted value (FastAPI's default
    answer carries `input`, which echoes the whole body)."""
    errors = [{"loc": [bounded_reason(str(part), 100) for part in error.get("loc", ())],
               "msg": bounded_reason(str(error.get("msg", "")), 300), "type": str(error.get("type", ""))}
              for error in exc.errors()[:MAX_ERRORS_SHOWN]]
    return JSONResponse({"detail": errors}, status_code=422)


class DropQueryStrings(logging.Filter):
    """Rewrites uvicorn's access-log records to the path without its query: `?token=` never reaches a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            # uvicorn.access args: (client address, method, path with query, HTTP version, status code)
            record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
        return True


def quiet_access_log() -> None:
    """Install DropQueryStrings on uvicorn's access logger once (uvicorn's logging setup keeps logger filters)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, DropQueryStrings) for f in logger.filters):
        logger.addFilter(DropQueryStrings())
