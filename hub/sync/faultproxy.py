"""A fault-injecting TCP proxy (asyncio) for tests and benchmarks of real hubs.

Put one between two hubs: ``FaultProxy(listen_host, target_host, target_port)``;
the peer's URL is then the proxy's. Faults, switchable at any time:

* ``blackhole``: connections are accepted, bytes in both directions vanish (a
  partition: requests hang until the client's timeout);
* ``drop_up`` / ``drop_down``: one-way loss, client->server or server->client only
  (with ``drop_down`` a request arrives and is applied, its reply never comes back);
* ``delay_seconds``: every chunk is forwarded that much later (a slow WAN link);
* :meth:`reset`: every open connection is aborted with an RST, and with
  ``refuse`` new ones are too.

Loopback only; it reads and writes bytes, it does not parse HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct


class FaultProxy:
    def __init__(self, listen_host: str, target_host: str, target_port: int) -> None:
        self.listen_host = listen_host
        self.target_host = target_host
        self.target_port = target_port
        self.blackhole = False
        self.drop_up = False
        self.drop_down = False
        self.refuse = False
        self.delay_seconds = 0.0
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.listen_host}:{self.port}"

    def heal(self) -> None:
        self.blackhole = self.drop_up = self.drop_down = self.refuse = False
        self.delay_seconds = 0.0

    async def start(self, port: int = 0) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, self.listen_host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening, abort every connection, wait for every handler; idempotent."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.reset()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # Let the aborted transports finish closing their sockets on this loop.
        await asyncio.sleep(0)

    def reset(self) -> None:
        """Abort every open connection with an RST (both sides see 'connection reset')."""
        for writer in list(self._open):
            _abort(writer)
        self._open.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        if me is not None:
            self._tasks.add(me)
        if self.refuse:
            _abort(writer)
            return
        self.connections += 1
        self._open.add(writer)
        ours: list[asyncio.StreamWriter] = [writer]
        pipes: list[asyncio.Task[None]] = []
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
            ours.append(up_writer)
            self._open.add(up_writer)
            pipes = [asyncio.create_task(self._pipe(reader, up_writer, upstream=True)),
                     asyncio.create_task(self._pipe(up_reader, writer, upstream=False))]
            await asyncio.gather(*pipes, return_exceptions=True)
        except (OSError, asyncio.CancelledError):
            # Target down, or stopping: end quietly (asyncio logs a failed handler as an error).
            for p in pipes:
                p.cancel()
        finally:
            for w in ours:
                self._open.discard(w)
                _abort(w)
            if me is not None:
                self._tasks.discard(me)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    *, upstream: bool) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if self.blackhole or (self.drop_up if upstream else self.drop_down):
                    continue  # the bytes vanish
                if self.delay_seconds > 0:
                    await asyncio.sleep(self.delay_seconds)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # Half-close so the other side sees EOF; a full abort is reset()'s job.
            with contextlib.suppress(Exception):
                if writer.can_write_eof():
                    writer.write_eof()


def _abort(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            # SO_LINGER 0: close() sends an RST instead of a FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
