"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the heartbeat hot path).

* :class:`BodyLimit`: bodies over the limit get 413, whether announced by
  Content-Length or streamed chunked; a body not complete within ``body_timeout``
  seconds of the request head gets 408 and the connection is closed (slow senders);
* :class:`RequestEdges`: HTTP/1.1 without ``Host`` gets 400 (RFC 9112 3.2);
* :class:`Timing`: request durations by route template into the hub's histogram.
"""

from __future__ import annotations

import asyncio
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


class _TooSlow(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(status_code=408, detail=f"request body not received within {seconds:g} s",
                         headers={"Connection": "close"})


async def _send_error(send: Send, status: int, detail: str, close: bool = False) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_413(send: Send, limit: int) -> None:
    await _send_error(send, 413, f"request body larger than {limit} bytes")


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int, counters: HubCounters,
                 body_timeout: float | None = None) -> None:
        self.app = app
        self.limit = limit
        self.counters = counters
        self.body_timeout = body_timeout

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
        timeout = self.body_timeout or 0.0
        deadline = asyncio.get_running_loop().time() + timeout if timeout else None

        async def counted() -> Message:
            nonlocal seen
            if deadline is None:
                msg = await receive()
            else:
                try:
                    async with asyncio.timeout_at(deadline):
                        msg = await receive()
                except TimeoutError:
                    self.counters.timeouts["body"] += 1
                    raise _TooSlow(timeout) from None
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
        except _TooSlow as exc:
            if not started:
                await _send_error(send, 408, str(exc.detail), close=True)


class RequestEdges:
    """400 for an HTTP/1.1 request without Host (RFC 9112 3.2; httptools lets it in)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope.get("http_version") == "1.1"
                and not any(name == b"host" for name, _ in scope["headers"])):
            await _send_error(send, 400, "HTTP/1.1 requests need a Host header", close=True)
            return
        await self.app(scope, receive, send)


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
