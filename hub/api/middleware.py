"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the heartbeat hot path).

* :class:`BodyLimit`: bodies over the limit get 413, whether announced by
  Content-Length or streamed chunked;
* :class:`Timing`: request durations by route template into the hub's histogram.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.metrics import HubCounters

_BODY_METHODS = frozenset({b"POST", b"PUT", b"PATCH", "POST", "PUT", "PATCH"})


class _TooLarge(HTTPException):
    """An HTTPException so FastAPI's own body parsing (plugin routes) re-raises it."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body larger than {limit} bytes")


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body larger than {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int, counters: HubCounters) -> None:
        self.app = app
        self.limit = limit
        self.counters = counters

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.limit
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = 0
                if announced > limit:
                    self.counters.rejected["too_large"] += 1
                    await _send_413(send, limit)
                    return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    self.counters.rejected["too_large"] += 1
                    raise _TooLarge(limit)
            return msg

        async def watch(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counted, watch)
        except _TooLarge:
            if not started:
                await _send_413(send, limit)


class Timing:
    def __init__(self, app: ASGIApp, counters: HubCounters,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.app = app
        self.counters = counters
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = self.clock()
        code = 500

        async def watch(msg: Message) -> None:
            nonlocal code
            if msg["type"] == "http.response.start":
                code = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, watch)
        finally:
            route: Any = scope.get("route")
            path = getattr(route, "path", None) or "other"
            self.counters.requests.observe(scope["method"], path, code, self.clock() - start)
