"""``fleetobs heartbeat`` against a real hub."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fleetobs.cli.main import main
from fleetobs.settings import load_settings
from fleetobs.testing.cli import run_cli
from fleetobs.testing.live_hub import serve_app
from fleetobs.topology.load import load_topology
from hub.app import create_app


@pytest.mark.asyncio
async def test_heartbeat_reaches_the_hub_and_shows_in_its_agent_list(tmp_path: Path) -> None:
    settings = load_settings({"FLEET_PROBE_ENABLED": "false", "FLEET_PEERS": "none"})
    app = create_app(load_topology(None), settings, machine="mainpc", data_dir=tmp_path)
    async with serve_app(app) as url:
        rc, out, err = await run_cli("heartbeat", "NLUAgent", "--status", "degraded",
                                     "--reason", "warming up", "--details", '{"queue": 4}',
                                     env={"FLEET_HUB_URL": url})
        assert (rc, err) == (0, ""), err
        assert out == f"sent: NLUAgent degraded to {url}\n"
        async with httpx.AsyncClient(base_url=url) as client:
            agents = (await client.get("/v1/agents")).json()["agents"]
        rc2, out2, _ = await run_cli("heartbeat", "Mystery", env={"FLEET_HUB_URL": url})
        rc3, out3, _ = await run_cli("heartbeat", "bad name!", env={"FLEET_HUB_URL": url})
    nlu = next(a for a in agents if a["name"] == "NLUAgent")
    assert (nlu["last_status"], nlu["reason"], nlu["source"]) == ("degraded", "warming up", "heartbeat")
    assert nlu["details"] == {"queue": 4}
    assert rc2 == 0 and "(unknown to the topology)" in out2
    assert rc3 == 1 and out3.startswith(f"not sent: bad name! to {url}: hub answered HTTP 422: body.agent")


@pytest.mark.asyncio
async def test_hub_down_is_exit_1_with_one_line() -> None:
    rc, out, _ = await run_cli("heartbeat", "NLUAgent", "--timeout", "1",
                               env={"FLEET_HUB_URL": "http://127.0.0.1:1"})
    assert rc == 1 and out.startswith("not sent: NLUAgent to http://127.0.0.1:1") and out.count("\n") == 1


@pytest.mark.parametrize(("args", "message"), [
    (["heartbeat", "A", "--status", "fine"], "--status 'fine': expected one of ok, degraded, error"),
    (["heartbeat", "A", "--details", "[1]"], "--details: expected a JSON object"),
    (["heartbeat", "A", "--details", "{"], "--details: not JSON"),
    (["heartbeat", "A", "--interval", "0"], "--interval 0: expected seconds"),
    (["heartbeat", "A", "--hub-url", "http://127.0.0.1:1", "--timeout", "-1"], "--timeout -1"),
])
def test_bad_input_is_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
