"""The sync routes over HTTP: a real uvicorn server on 127.0.0.1 and the httpx transport."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI

from hub.sync.api import sync_router
from hub.sync.engine import SyncEngine
from hub.sync.peer import SyncConfig
from hub.sync.peers import Peer
from hub.sync.records import AgentFacts
from hub.sync.transport import HttpxTransport, TransportError
from hub.testing import FakeClock

TOKEN = "tok"


def engine(machine: str, clock: FakeClock, peers: tuple[Peer, ...] = (),
           token: str | None = TOKEN) -> SyncEngine:
    return SyncEngine(machine, 5, clock=clock.monotonic, transport=HttpxTransport(2.0),
                      peers=peers, token=token, config=SyncConfig(),
                      known_machines=["mainpc", "pc2"])


@contextlib.asynccontextmanager
async def serve(eng: SyncEngine) -> AsyncIterator[str]:
    app = FastAPI()
    app.include_router(sync_router(eng, lambda: Counter({"up": 3}), lambda: {"mainpc": 3, "pc2": 2}))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error",
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest_asyncio.fixture
async def pc2() -> AsyncIterator[tuple[SyncEngine, str, FakeClock]]:
    clock = FakeClock()
    eng = engine("pc2", clock)
    async with serve(eng) as url:
        yield eng, url, clock
    await eng.stop(1.0)


@pytest.mark.asyncio
async def test_a_hub_syncs_to_a_real_http_peer(pc2: tuple[SyncEngine, str, FakeClock]) -> None:
    receiver, url, clock = pc2
    sender = engine("mainpc", clock, peers=(Peer("pc2", url),))
    sender.put(AgentFacts(name="a", machine="mainpc", state="down", interval_seconds=5.0),
               clock.monotonic() - 2.0)
    try:
        assert await sender.links[0].step() == "reconcile"
        assert sender.links[0].ok and sender.links[0].peer is not None
        # pc2 has sent nothing back (it has no peers here): the link is not up both ways
        assert not sender.peer_up(sender.links[0])
        (agent,) = receiver.peer_agents()
        assert (agent.facts.name, agent.state, agent.age_seconds) == ("a", "down", 2.0)
        sender.put(AgentFacts(name="a", machine="mainpc", state="up", interval_seconds=5.0),
                   clock.monotonic())
        clock.advance(0.3)
        assert await sender.links[0].step() == "push"
        assert receiver.peer_agents()[0].state == "up"
        assert sender.links[0].stats.bytes_sent > 0
        assert receiver.server.stats.bytes_received["mainpc"] > 0
    finally:
        await sender.stop(1.0)


@pytest.mark.asyncio
async def test_http_rejects_wrong_token_junk_and_oversized_bodies(
        pc2: tuple[SyncEngine, str, FakeClock]) -> None:
    receiver, url, _ = pc2
    good = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.post("/v1/sync/push", content=b"{}", headers={"authorization": "Bearer no"})
        assert r.status_code == 401
        r = await client.post("/v1/sync/push", content=b"{not json", headers=good)
        assert r.status_code == 422 and r.json()["detail"]
        r = await client.post("/v1/sync/reconcile", json={"sender": 1}, headers=good)
        assert r.status_code == 422
        big = b"x" * (receiver.server.max_body_bytes + 1)
        r = await client.post("/v1/sync/push", content=big, headers=good)
        assert r.status_code == 413

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: streamed
            for _ in range(5):
                yield b"y" * (receiver.server.max_body_bytes // 4)

        r = await client.post("/v1/sync/push", content=chunks(), headers=good)
        assert r.status_code == 413
    assert receiver.fleet.owners == {}
    assert receiver.server.stats.rejected == {"unauthorized": 1, "invalid": 2, "too_large": 2}


@pytest.mark.asyncio
async def test_fleet_summary_lists_every_machine(pc2: tuple[SyncEngine, str, FakeClock]) -> None:
    _, url, _ = pc2
    async with httpx.AsyncClient(base_url=url) as client:
        body = (await client.get("/v1/fleet")).json()
    assert body["machine"] == "pc2"
    by = {m["machine"]: m for m in body["machines"]}
    assert by["pc2"]["counts"] == {"up": 3} and by["pc2"]["local"]
    # never heard from: its topology agents are all unknown, not down
    assert by["mainpc"]["counts"] == {"unknown": 3} and not by["mainpc"]["fresh"]


@pytest.mark.asyncio
async def test_httpx_transport_names_the_failure() -> None:
    t = HttpxTransport(0.5)
    try:
        with pytest.raises(TransportError) as err:
            await t.post("http://127.0.0.1:1", "/v1/sync/push", b"{}", {})
        assert err.value.reason == "connect"
    finally:
        await t.aclose()


def test_openapi_documents_the_sync_bodies() -> None:
    clock = FakeClock()
    app = FastAPI()
    app.include_router(sync_router(engine("pc2", clock), Counter, dict))
    schema = app.openapi()
    push = schema["paths"]["/v1/sync/push"]["post"]
    assert "PushRequest" in json.dumps(push["requestBody"]) or "sender" in json.dumps(push["requestBody"])
    assert "/v1/fleet" in schema["paths"]
