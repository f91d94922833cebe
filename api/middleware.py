"""What every request goes through before a route sees it (a plain ASGI middleware).

- A request that may change something (any method but GET, HEAD and OPTIONS) must carry a
  valid bearer token, checked *before* its body is read: a caller without one cannot make
  the service read or parse anything.
- A body over ``api.max_body_bytes`` is refused with 413, by its Content-Length before it
  is read, or as soon as a chunked body passes the limit.
- One access-log line per request on the logger ``icos.access``: client, method, path and
  query (credentials in URLs masked), status, milliseconds and the caller's name. Never a
  token: the Authorization header is not logged.
- Every response says what its times are: ``X-ICOS-Time-Basis: simulated`` (the embedded
  continuum), ``replayed`` or ``real``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.security import TokenBook, TokenError
from intelligence.vocabulary import redact_text

access = logging.getLogger("icos.access")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class _TooLarge(HTTPException):
    """Raised by the body's reader past the limit: FastAPI passes HTTP exceptions on, and answers 413."""


class Guard:
    def __init__(self, app: ASGIApp, tokens: TokenBook, max_body_bytes: int, access_log: bool, time_basis: str):
        self.app = app
        self.tokens = tokens
        self.max_body = max_body_bytes
        self.access_log = access_log
        self.time_basis = time_basis.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        sent = False

        async def send_marked(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                sent = True
                message["headers"] = [*message.get("headers", []), (b"x-icos-time-basis", self.time_basis)]
            await send(message)

        caller = "-"
        try:
            if scope["method"] not in SAFE_METHODS:
                headers = dict(scope["headers"])
                try:
                    who = self.tokens.identify(_text(headers.get(b"authorization")))
                except TokenError as exc:
                    await _error(send_marked, exc.status, exc.message, exc.headers)
                    return
                caller = who.name
                scope.setdefault("state", {})["caller"] = who
                declared = headers.get(b"content-length")
                if declared is not None:
                    try:
                        size = int(declared)
                    except ValueError:
                        await _error(send_marked, 400, "Content-Length is not a number")
                        return
                    if size > self.max_body:
                        await _error(send_marked, 413, f"request body over {self.max_body} bytes")
                        return
                receive = self._limited(receive)
            try:
                await self.app(scope, receive, send_marked)
            except _TooLarge:
                if sent:
                    raise
                await _error(send_marked, 413, f"request body over {self.max_body} bytes")
        finally:
            if self.access_log:
                self._log(scope, status, caller, started)

    def _limited(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge(413, f"request body over {self.max_body} bytes")
            return message

        return counted

    def _log(self, scope: Scope, status: int, caller: str, started: float) -> None:
        client = scope.get("client") or ("-", 0)
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope["path"] + (f"?{query}" if query else "")
        access.info(
            '%s "%s %s" %d %.1fms caller=%s',
            client[0],
            scope["method"],
            redact_text(path),
            status,
            (time.perf_counter() - started) * 1000,
            caller,
        )


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


async def _error(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    extra: list[Any] = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra],
        }
    )
    await send({"type": "http.response.body", "body": body})
