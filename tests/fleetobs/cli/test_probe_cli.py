"""``fleetobs probe`` as compose runs it: a real process against real agent sockets."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
import yaml

from fleetobs.cli.main import main
from fleetobs.simulator.agent import SimAgentSpec
from fleetobs.simulator.behaviour import Behaviour
from fleetobs.simulator.fleet import SimulatedFleet
from fleetobs.testing.cli import run_cli

HEAVY = ("fastapi", "starlette", "uvicorn", "httpx", "pynvml", "opentelemetry", "rich")




@pytest.mark.asyncio
@pytest.mark.parametrize(("behaviour", "code", "first_word"), [
    (Behaviour.OK, 0, "ok"), (Behaviour.DEGRADED, 1, "degraded"), (Behaviour.ERROR, 1, "error"),
    (Behaviour.GARBAGE, 1, "invalid_reply"), (Behaviour.SILENT, 3, "timeout"),
])
async def test_exit_code_and_one_line_per_answer(behaviour: Behaviour, code: int,
                                                 first_word: str) -> None:
    async with SimulatedFleet([SimAgentSpec("A", "m", None, 0, 0, behaviour)], http=False) as fleet:
        port = fleet.agent("A").health_check_port
        rc, out, err = await run_cli("probe", f"127.0.0.1:{port}", "--timeout", "0.3")
    assert (rc, err) == (code, "")
    assert out.count("\n") == 1 and out.split()[0] == first_word
    assert f"tcp://127.0.0.1:{port}" in out
    if behaviour is Behaviour.DEGRADED:
        assert out.rstrip().endswith("health_checks.ready_signal=false")


@pytest.mark.asyncio
async def test_http_protocol_and_refused() -> None:
    async with SimulatedFleet([SimAgentSpec("A", "m", None, 0, 0, Behaviour.DEGRADED)]) as fleet:
        agent = fleet.agent("A")
        rc, out, _ = await run_cli("probe", f"127.0.0.1:{agent.http_port}", "--protocol", "http")
    assert rc == 1 and out.startswith(f"degraded http://127.0.0.1:{agent.http_port}/health")
    rc, out, _ = await run_cli("probe", f"127.0.0.1:{agent.http_port}", "-p", "http")
    # No answer is 3, never 2: 2 is bad usage (and Docker reserves it in healthchecks).
    assert rc == 3 and out.startswith("refused ")


@pytest.mark.asyncio
async def test_agent_name_resolves_through_topology_without_heavy_imports(tmp_path: Path) -> None:
    async with SimulatedFleet([SimAgentSpec("Alpha", "m1", None, 0, 0, Behaviour.OK)], http=False) as fleet:
        agent = fleet.agent("Alpha")
        topo = tmp_path / "t.yaml"
        topo.write_text(yaml.safe_dump({
            "machines": [{"name": "m1", "hub_port": 9000, "address": "m1"}],
            "agents": [{"name": "Alpha", "machine": "m1", "port": agent.port,
                        "health_check_port": agent.health_check_port}]}))
        code = (
            "import sys\n"
            "from fleetobs.cli.main import main\n"
            "rc = main(['probe', 'Alpha'])\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
            "sys.exit(rc)\n")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "FLEET_TOPOLOGY": str(topo), "MACHINE_TYPE": "m1",
                 "SERVICE_DISCOVERY_MODE": "host"})
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    lines = out.decode().splitlines()
    assert proc.returncode == 0, err.decode()
    assert lines[0].startswith(f"Alpha: ok tcp://127.0.0.1:{agent.health_check_port}")
    assert lines[1] == "[]"  # a healthcheck run loads neither a web stack nor httpx


@pytest.mark.parametrize(("args", "message"), [
    (["probe", "127.0.0.1:70000"], "port 70000 is outside 1..65535"),
    (["probe", ":80"], "missing host"),
    (["probe", "127.0.0.1:80", "--protocol", "smtp"], "--protocol 'smtp': expected one of zmq, http"),
    (["probe", "127.0.0.1:80", "--timeout", "0"], "--timeout 0: expected seconds"),
    (["probe", "NoSuchAgent"], "NoSuchAgent: no such agent in the topology"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


@pytest.mark.asyncio
async def test_the_hub_agent_is_probed_over_its_http_health(tmp_path: Path) -> None:
    # ObservabilityHub (probe: push) is the fleetobs hub: `probe` asks the hub's /health.
    from fleetobs.settings import load_settings
    from fleetobs.testing.live_hub import serve_app
    from fleetobs.topology.load import load_topology
    from hub.app import create_app

    app = create_app(load_topology(None), load_settings({"FLEET_PROBE_ENABLED": "false", "FLEET_PEERS": "none"}),
                     data_dir=tmp_path)
    async with serve_app(app) as url:
        port = int(url.rsplit(":", 1)[1])
        topo = tmp_path / "t.yaml"
        topo.write_text(yaml.safe_dump({
            "machines": [{"name": "m1", "hub_port": port, "address": "m1"}],
            "agents": [{"name": "ObservabilityHub", "machine": "m1", "port": port, "health_check_port": 1,
                        "probe": "push"},
                       {"name": "Pusher", "machine": "m1", "port": 2, "health_check_port": 3, "probe": "push"}]}))
        env = {"FLEET_TOPOLOGY": str(topo), "MACHINE_TYPE": "m1", "SERVICE_DISCOVERY_MODE": "host"}
        code, out, _ = await run_cli("probe", "ObservabilityHub", env=env)
        other_code, _, other_err = await run_cli("probe", "Pusher", env=env)
    assert code == 0, out
    assert out.startswith(f"ObservabilityHub: ok http://127.0.0.1:{port}/health")
    assert other_code == 2
    assert "Pusher: watched by heartbeats (probe: push), it has no health socket" in other_err
