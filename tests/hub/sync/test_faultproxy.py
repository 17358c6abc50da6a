"""The fault proxy does what it says, on real loopback sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from hub.sync.faultproxy import FaultProxy


class Echo:
    def __init__(self) -> None:
        self.received = bytearray()
        self.server: asyncio.Server | None = None

    async def handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while data := await r.read(1024):
            self.received += data
            w.write(data.upper())
            await w.drain()
        w.close()


@pytest_asyncio.fixture
async def proxied() -> AsyncIterator[tuple[FaultProxy, Echo]]:
    echo = Echo()
    server = await asyncio.start_server(echo.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = await FaultProxy("127.0.0.1", "127.0.0.1", port).start()
    yield proxy, echo
    await proxy.stop()
    server.close()
    await server.wait_closed()


async def roundtrip(proxy: FaultProxy, data: bytes, timeout: float = 0.3) -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        w.write(data)
        await w.drain()
        return await asyncio.wait_for(r.readexactly(len(data)), timeout)
    finally:
        w.close()


@pytest.mark.asyncio
async def test_passes_bytes_both_ways(proxied: tuple[FaultProxy, Echo]) -> None:
    proxy, _ = proxied
    assert await roundtrip(proxy, b"hello") == b"HELLO"


@pytest.mark.asyncio
async def test_blackhole_swallows_everything_until_healed(proxied: tuple[FaultProxy, Echo]) -> None:
    proxy, echo = proxied
    proxy.blackhole = True
    with pytest.raises(TimeoutError):
        await roundtrip(proxy, b"lost")
    assert echo.received == b""
    proxy.heal()
    assert await roundtrip(proxy, b"back") == b"BACK"


@pytest.mark.asyncio
async def test_one_way_loss_delivers_the_request_but_not_the_reply(
        proxied: tuple[FaultProxy, Echo]) -> None:
    proxy, echo = proxied
    proxy.drop_down = True
    with pytest.raises(TimeoutError):
        await roundtrip(proxy, b"applied")
    assert bytes(echo.received) == b"applied"
    proxy.heal()
    proxy.drop_up = True
    with pytest.raises(TimeoutError):
        await roundtrip(proxy, b"never")
    assert bytes(echo.received) == b"applied"


@pytest.mark.asyncio
async def test_delay_holds_bytes_back(proxied: tuple[FaultProxy, Echo]) -> None:
    proxy, _ = proxied
    proxy.delay_seconds = 0.2
    with pytest.raises(TimeoutError):
        await roundtrip(proxy, b"slow", timeout=0.1)
    assert await roundtrip(proxy, b"slow", timeout=2.0) == b"SLOW"


@pytest.mark.asyncio
async def test_reset_aborts_open_connections_and_refuse_new_ones(
        proxied: tuple[FaultProxy, Echo]) -> None:
    proxy, _ = proxied
    r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
    w.write(b"x")
    await w.drain()
    assert await asyncio.wait_for(r.readexactly(1), 1.0) == b"X"
    proxy.refuse = True
    proxy.reset()
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(r.readexactly(1), 1.0)
    w.close()
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError, TimeoutError)):
        await roundtrip(proxy, b"y")
