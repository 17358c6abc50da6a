"""Junk gets a precise 4xx naming what is wrong, never a 5xx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleetobs.settings import load_settings
from hub.testing import HubHarness


@pytest.mark.asyncio
@pytest.mark.parametrize(("body", "where", "type_"), [
    ({"agent": "Bad Name"}, "body.agent", "string_pattern_mismatch"),
    ({"agent": "x" * 129}, "body.agent", "string_pattern_mismatch"),
    ({"agent": ""}, "body.agent", "string_pattern_mismatch"),
    ({}, "body.agent", "missing"),
    ({"agent": 5}, "body.agent", "string_type"),
    ({"agent": "A", "status": "fine"}, "body.status", "literal_error"),
    ({"agent": "A", "interval_seconds": "30"}, "body.interval_seconds", "float_type"),
    ({"agent": "A", "interval_seconds": 0}, "body.interval_seconds", "greater_than"),
    ({"agent": "A", "interval_seconds": 3601}, "body.interval_seconds", "less_than_equal"),
    ({"agent": "A", "pid": -1}, "body.pid", "greater_than_equal"),
    ({"agent": "A", "pid": 1.5}, "body.pid", "int_type"),
    ({"agent": "A", "container": "a/b"}, "body.container", "string_pattern_mismatch"),
    ({"agent": "A", "details": []}, "body.details", "dict_type"),
    ({"agent": "A", "details": {"blob": "x" * 5000}}, "body.details", "value_error"),
    ({"agent": "A", "colour": "red"}, "body.colour", "extra_forbidden"),
    ([{"agent": "A"}, {"agent": "B", "pid": "7"}], "body[1].pid", "int_type"),
    ([], "body", "too_short"),
    ("just a string", "body", "model_type"),
])
async def test_bad_heartbeat_is_422_naming_the_field(tmp_path: Path, body: Any, where: str,
                                                     type_: str) -> None:
    async with HubHarness.build(tmp_path) as h:
        r = await h.client.post("/v1/heartbeats", json=body)
        assert r.status_code == 422, r.text
        doc = r.json()
        assert doc["message"].startswith(where + ":"), doc["message"]
        assert doc["detail"][0]["type"] == type_
        # Nothing of a refused batch was recorded.
        assert all(a["state"] in ("missing", "up") for a in
                   (await h.client.get("/v1/agents")).json()["agents"])
        assert (await h.client.get("/v1/agents/A")).status_code == 404


@pytest.mark.asyncio
@pytest.mark.parametrize("raw", [b"{bad json", b"", b"[", b"\xff\xfe", b"NaN",
                                 b'{"agent": "A", "interval_seconds": NaN}'])
async def test_malformed_json_is_422(tmp_path: Path, raw: bytes) -> None:
    async with HubHarness.build(tmp_path) as h:
        r = await h.client.post("/v1/heartbeats", content=raw,
                                headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["message"].startswith("body")


@pytest.mark.asyncio
async def test_rejections_are_counted_by_reason(tmp_path: Path) -> None:
    async with HubHarness.build(tmp_path) as h:
        await h.client.post("/v1/heartbeats", content=b"{", headers={"content-type": "application/json"})
        await h.client.post("/v1/heartbeats", json={"agent": "a b"})
        text = (await h.client.get("/metrics")).text
        assert 'fleet_hub_heartbeats_rejected_total{machine="mainpc",reason="invalid"} 2.0' in text


@pytest.mark.asyncio
async def test_body_over_limit_is_413(tmp_path: Path) -> None:
    settings = load_settings({"FLEET_MAX_BODY_BYTES": "2048"})
    async with HubHarness.build(tmp_path, settings=settings) as h:
        big = [{"agent": f"agent{i}"} for i in range(200)]
        r = await h.client.post("/v1/heartbeats", json=big)
        assert r.status_code == 413 and "2048" in r.json()["detail"]
        assert (await h.client.get("/v1/agents/agent0")).status_code == 404
        text = (await h.client.get("/metrics")).text
        assert 'fleet_hub_heartbeats_rejected_total{machine="mainpc",reason="too_large"} 1.0' in text


@pytest.mark.asyncio
async def test_streamed_body_over_limit_is_413(tmp_path: Path) -> None:
    """No Content-Length (chunked): the limit is enforced while reading."""
    settings = load_settings({"FLEET_MAX_BODY_BYTES": "2048"})

    async def chunks() -> Any:
        yield b"["
        for i in range(300):
            yield b'{"agent": "agent%d"},' % i
        yield b'{"agent": "last"}]'

    async with HubHarness.build(tmp_path, settings=settings) as h:
        r = await h.client.post("/v1/heartbeats", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413


@pytest.mark.asyncio
async def test_batch_over_max_items_is_422(tmp_path: Path) -> None:
    async with HubHarness.build(tmp_path) as h:
        r = await h.client.post("/v1/heartbeats", json=[{"agent": "a"}] * 10_001)
        assert r.status_code == 422 and r.json()["detail"][0]["type"] == "too_long"


@pytest.mark.asyncio
@pytest.mark.parametrize(("path", "params"), [
    ("/v1/agents", {"state": "sleepy"}),
    ("/v1/agents", {"machine": "bad name"}),
    ("/v1/agents", {"group": "x" * 200}),
    ("/v1/discover/ok", {"machine": "a b"}),
    ("/v1/sd/prometheus", {"machine": "!"}),
])
async def test_bad_query_is_422(tmp_path: Path, path: str, params: dict[str, str]) -> None:
    async with HubHarness.build(tmp_path) as h:
        r = await h.client.get(path, params=params)
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"][0] == "query"


@pytest.mark.asyncio
async def test_bad_path_name_is_422(tmp_path: Path) -> None:
    async with HubHarness.build(tmp_path) as h:
        r = await h.client.get("/v1/agents/bad%20name")
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "name"]
