"""Issue 13, findings 1 and 2: no probe reply or heartbeat can break the API or persistence.

Finding 1: a probed agent whose health reply holds a lone surrogate escape (which
``json.loads`` accepts) made every agent endpoint answer 500 and stopped the
write-behind flush for good, leaving a transaction open. Finding 2: a heartbeat with
a non-finite number in ``details`` (``1e400``, ``NaN``) broke ``GET /v1/agents`` for
everyone, across restarts.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from fleetobs.settings import load_settings
from fleetobs.simulator.agent import SimAgentSpec
from fleetobs.simulator.fleet import SimulatedFleet
from fleetobs.topology.model import Topology
from hub.probing import ProbingPlugin, probing_plugin
from hub.store import Store, row_of
from hub.testing import HubHarness

#: The tester's reply, byte for byte: valid JSON with a lone surrogate escape.
SURROGATE_REPLY = b'{"status": "degraded", "message": "disk \\ud800 full"}'


def probed_topology() -> Topology:
    return Topology.model_validate({
        "machines": [{"name": "m1", "hub_port": 9000, "address": "m1.lan"},
                     {"name": "m2", "hub_port": 9100, "address": "m2.lan"}],
        "groups": [{"name": "g1", "machine": "m1"}],
        "agents": [
            {"name": "Zed", "machine": "m1", "group": "g1", "port": 10, "health_check_port": 11,
             "probe": "zmq", "heartbeat_interval_seconds": 30},
            {"name": "Hat", "machine": "m1", "group": "g1", "port": 20, "health_check_port": 21,
             "probe": "http", "heartbeat_interval_seconds": 30},
            {"name": "NLUAgent", "machine": "m1", "group": "g1", "port": 30, "health_check_port": 31,
             "probe": "push"},
        ],
    })


@asynccontextmanager
async def probed_hub(tmp_path: Path, reply: bytes) -> AsyncIterator[tuple[HubHarness, ProbingPlugin]]:
    """A hub on m1 probing two real fake agents (ZeroMQ and HTTP) that answer ``reply``."""
    fleet = SimulatedFleet([SimAgentSpec("Zed", "m1", "g1", 0, 0), SimAgentSpec("Hat", "m1", "g1", 0, 0)])
    async with fleet:
        for agent in fleet.agents.values():
            agent.raw_reply = reply
        topology = fleet.topology(probed_topology())
        settings = load_settings({"FLEET_PROBE_TIMEOUT": "1", "FLEET_PROBE_INTERVAL": "3600"})
        async with HubHarness.build(tmp_path, topology=topology, settings=settings, machine="m1",
                                    factories=[probing_plugin]) as h:
            (plugin,) = h.app.state.plugins
            assert isinstance(plugin, ProbingPlugin)
            yield h, plugin


async def read_everything(h: HubHarness) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in ("/v1/agents", "/v1/agents/Zed", "/v1/agents/Hat", "/v1/probes", "/metrics"):
        r = await h.client.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        out[path] = r.json() if path != "/metrics" else r.text
    return out


@pytest.mark.asyncio
async def test_a_lone_surrogate_in_a_probe_reply_breaks_neither_api_nor_persistence(tmp_path: Path) -> None:
    async with probed_hub(tmp_path, SURROGATE_REPLY) as (h, plugin):
        assert await plugin.probe_once() == 2
        seen = await read_everything(h)
        for name in ("Zed", "Hat"):
            view = seen[f"/v1/agents/{name}"]
            assert (view["state"], view["reason"]) == ("degraded", "message: disk \ufffd full")
        probes = {p["agent"]: p for p in seen["/v1/probes"]["probes"]}
        assert probes["Zed"]["reason"] == "message: disk \ufffd full"
        # The write-behind flush goes through, leaves nothing pending and no transaction open.
        assert await h.hub.flush() >= 2
        assert not h.hub.registry.dirty
        assert h.hub.counters.flush_failures == {}
        conn = h.hub.store._conn
        assert conn is not None and not conn.in_transaction
        text = (await h.client.get("/metrics")).text
        assert 'fleet_hub_store_pending_writes{machine="m1"} 0.0' in text
    # What was saved is what was shown, and the shutdown flush had nothing to complain about.
    with sqlite3.connect(tmp_path / "hub-m1.sqlite3") as db:
        saved = dict(db.execute("SELECT name, reason FROM agents WHERE name IN ('Zed', 'Hat')").fetchall())
    assert saved == {"Zed": "message: disk \ufffd full", "Hat": "message: disk \ufffd full"}


def test_store_write_commits_good_rows_skips_unbindable_ones_and_never_stays_in_a_transaction(
        tmp_path: Path) -> None:
    store = Store(tmp_path, "m1")
    store.open()
    good = ("Good", "m1", "expected", "up", "ok", "heartbeat", 10.0, 1.0, 1.0, None, None, None,
            None, None, None)
    bad_text = ("Bad", "m1", "expected", "up", "ok", "heartbeat", 10.0, 1.0, 1.0, "x\ud800", None,
                None, None, None, None)
    bad_int = ("Huge", "m1", "expected", "up", "ok", "heartbeat", 10.0, 1.0, 1.0, None, None,
               2**80, None, None, None)
    report = store.write([good, bad_text, bad_int])
    assert report.written == 1
    assert [name for name, _ in report.skipped] == ["Bad", "Huge"]
    assert store._conn is not None and not store._conn.in_transaction
    assert [r["name"] for r in store.load()] == ["Good"]
    assert store.write([good]).written == 1  # and the next write is fine
    store.close()


@pytest.mark.asyncio
async def test_a_record_a_plugin_filled_with_junk_is_still_saved(tmp_path: Path) -> None:
    async with HubHarness.build(tmp_path) as h:
        await h.client.post("/v1/heartbeats", json=[{"agent": "MemoryClient"}, {"agent": "NLUAgent"}])
        rec = h.hub.registry.get("MemoryClient")
        assert rec is not None
        # What a buggy plugin could put in a record: all of it must still be storable.
        rec.details = {"n": float("nan"), "obj": object(), "s": "a\ud800b\x00"}
        rec.reason = "lone \udfff"
        row = row_of(rec)
        assert json.loads(row[-1]) == {"n": None, "obj": None, "s": "a\ufffdb\ufffd"}
        assert row[9] == "lone \ufffd"
        assert await h.hub.flush() >= 2
        assert not h.hub.registry.dirty and not h.hub.counters.flush_failures
        assert (await h.client.get("/v1/agents")).status_code == 200


@pytest.mark.asyncio
@pytest.mark.parametrize("literal", ["1e400", "-1e400", "NaN", "Infinity"])
async def test_non_finite_numbers_in_details_are_refused_with_the_field_named(
        tmp_path: Path, literal: str) -> None:
    async with HubHarness.build(tmp_path) as h:
        body = f'{{"agent":"NLUAgent","details":{{"deep":[1,{{"n":{literal}}}]}}}}'.encode()
        r = await h.client.post("/v1/heartbeats", content=body,
                                headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["message"] == "body.details: Value error, details.deep[1].n is not a finite number"
        assert (await h.client.get("/v1/agents")).status_code == 200
        assert (await h.client.get("/v1/agents/NLUAgent")).status_code == 200


@pytest.mark.asyncio
async def test_nul_in_heartbeat_text_is_normalised_not_stored_raw(tmp_path: Path) -> None:
    async with HubHarness.build(tmp_path) as h:
        r = await h.client.post("/v1/heartbeats", json={
            "agent": "NLUAgent", "status": "degraded", "reason": "a\x00b", "version": "1\x00",
            "details": {"k\x00": "v\x00"}})
        assert r.status_code == 200, r.text
        view = (await h.client.get("/v1/agents/NLUAgent")).json()
        assert (view["reason"], view["version"], view["details"]) == ("a\ufffdb", "1\ufffd", {"k\ufffd": "v\ufffd"})


@pytest.mark.asyncio
async def test_a_non_finite_value_persisted_by_an_older_hub_does_not_survive_a_restart(tmp_path: Path) -> None:
    # The state an older hub left after accepting {"details": {"n": 1e400}}: json.dumps
    # wrote it as Infinity, which json.loads reads back as inf.
    async with HubHarness.build(tmp_path) as h:
        await h.client.post("/v1/heartbeats", json={"agent": "NLUAgent"})
        await h.hub.flush()
    with sqlite3.connect(tmp_path / "hub-mainpc.sqlite3") as db:
        db.execute("UPDATE agents SET details = ?, reason = ? WHERE name = 'NLUAgent'",
                   ('{"n": Infinity, "m": NaN, "s": "\\ud800"}', "ok\x00"))
    async with HubHarness.build(tmp_path) as h:
        r = await h.client.get("/v1/agents")
        assert r.status_code == 200
        view = (await h.client.get("/v1/agents/NLUAgent")).json()
        assert view["details"] == {"n": None, "m": None, "s": "\ufffd"}
        assert view["reason"] == "ok\ufffd"
