"""``fleetobs status`` against a real hub: exit 0 healthy, 1 required down/missing, 3 unreachable."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from fleetobs.settings import load_settings
from fleetobs.testing.cli import run_cli
from fleetobs.testing.live_hub import serve_app
from fleetobs.topology.load import load_topology
from hub.app import create_app


@pytest.mark.slow
@pytest.mark.asyncio
async def test_exit_codes_follow_the_fleet(tmp_path: Path) -> None:
    topo = load_topology(None)
    settings = load_settings({"FLEET_PROBE_ENABLED": "false", "FLEET_PEERS": "none",
                              "FLEET_GPU_EXPORTER_URL": "off"})
    async with serve_app(create_app(topo, settings, data_dir=tmp_path)) as url:
        rc, out, err = await run_cli("status", "--hub", url)
        assert (rc, err) == (1, ""), err
        assert "NOT HEALTHY" in out and "NLUAgent" in out and "never heard since the hub started" in out
        assert "…" not in out
        beats = [{"agent": a.name} for a in topo.agents_on("mainpc") if a.name != "ObservabilityHub"]
        async with httpx.AsyncClient(base_url=url) as c:
            assert (await c.post("/v1/heartbeats", json=beats)).status_code == 200
        rc, out, _ = await run_cli("status", "--hub", url)
        assert rc == 0 and "HEALTHY" in out and "Nothing needs attention." in out
        rc, out, _ = await run_cli("status", "--json", env={"FLEET_HUB_URL": url})
        assert rc == 0 and json.loads(out)["healthy"] is True


@pytest.mark.asyncio
async def test_an_unreachable_hub_is_exit_3_and_bad_input_exit_2() -> None:
    rc, out, err = await run_cli("status", "--hub", "http://127.0.0.1:9", "--timeout", "2")
    assert (rc, out) == (3, "") and err.count("\n") == 1 and "cannot reach the hub" in err
    rc, _, err = await run_cli("status", "--hub", "localhost:9000")
    assert rc == 2 and "expected an http(s) URL" in err
