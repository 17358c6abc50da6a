"""FLEET_TOKEN guards writes, FLEET_READ_TOKEN reads; /health and /ready stay open."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetobs.settings import load_settings
from hub.api.auth import token_ok
from hub.testing import HubHarness

BEAT = {"agent": "MemoryClient"}


@pytest.mark.asyncio
async def test_no_tokens_everything_open(tmp_path: Path) -> None:
    async with HubHarness.build(tmp_path) as h:
        assert (await h.client.post("/v1/heartbeats", json=BEAT)).status_code == 200
        assert (await h.client.get("/v1/agents")).status_code == 200


@pytest.mark.asyncio
async def test_write_token_required_for_writes_only(tmp_path: Path) -> None:
    settings = load_settings({"FLEET_TOKEN": "s3cret"})
    async with HubHarness.build(tmp_path, settings=settings) as h:
        r = await h.client.post("/v1/heartbeats", json=BEAT)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        for bad in ("Bearer wrong", "Basic s3cret", "s3cret", "Bearer ", "Bearer s3cret2"):
            r = await h.client.post("/v1/heartbeats", json=BEAT, headers={"Authorization": bad})
            assert r.status_code == 401, bad
        assert (await h.client.get("/v1/agents/MemoryClient")).json()["state"] == "missing"
        r = await h.client.post("/v1/heartbeats", json=BEAT,
                                headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200
        # Reads stay open without FLEET_READ_TOKEN.
        assert (await h.client.get("/v1/agents/MemoryClient")).json()["state"] == "up"
        assert (await h.client.get("/metrics")).status_code == 200
        text = (await h.client.get("/metrics")).text
        assert 'fleet_hub_heartbeats_rejected_total{machine="mainpc",reason="unauthorized"} 6.0' in text


@pytest.mark.asyncio
async def test_auth_is_checked_before_the_body(tmp_path: Path) -> None:
    """An unauthenticated sender learns nothing about validation."""
    settings = load_settings({"FLEET_TOKEN": "s3cret"})
    async with HubHarness.build(tmp_path, settings=settings) as h:
        assert (await h.client.post("/v1/heartbeats", content=b"{junk")).status_code == 401


@pytest.mark.asyncio
async def test_read_token_guards_reads_and_metrics_not_health(tmp_path: Path) -> None:
    settings = load_settings({"FLEET_TOKEN": "w", "FLEET_READ_TOKEN": "r"})
    async with HubHarness.build(tmp_path, settings=settings) as h:
        for path in ("/v1/agents", "/v1/agents/MemoryClient", "/v1/discover/MemoryClient",
                     "/v1/sd/prometheus", "/metrics"):
            assert (await h.client.get(path)).status_code == 401, path
            ok = await h.client.get(path, headers={"Authorization": "Bearer r"})
            assert ok.status_code == 200, path
            # The write token is not a read token.
            assert (await h.client.get(path, headers={"Authorization": "Bearer w"})).status_code == 401
        assert (await h.client.get("/health")).status_code == 200
        assert (await h.client.get("/ready")).status_code == 200
        r = await h.client.post("/v1/heartbeats", json=BEAT, headers={"Authorization": "Bearer r"})
        assert r.status_code == 401


@pytest.mark.parametrize(("header", "ok"), [
    ("Bearer tok", True), ("bearer tok", True), ("Bearer  tok ", True),
    ("Bearer tok2", False), ("Bearer to", False), (None, False), ("", False), ("tok", False),
    ("Bearer tök", False),
])
def test_token_ok(header: str | None, ok: bool) -> None:
    assert token_ok(header, "tok") is ok
