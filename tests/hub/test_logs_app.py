"""POST /v1/logs through the real hub app (create_app): auth, metrics, drain on stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loguru import logger

from fleetobs.settings import load_settings
from fleetobs.testing.loki import LokiStandIn
from hub.app import plugin_factories
from hub.logs import logs_plugin
from hub.service import HubConfig
from hub.testing import HubHarness


def test_the_plugin_is_registered() -> None:
    assert logs_plugin in plugin_factories()


@pytest.mark.asyncio
async def test_logs_ship_through_the_real_app_and_drain_on_stop(tmp_path: Path) -> None:
    with LokiStandIn() as loki:
        settings = load_settings({"FLEET_LOKI_URL": loki.url, "FLEET_DATA_DIR": str(tmp_path),
                                  "FLEET_TOKEN": "tok"})
        async with HubHarness.build(tmp_path, settings=settings, factories=[logs_plugin],
                                    headers={"Authorization": "Bearer tok"}) as h:
            r = await h.client.post("/v1/logs", json=[
                {"agent": "MemoryClient", "level": "info", "message": "stored 3 memories",
                 "fields": {"count": 3}},
                {"agent": "MemoryClient", "level": "error", "message": "redis gone"}])
            assert r.status_code == 202, r.text
            assert r.json() == {"accepted": 2, "dropped": 0}
            denied = await h.client.post("/v1/logs", json=[], headers={"Authorization": "Bearer no"})
            assert denied.status_code == 401
            junk = await h.client.post("/v1/logs", content=b"[{",
                                       headers={"Content-Type": "application/json"})
            assert junk.status_code == 400
            logger.info("a line the hub process logs with loguru")
        # Leaving the app stopped the plugin, which drained the shipper: no waiting here.
        agent_lines = [(s.label_dict, json.loads(s.line)) for s in loki.stored
                       if s.label_dict["source"] == "agent"]
        assert agent_lines == [
            ({"machine": "mainpc", "group": "memory_stack", "agent": "MemoryClient", "source": "agent"},
             {"level": "info", "msg": "stored 3 memories", "count": 3}),
            ({"machine": "mainpc", "group": "memory_stack", "agent": "MemoryClient", "source": "agent"},
             {"level": "error", "msg": "redis gone"}),
        ]
        # The hub's own loguru logs went the same way, labelled as the hub.
        hub_lines = [json.loads(s.line)["msg"] for s in loki.stored if s.label_dict["source"] == "hub"]
        assert "a line the hub process logs with loguru" in hub_lines


@pytest.mark.asyncio
async def test_shipper_metrics_are_on_the_hubs_metrics_endpoint(tmp_path: Path) -> None:
    with LokiStandIn() as loki:
        loki.down()
        settings = load_settings({"FLEET_LOKI_URL": loki.url, "FLEET_DATA_DIR": str(tmp_path)})
        # Loki stays down, so stopping spends its whole (short) deadline retrying.
        config = HubConfig(background=False, stop_deadline_seconds=0.3)
        async with HubHarness.build(tmp_path, settings=settings, factories=[logs_plugin],
                                    config=config) as h:
            await h.client.post("/v1/logs", json=[
                {"agent": "MemoryClient", "level": "info", "message": "m"}])
            text = (await h.client.get("/metrics")).text
    assert "fleet_log_buffer_lines" in text
    assert "fleet_log_spool_bytes" in text
    assert "fleet_log_lines_sent_total 0.0" in text


@pytest.mark.asyncio
async def test_without_loki_the_route_says_lines_would_be_lost(tmp_path: Path) -> None:
    settings = load_settings({"FLEET_DATA_DIR": str(tmp_path)})
    async with HubHarness.build(tmp_path, settings=settings, factories=[logs_plugin]) as h:
        r = await h.client.post("/v1/logs", json=[{"agent": "MemoryClient", "level": "info", "message": "x"}])
    assert r.status_code == 404
    assert "FLEET_LOKI_URL is not set" in r.json()["detail"]
