"""POST /v1/logs (the logs plugin) against a minimal HubContext and the Loki stand-in."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from loguru import logger

from fleetobs.logs.shipper import LogShipper, ShipperConfig
from fleetobs.settings import FleetSettings, load_settings
from fleetobs.testing.loki import LokiStandIn
from fleetobs.topology.load import load_topology
from fleetobs.topology.model import Agent, Topology
from fleetobs.tracing import DISABLED as TRACING_DISABLED
from hub.logs import DisabledLogsPlugin, LogsPlugin, logs_plugin
from hub.observation import Observation

TOPOLOGY = load_topology(None)
WALL = float(int(time.time()))  # the plugin's injected wall clock (a whole second)
A_MINUTE_AGO = datetime.fromtimestamp(WALL - 60, UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class FakeHub:
    """Just what a plugin may use (hub/plugins.py HubContext)."""

    settings: FleetSettings
    topology: Topology = TOPOLOGY
    machine: str = "mainpc"
    observations: list[Observation] = field(default_factory=list)

    def now(self) -> float:
        return 0.0

    def record(self, obs: Observation) -> None:
        self.observations.append(obs)

    def address_of(self, agent: Agent) -> str:
        return "127.0.0.1"

    tracing = TRACING_DISABLED


@dataclass
class Intake:
    plugin: LogsPlugin
    client: httpx.AsyncClient
    loki: LokiStandIn

    def stored(self) -> list[tuple[dict[str, str], dict[str, Any], int]]:
        assert self.plugin.shipper.wait_idle(5)
        return [(s.label_dict, json.loads(s.line), s.ts_ns) for s in self.loki.stored]


def make_plugin(ctx: FakeHub, loki: LokiStandIn, **config: Any) -> LogsPlugin:
    cfg = ShipperConfig(loki.url, batch_wait_seconds=0.01, min_backoff_seconds=0.01,
                        max_backoff_seconds=0.05, **config)
    return LogsPlugin(ctx, LogShipper(cfg), wall_clock=lambda: WALL, logger=logger)


@pytest_asyncio.fixture
async def intake(tmp_path: Path) -> AsyncIterator[Intake]:
    settings = load_settings({"FLEET_TOKEN": "s3cret", "FLEET_LOKI_URL": "set below"})
    with LokiStandIn() as loki:
        plugin = make_plugin(FakeHub(settings), loki)
        app = FastAPI()
        router = plugin.router()
        assert router is not None
        app.include_router(router)
        await plugin.start()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub",
                                     headers={"Authorization": "Bearer s3cret"}) as client:
            yield Intake(plugin, client, loki)
        await plugin.stop(2.0)


@pytest.mark.asyncio
async def test_entries_ship_with_the_agents_machine_and_group(intake: Intake) -> None:
    r = await intake.client.post("/v1/logs", json=[
        {"agent": "ServiceRegistry", "level": "WARNING", "message": "slow lookup",
         "timestamp": A_MINUTE_AGO + ".250Z", "fields": {"ms": 830, "key": "tts"}},
        {"agent": "MemoryOrchestratorService", "level": "error", "message": "oom",
         "timestamp": WALL - 5},
        {"agent": "ServiceRegistry", "level": "info", "message": "no timestamp"},
    ])
    assert r.status_code == 202 and r.json() == {"accepted": 3, "dropped": 0}
    stored = intake.stored()
    labels = [s[0] for s in stored]
    assert {"machine": "mainpc", "group": "core_platform", "agent": "ServiceRegistry",
            "source": "agent"} in labels
    assert {"machine": "pc2", "group": "memory_reasoning_gpu",
            "agent": "MemoryOrchestratorService", "source": "agent"} in labels
    by_msg = {line["msg"]: (line, ts) for _, line, ts in stored}
    slow, ts = by_msg["slow lookup"]
    assert slow == {"level": "warning", "msg": "slow lookup", "ms": 830, "key": "tts"}
    assert ts == int(WALL - 60) * 10**9 + 250_000_000  # RFC 3339, to the nanosecond
    assert by_msg["oom"][1] == int((WALL - 5) * 1e9)  # epoch seconds
    assert by_msg["no timestamp"][1] == int(WALL * 1e9)  # the time of receipt


@pytest.mark.asyncio
async def test_machine_disambiguates_an_agent_present_on_both(intake: Intake) -> None:
    r = await intake.client.post("/v1/logs", json=[
        {"agent": "ObservabilityHub", "machine": "pc2", "level": "info", "message": "from pc2"},
        {"agent": "ObservabilityHub", "level": "info", "message": "default: this machine"}])
    assert r.status_code == 202
    machines = {line["msg"]: labels["machine"] for labels, line, _ in intake.stored()
                if labels["source"] == "agent"}
    assert machines == {"from pc2": "pc2", "default: this machine": "mainpc"}


@pytest.mark.asyncio
@pytest.mark.parametrize(("body", "status", "says"), [
    (b"not json", 400, "not JSON"),
    (b'{"agent": "ServiceRegistry"}', 422, "JSON array"),
    (b'[42]', 422, "[0]: each entry must be an object"),
    (b'[{"agent": "Nobody", "level": "info", "message": "m"}]', 422, "'Nobody' is not an agent"),
    (b'[{"agent": "ServiceRegistry", "machine": "pc3", "level": "info", "message": "m"}]', 422,
     "[0].machine"),
    (b'[{"agent": "ServiceRegistry", "machine": "pc2", "level": "info", "message": "m"}]', 422,
     "on pc2"),
    (b'[{"agent": "bad name!", "level": "info", "message": "m"}]', 422, "[0].agent"),
    (b'[{"agent": "ServiceRegistry", "level": "loud", "message": "m"}]', 422, "[0].level"),
    (b'[{"agent": "ServiceRegistry", "level": "info"}]', 422, "[0].message: required"),
    (b'[{"agent": "ServiceRegistry", "level": "info", "message": 5}]', 422, "[0].message"),
    (b'[{"agent": "ServiceRegistry", "level": "info", "message": "m", "extra": 1}]', 422,
     "unknown keys ['extra']"),
    (b'[{"agent": "ServiceRegistry", "level": "info", "message": "m", "timestamp": "yesterday"}]',
     422, "not RFC 3339"),
    (b'[{"agent": "ServiceRegistry", "level": "info", "message": "m",'
     b' "timestamp": "2026-01-15T08:00:00"}]', 422, "no time zone"),
    (b'[{"agent": "ServiceRegistry", "level": "info", "message": "m", "timestamp": true}]', 422,
     "not a boolean"),
    (b'[{"agent": "ServiceRegistry", "level": "info", "message": "m", "timestamp": 1000}]', 422,
     "older than Loki accepts"),
    (b'[{"agent": "ServiceRegistry", "level": "info", "message": "m", "timestamp": 4000000000}]',
     422, "in the future"),
    (b'[{"agent": "ServiceRegistry", "level": "info", "message": "m", "fields": [1]}]', 422,
     "[0].fields: an object"),
    (b'[{"agent": "ServiceRegistry", "level": "info", "message": "m", "fields": {"a b": 1}}]', 422,
     "[0].fields.a b"),
    (b'[{"agent": "ServiceRegistry", "level": "info", "message": "m", "fields": {"k": {"x": 1}}}]',
     422, "[0].fields.k: values are"),
    (b'[{"agent": "ServiceRegistry", "level": "info", "message": "m", "fields": {"k": NaN}}]', 422,
     "[0].fields.k"),
])
async def test_junk_gets_a_precise_4xx_and_nothing_ships(
        intake: Intake, body: bytes, status: int, says: str) -> None:
    r = await intake.client.post("/v1/logs", content=body,
                                 headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert says in json.dumps(r.json()["detail"])
    assert intake.stored() == [] or all(s[0]["source"] == "hub" for s in intake.stored())


@pytest.mark.asyncio
async def test_one_bad_entry_rejects_the_request_and_names_every_problem(intake: Intake) -> None:
    r = await intake.client.post("/v1/logs", json=[
        {"agent": "ServiceRegistry", "level": "info", "message": "ok"},
        {"agent": "ServiceRegistry", "level": "nope", "message": "m"},
        {"agent": "Ghost", "level": "info", "message": "m"}])
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert len(detail) == 2 and detail[0].startswith("[1].level") and detail[1].startswith("[2].agent")
    assert [s for s in intake.stored() if s[0]["source"] == "agent"] == []


@pytest.mark.asyncio
async def test_size_limits_are_413(intake: Intake) -> None:
    lim = intake.plugin.limits
    too_many = [{"agent": "ServiceRegistry", "level": "info", "message": "m"}] * (lim.max_entries + 1)
    r = await intake.client.post("/v1/logs", json=too_many)
    assert r.status_code == 413 and "at most 5000" in r.text
    huge = b"[" + b" " * lim.max_body_bytes + b"]"
    r = await intake.client.post("/v1/logs", content=huge, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    long_msg = [{"agent": "ServiceRegistry", "level": "info", "message": "x" * (lim.max_message_chars + 1)}]
    r = await intake.client.post("/v1/logs", json=long_msg)
    assert r.status_code == 422 and "[0].message" in r.text


@pytest.mark.asyncio
@pytest.mark.parametrize("authorization", ["Bearer wrong", "s3cret", "Basic czNjcmV0", None])
async def test_writes_need_the_fleet_token(intake: Intake, authorization: str | None) -> None:
    entry = [{"agent": "ServiceRegistry", "level": "info", "message": "m"}]
    request = intake.client.build_request("POST", "/v1/logs", json=entry)
    if authorization is None:
        del request.headers["Authorization"]
    else:
        request.headers["Authorization"] = authorization
    r = await intake.client.send(request)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert [s for s in intake.stored() if s[0]["source"] == "agent"] == []


@pytest.mark.asyncio
async def test_the_hubs_own_loguru_logs_ship_as_source_hub(intake: Intake) -> None:
    logger.info("hub says hello {}", 1)
    logger.bind(loki_skip=True).warning("local only")
    hub_lines = [(labels, line) for labels, line, _ in intake.stored() if labels["source"] == "hub"]
    assert [line["msg"] for _, line in hub_lines] == ["hub says hello 1"]
    expected_group = next(a.group for a in TOPOLOGY.agents_on("mainpc") if a.name == "ObservabilityHub")
    assert hub_lines[0][0] == {k: v for k, v in {
        "machine": "mainpc", "group": expected_group, "agent": "ObservabilityHub",
        "source": "hub"}.items() if v is not None}


@pytest.mark.asyncio
async def test_lines_a_full_buffer_refuses_are_reported_in_the_answer() -> None:
    with LokiStandIn() as loki:
        loki.down()  # nothing leaves the buffer
        plugin = make_plugin(FakeHub(load_settings({})), loki, buffer_max_lines=3)
        app = FastAPI()
        router = plugin.router()
        assert router is not None
        app.include_router(router)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://hub") as client:
            errors = [{"agent": "ServiceRegistry", "level": "error", "message": f"e{i}"} for i in range(3)]
            debug = [{"agent": "ServiceRegistry", "level": "debug", "message": f"d{i}"} for i in range(2)]
            r1 = await client.post("/v1/logs", json=errors)
            r2 = await client.post("/v1/logs", json=debug)
        assert r1.json() == {"accepted": 3, "dropped": 0}
        assert r2.json() == {"accepted": 0, "dropped": 2}  # less severe than all buffered
        assert plugin.shipper.dropped() == {"buffer_full": 2}
        await plugin.stop(0.1)
        await plugin.stop(0.1)  # idempotent


def test_factory_is_off_without_a_loki_url(tmp_path: Path) -> None:
    assert isinstance(logs_plugin(FakeHub(load_settings({}))), DisabledLogsPlugin)
    on = logs_plugin(FakeHub(load_settings({"FLEET_LOKI_URL": "http://127.0.0.1:9",
                                            "FLEET_DATA_DIR": str(tmp_path)})))
    assert isinstance(on, LogsPlugin)
    assert on.shipper.config.spool_dir == tmp_path / "loki-spool" / "hub-mainpc"
    assert on.limits.max_body_bytes == load_settings({}).max_body_bytes
