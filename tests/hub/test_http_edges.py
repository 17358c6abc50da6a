"""Issue 13, finding 8: the loose HTTP edges, each closed.

Content-Type on writes (a web page could post heartbeats to a tokenless hub), HTTP/1.1
without Host, agent names that are path segments (``.``, ``..``, ``-``), an empty
``FLEET_TOKEN`` meaning open writes, ``/openapi.json`` and ``/docs`` open under a read
token, and the schema mismatches (integers sent as ``7613.0``, undocumented 400/413).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleetobs.settings import SettingsError, load_settings
from fleetobs.testing.live_hub import serve_app
from fleetobs.topology.load import load_topology
from hub.app import create_app
from hub.logs import logs_plugin
from hub.service import HubConfig
from hub.sync.plugin import sync_plugin
from hub.testing import HubHarness

JSON = {"content-type": "application/json"}


@pytest.mark.asyncio
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/jsonx"])
async def test_writes_that_are_not_json_get_415(tmp_path: Path, content_type: str | None) -> None:
    async with HubHarness.build(tmp_path) as h:
        headers = {"content-type": content_type} if content_type else {}
        r = await h.client.post("/v1/heartbeats", content=b'{"agent": "NLUAgent"}', headers=headers)
        assert r.status_code == 415, r.text
        assert "application/json" in r.json()["detail"]
        assert (await h.client.get("/v1/agents/NLUAgent")).json()["state"] == "missing"
        for ok in ("application/json", "application/json; charset=utf-8", "Application/JSON"):
            r = await h.client.post("/v1/heartbeats", content=b'{"agent": "NLUAgent"}',
                                    headers={"content-type": ok})
            assert r.status_code == 200, (ok, r.text)


@pytest.mark.asyncio
async def test_415_applies_to_plugin_writes_and_comes_after_the_token_check(tmp_path: Path) -> None:
    settings = load_settings({"FLEET_TOKEN": "t0k", "FLEET_LOKI_URL": "http://127.0.0.1:9",
                              "FLEET_LOKI_SPOOL_MAX_BYTES": "0"})
    async with HubHarness.build(tmp_path, settings=settings, factories=[sync_plugin, logs_plugin]) as h:
        for path in ("/v1/heartbeats", "/v1/sync/push", "/v1/logs"):
            no_token = await h.client.post(path, content=b"[]", headers={"content-type": "text/plain"})
            assert no_token.status_code == 401, path
            r = await h.client.post(path, content=b"[]", headers={"content-type": "text/plain",
                                                                  "authorization": "Bearer t0k"})
            assert r.status_code == 415, (path, r.text)


@pytest.mark.asyncio
async def test_http11_without_host_is_400_and_http10_is_fine(tmp_path: Path) -> None:
    app = create_app(load_topology(None), load_settings({"FLEET_PROBE_ENABLED": "false"}),
                     data_dir=tmp_path, config=HubConfig(background=False), factories=[])
    async with serve_app(app) as url:
        host, port = url.removeprefix("http://").split(":")

        async def ask(raw: bytes) -> bytes:
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(raw)
            data = await asyncio.wait_for(reader.read(65536), 5)
            writer.close()
            return data

        assert (await ask(b"GET /health HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 400")
        assert (await ask(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")).startswith(b"HTTP/1.1 200")
        assert (await ask(b"GET /health HTTP/1.0\r\n\r\n")).startswith(b"HTTP/1.1 200")


@pytest.mark.asyncio
@pytest.mark.parametrize("name", [".", "..", "-", "-x", ".hidden", "a b", ""])
async def test_names_that_are_path_segments_or_options_are_refused(tmp_path: Path, name: str) -> None:
    async with HubHarness.build(tmp_path) as h:
        r = await h.client.post("/v1/heartbeats", json={"agent": name})
        assert r.status_code == 422, (name, r.text)
        assert r.json()["message"].startswith("body.agent: String should match pattern")
        if name not in (".", "..", ""):  # httpx normalises those out of a URL
            assert (await h.client.get(f"/v1/agents/{name}")).status_code == 422
    for good in ("a", "_x", "9", "a.b-c_d"):
        async with HubHarness.build(tmp_path) as h:
            assert (await h.client.post("/v1/heartbeats", json={"agent": good})).status_code == 200


@pytest.mark.parametrize("var", ["FLEET_TOKEN", "FLEET_READ_TOKEN"])
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_token_is_a_configuration_error(var: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{var}='{value}': Value error, set but empty"):
        load_settings({var: value})


def test_the_hub_refuses_to_start_with_an_empty_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    env.update({"FLEET_TOKEN": "", "FLEET_DATA_DIR": str(tmp_path)})
    out = subprocess.run([sys.executable, "-m", "fleetobs.cli.main", "hub", "--port", "0"],
                         capture_output=True, text=True, env=env, timeout=60, check=False)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "FLEET_TOKEN=''" in lines[0], out.stderr


@pytest.mark.asyncio
async def test_schema_and_docs_are_behind_the_read_token(tmp_path: Path) -> None:
    settings = load_settings({"FLEET_READ_TOKEN": "r34d"})
    async with HubHarness.build(tmp_path, settings=settings) as h:
        for path in ("/openapi.json", "/docs"):
            r = await h.client.get(path)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
            r = await h.client.get(path, headers={"authorization": "Bearer r34d"})
            assert r.status_code == 200, path
        assert (await h.client.get("/redoc")).status_code == 404
        assert (await h.client.get("/health")).status_code == 200  # still open
    async with HubHarness.build(tmp_path) as h:  # no read token: open, as the API is
        schema = (await h.client.get("/openapi.json")).json()
        assert "/openapi.json" not in schema["paths"] and "/v1/heartbeats" in schema["paths"]
        assert (await h.client.get("/docs")).status_code == 200


@pytest.mark.asyncio
async def test_integers_written_as_7613_0_are_the_integers_the_schema_says(tmp_path: Path) -> None:
    async with HubHarness.build(tmp_path) as h:
        r = await h.client.post("/v1/heartbeats", content=b'{"agent": "NLUAgent", "pid": 7613.0}', headers=JSON)
        assert r.status_code == 200, r.text
        assert (await h.client.get("/v1/agents/NLUAgent")).json()["pid"] == 7613
        for bad in (b"7613.5", b"true", b'"7613"', b"0.0", b"1e10"):
            r = await h.client.post("/v1/heartbeats", content=b'{"agent": "NLUAgent", "pid": ' + bad + b"}",
                                    headers=JSON)
            assert r.status_code == 422, bad
        op = (await h.client.get("/openapi.json")).json()["paths"]["/v1/heartbeats"]["post"]
        one = op["requestBody"]["content"]["application/json"]["schema"]["oneOf"][0]
        pid = one["properties"]["pid"]
        assert {"type": "integer", "minimum": 1, "maximum": 2**31 - 1} in pid["anyOf"]


@pytest.mark.asyncio
async def test_sync_counters_written_as_floats_are_taken(tmp_path: Path) -> None:
    async with HubHarness.build(tmp_path, factories=[sync_plugin]) as h:
        body = {"sender": {"machine": "pc2", "epoch": 5.0}, "as_of": 1.0, "records": [
            {"name": "Fuser", "owner": "pc2", "machine": "pc2", "epoch": 5.0, "seq": 1.0,
             "state": "up", "interval_seconds": 10}]}
        r = await h.client.post("/v1/sync/push", content=json.dumps(body), headers=JSON)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 1


@pytest.mark.asyncio
async def test_the_logs_route_documents_its_4xx_and_its_body(tmp_path: Path) -> None:
    settings = load_settings({"FLEET_LOKI_URL": "http://127.0.0.1:9", "FLEET_LOKI_SPOOL_MAX_BYTES": "0"})
    async with HubHarness.build(tmp_path, settings=settings, factories=[logs_plugin]) as h:
        op = (await h.client.get("/openapi.json")).json()["paths"]["/v1/logs"]["post"]
        assert {"400", "401", "413", "415", "422"} <= set(op["responses"])
        assert op["requestBody"]["content"]["application/json"]["schema"]["type"] == "array"
        assert (await h.client.post("/v1/logs", content=b"[{", headers=JSON)).status_code == 400
        deep = b"[" * 100_000 + b"]" * 100_000
        r = await h.client.post("/v1/logs", content=deep, headers=JSON)
        assert r.status_code in (400, 413), r.text  # never a 500 (it was a RecursionError)
        heartbeats = (await h.client.get("/openapi.json")).json()["paths"]["/v1/heartbeats"]["post"]
        assert {"413", "415", "422"} <= set(heartbeats["responses"])
