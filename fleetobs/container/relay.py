"""A TCP relay: ``LISTEN=UPSTREAM`` pairs, e.g. ``127.0.0.1:6379=redis:6379``.

The real BaseAgent always talks to Redis at ``localhost:6379`` and NATS at
``localhost:4222``. In the compose bundle each group's network namespace is owned by a
small relay container (the group container joins it with ``network_mode: service:...``),
so those localhost ports answer before any agent starts, and every agent of the machine
shares the machine's one Redis (its ready keys in one place, as on bare metal) and NATS.

The upstream name is resolved for every new connection, so a restarted Redis (new IP)
is found again. Standard library only. Its compose healthcheck is
``python3 -m fleetobs.container.healthcheck relay ROUTE...`` (exit 0/1).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

BUFFER = 64 * 1024


@dataclass(frozen=True)
class Route:
    listen_host: str
    listen_port: int
    upstream_host: str
    upstream_port: int

    def __str__(self) -> str:
        return f"{self.listen_host}:{self.listen_port}={self.upstream_host}:{self.upstream_port}"


def parse_route(text: str) -> Route:
    listen, sep, upstream = text.partition("=")
    if not sep:
        raise ValueError(f"{text!r}: expected LISTEN_HOST:PORT=UPSTREAM_HOST:PORT")
    lh, lp = _host_port(listen, text)
    uh, up = _host_port(upstream, text)
    return Route(lh, lp, uh, up)


def _host_port(part: str, whole: str) -> tuple[str, int]:
    host, sep, port = part.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{whole!r}: {part!r} is not HOST:PORT")
    return host, int(port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(BUFFER):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()


class Relay:
    def __init__(self, routes: list[Route], connect_timeout: float = 3.0) -> None:
        self.routes = routes
        self.connect_timeout = connect_timeout
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        for route in self.routes:
            server = await asyncio.start_server(self._handler(route), route.listen_host, route.listen_port)
            self._servers.append(server)

    def _handler(self, route: Route) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._on_client(route, reader, writer)

        return handle

    async def _on_client(self, route: Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(route.upstream_host, route.upstream_port), self.connect_timeout)
        except (OSError, TimeoutError):
            writer.close()  # the client sees a closed connection and retries, as with a down Redis
            return
        tasks = [asyncio.create_task(_pipe(reader, up_writer)), asyncio.create_task(_pipe(up_reader, writer))]
        self._tasks.update(tasks)
        try:
            await asyncio.gather(*tasks)
        finally:
            self._tasks.difference_update(tasks)

    async def close(self) -> None:
        """Stop listening and drop relayed connections. Idempotent."""
        servers, self._servers = self._servers, []
        for s in servers:
            s.close()
        for t in list(self._tasks):
            t.cancel()
        for s in servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(s.wait_closed(), 2.0)


async def serve(routes: list[Route]) -> None:
    relay = Relay(routes)
    await relay.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("relay: " + ", ".join(map(str, routes)), flush=True)
    try:
        await stop.wait()
    finally:
        await relay.close()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        routes = [parse_route(a) for a in args]
        if not routes:
            raise ValueError("give at least one LISTEN_HOST:PORT=UPSTREAM_HOST:PORT")
    except ValueError as exc:
        print(f"relay: error: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(routes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
