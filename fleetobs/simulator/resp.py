"""Just enough of Redis's protocol (RESP) for a simulated BaseAgent: one command per connection.

The real agents keep their readiness in Redis (``agent:ready:NAME``, set once with a 300 s
expiry). The simulator talks to a real Redis (or the group relay in front of one); no client
library is needed for SET/EXISTS/DEL/PING.
"""

from __future__ import annotations

import asyncio

Reply = str | int | bytes | None


class RedisError(Exception):
    pass


def encode(*args: str | int) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for a in args:
        data = str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


async def _read_reply(reader: asyncio.StreamReader) -> Reply:
    line = await reader.readline()
    if not line.endswith(b"\r\n"):
        raise RedisError("connection closed mid-reply")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body.decode()
    if kind == b"-":
        raise RedisError(body.decode(errors="replace"))
    if kind == b":":
        return int(body)
    if kind == b"$":
        size = int(body)
        if size < 0:
            return None
        data = await reader.readexactly(size + 2)
        return data[:-2]
    raise RedisError(f"unexpected reply {line[:40]!r}")


async def command(host: str, port: int, *args: str | int, timeout: float = 1.0) -> Reply:
    """Run one command; OSError/TimeoutError when Redis is not there, RedisError on an error reply."""

    async def run() -> Reply:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(encode(*args))
            await writer.drain()
            return await _read_reply(reader)
        finally:
            writer.close()

    return await asyncio.wait_for(run(), timeout)


class Connection:
    """One kept-open connection, as a Redis client library keeps (a connect per health request
    would add a TCP handshake and, through the group relay, a DNS lookup to every answer).
    Reconnects after any failure. Not for concurrent use: callers serialise (``lock``)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.lock = asyncio.Lock()
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def command(self, *args: str | int, timeout: float = 1.0) -> Reply:
        async with self.lock:
            try:
                return await asyncio.wait_for(self._run(args), timeout)
            except BaseException:
                self.close()
                raise

    async def _run(self, args: tuple[str | int, ...]) -> Reply:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        writer.write(encode(*args))
        await writer.drain()
        return await _read_reply(reader)

    def close(self) -> None:
        streams, self._streams = self._streams, None
        if streams is not None:
            streams[1].close()


async def tcp_greeting(host: str, port: int, timeout: float = 1.0) -> bytes:
    """The first line a server sends on connect (NATS: ``INFO {...}``)."""

    async def run() -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            return await reader.readline()
        finally:
            writer.close()

    return await asyncio.wait_for(run(), timeout)
