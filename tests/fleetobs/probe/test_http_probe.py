"""HTTP probes against real servers on 127.0.0.1 (simulated agents and hand-made answers)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from fleetobs.probe.http_probe import HttpProber
from fleetobs.probe.result import Outcome, ProbeResult, Protocol
from fleetobs.simulator.agent import SimAgentSpec
from fleetobs.simulator.behaviour import Behaviour
from fleetobs.simulator.fleet import SimulatedFleet
from fleetobs.simulator.http_server import HttpServer, Response

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def answering(response: Response) -> AsyncIterator[int]:
    """A server that answers every request with ``response`` (None: hangs)."""

    async def handler(method: str, path: str) -> Response:
        return response

    server = HttpServer(handler)
    port = free_port()
    await server.start(HOST, port)
    try:
        yield port
    finally:
        await server.close()


async def probe(port: int, timeout: float = 2.0) -> ProbeResult:
    prober = HttpProber()
    try:
        return await prober.probe(HOST, port, timeout)
    finally:
        await prober.aclose()


async def probe_agent(behaviour: Behaviour, timeout: float = 2.0) -> ProbeResult:
    async with SimulatedFleet([SimAgentSpec("A", "m", None, 0, 0, behaviour)]) as fleet:
        return await probe(fleet.agent("A").http_port, timeout)


@pytest.mark.asyncio
async def test_ok() -> None:
    r = await probe_agent(Behaviour.OK)
    assert r.outcome is Outcome.OK and r.protocol is Protocol.HTTP
    assert r.endpoint.endswith("/health") and r.latency_seconds is not None


@pytest.mark.asyncio
async def test_http_200_saying_degraded_is_degraded() -> None:
    r = await probe_agent(Behaviour.DEGRADED)
    assert (r.outcome, r.reason) == (Outcome.DEGRADED, "health_checks.ready_signal=false")


@pytest.mark.asyncio
async def test_http_200_saying_error_is_error() -> None:
    assert (await probe_agent(Behaviour.ERROR)).outcome is Outcome.ERROR


@pytest.mark.asyncio
async def test_http_500_is_error_whatever_the_body() -> None:
    async with answering((500, "application/json", b'{"status": "ok"}')) as port:
        r = await probe(port)
    assert r.outcome is Outcome.ERROR
    assert r.reason == "HTTP 500 (body says 'ok')"


@pytest.mark.asyncio
async def test_http_404_is_error() -> None:
    async with answering((404, "text/plain", b"nope")) as port:
        r = await probe(port)
    assert (r.outcome, r.reason) == (Outcome.ERROR, "HTTP 404")


@pytest.mark.asyncio
async def test_http_200_with_invalid_json_is_an_invalid_reply() -> None:
    async with answering((200, "application/json", b"{not json")) as port:
        r = await probe(port)
    assert r.outcome is Outcome.INVALID_REPLY and r.status == "error"


@pytest.mark.asyncio
async def test_garbage_agent_is_an_invalid_reply() -> None:
    assert (await probe_agent(Behaviour.GARBAGE)).outcome is Outcome.INVALID_REPLY


@pytest.mark.asyncio
async def test_hanging_server_times_out() -> None:
    async with answering(None) as port:
        r = await probe(port, timeout=0.2)
    assert r.outcome is Outcome.TIMEOUT and not r.answered


@pytest.mark.asyncio
async def test_silent_agent_times_out() -> None:
    assert (await probe_agent(Behaviour.SILENT, timeout=0.2)).outcome is Outcome.TIMEOUT


@pytest.mark.asyncio
async def test_connection_refused() -> None:
    r = await probe(free_port())
    assert (r.outcome, r.reason) == (Outcome.REFUSED, "connection refused")


@pytest.mark.asyncio
async def test_oversized_body_is_refused_not_buffered() -> None:
    async with answering((200, "application/json", b" " * 200_000)) as port:
        r = await probe(port)
    assert r.outcome is Outcome.INVALID_REPLY
    assert r.reason is not None and "larger than" in r.reason


@pytest.mark.asyncio
async def test_one_prober_serves_many_probes_concurrently() -> None:
    specs = [SimAgentSpec(f"A{i}", "m", None, 0, 0) for i in range(8)]
    async with SimulatedFleet(specs) as fleet:
        prober = HttpProber(max_connections=4)
        try:
            results = await asyncio.gather(
                *(prober.probe(HOST, a.http_port, 2.0) for a in fleet.agents.values()))
        finally:
            await prober.aclose()
            await prober.aclose()  # idempotent
    assert {r.outcome for r in results} == {Outcome.OK}


@pytest.mark.asyncio
async def test_reply_after_the_timeout_then_the_next_probe_works() -> None:
    spec = SimAgentSpec("A", "m", None, 0, 0, Behaviour.SLOW, slow_seconds=0.4)
    async with SimulatedFleet([spec]) as fleet:
        agent = fleet.agent("A")
        prober = HttpProber()
        try:
            late = await prober.probe(HOST, agent.http_port, 0.1)
            await asyncio.sleep(0.4)
            agent.behaviour = Behaviour.OK
            again = await prober.probe(HOST, agent.http_port, 2.0)
        finally:
            await prober.aclose()
    assert late.outcome is Outcome.TIMEOUT
    assert again.outcome is Outcome.OK and again.health["status"] == "ok"
