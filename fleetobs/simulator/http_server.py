"""A minimal HTTP/1.1 server on asyncio streams: what the real BaseAgent's health
server offers (``GET /health``, ``GET /metrics``), one request per connection.

Hand-rolled rather than a framework so a thousand simulated agents fit in one
process and so "silent" and "garbage" can misbehave at the socket level.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

#: (status code, content type, body); ``None``: hold the connection and never answer.
Response = tuple[int, str, bytes] | None
Handler = Callable[[str, str], Awaitable[Response]]  # (method, path) -> response

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            500: "Internal Server Error"}
MAX_HEAD = 16 * 1024


class HttpServer:
    """Serves ``handler`` on host:port; :meth:`close` also drops hung connections."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._closing = asyncio.Event()
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> None:
        """Raises OSError when the port is taken."""
        self._server = await asyncio.start_server(self._on_connection, host, port, limit=MAX_HEAD)

    async def _on_connection(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            if len(parts) != 3:
                response: Response = (400, "text/plain", b"bad request line\n")
            else:
                response = await self._handler(parts[0], parts[1].split("?", 1)[0])
            if response is None:
                await self._closing.wait()  # hang until the server closes
                return
            code, ctype, body = response
            writer.write(
                f"HTTP/1.1 {code} {_REASONS.get(code, 'Status')}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("latin-1") + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def close(self, deadline_seconds: float = 2.0) -> None:
        """Stop listening and end open connections. Idempotent."""
        self._closing.set()
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        pending = list(self._connections)
        if pending:
            _done, still = await asyncio.wait(pending, timeout=deadline_seconds)
            for t in still:
                t.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), deadline_seconds)
