"""The fleet simulator: real sockets that behave like the real BaseAgent."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from fleetobs.cli.main import main
from fleetobs.probe.http_probe import HttpProber
from fleetobs.probe.result import Outcome
from fleetobs.probe.zmq_probe import ZmqProber
from fleetobs.simulator.agent import SimAgentSpec
from fleetobs.simulator.behaviour import Behaviour, plan_behaviours
from fleetobs.simulator.fleet import PortPlan, SimulatedFleet, specs_from_topology
from fleetobs.testing.heartbeat_sink import HeartbeatSink
from fleetobs.topology.load import load_topology

HOST = "127.0.0.1"


def test_plan_is_seeded_and_exact() -> None:
    names = [f"a{i}" for i in range(100)]
    plan = plan_behaviours(names, 0.2, seed=7)
    assert sum(b is not Behaviour.OK for b in plan.values()) == 20
    assert plan == plan_behaviours(names, 0.2, seed=7)
    assert plan != plan_behaviours(names, 0.2, seed=8)
    failing = [b for b in plan.values() if b is not Behaviour.OK]
    assert {failing.count(k) for k in set(failing)} == {4}  # five kinds, four each
    forced = plan_behaviours(names, 0.0, overrides={"a3": Behaviour.DOWN})
    assert forced["a3"] is Behaviour.DOWN and forced["a4"] is Behaviour.OK
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        plan_behaviours(names, 1.5)


def test_specs_from_the_real_topology_skip_push_agents() -> None:
    topo = load_topology(None)
    specs = specs_from_topology(topo, ["mainpc", "pc2"], {}, PortPlan(offset=100))
    assert len(specs) == 75  # 77 minus the two ObservabilityHubs (probe: push)
    mms = next(s for s in specs if s.name == "ModelManagerSuite")
    assert (mms.port, mms.health_check_port) == (7311, 8311)
    assert {s.health_check_port for s in specs_from_topology(topo, ["pc2"], {}, PortPlan(ephemeral=True))} == {0}


def free_run(n: int) -> int:
    """A port p with p..p+n-1 all free right now."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind((HOST, 0))
            p: int = s.getsockname()[1]
        if p + n > 65535:
            continue
        socks = []
        try:
            for q in range(p, p + n):
                t = socket.socket()
                socks.append(t)
                t.bind((HOST, q))
            return p
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()
    raise RuntimeError("no run of free ports")


@pytest.mark.asyncio
async def test_health_port_plus_one_collision_costs_http_not_the_other_agent() -> None:
    p = free_run(5)
    # A's HTTP port (p+1) is B's health port, as 32 times in the real fleet.
    specs = [SimAgentSpec("A", "m", None, p + 3, p), SimAgentSpec("B", "m", None, p + 4, p + 1)]
    async with SimulatedFleet(specs) as fleet:
        assert fleet.report.started == ["A", "B"]
        assert fleet.report.http_skipped == ["A"]
        zmq = ZmqProber()
        try:
            b = await zmq.probe(HOST, p + 1, 2.0)  # B's ZeroMQ health socket, not A's HTTP
        finally:
            zmq.close()
    assert b.outcome is Outcome.OK


@pytest.mark.asyncio
async def test_topology_gets_the_bound_ports(tmp_path: Path) -> None:
    base = load_topology(None)
    specs = specs_from_topology(base, ["pc2"], {"TutoringAgent": Behaviour.DOWN},
                                PortPlan(ephemeral=True), limit=5)
    async with SimulatedFleet(specs) as fleet:
        topo = fleet.topology(base)
        assert len(topo.agents) == len(base.agents)
        for spec in specs:
            a = topo.agent_by_key[("pc2", spec.name)]
            sim = fleet.agent(spec.name)
            if spec.behaviour is Behaviour.DOWN:
                assert a.health_check_port != base.agent_by_key[a.key].health_check_port
                continue
            assert (a.port, a.health_check_port) == (sim.port, sim.health_check_port)
        untouched = topo.agent_by_key[("mainpc", "ModelManagerSuite")]
        assert untouched == base.agent_by_key[("mainpc", "ModelManagerSuite")]
        http = HttpProber()
        try:
            down = topo.agent_by_key[("pc2", "TutoringAgent")]
            refused = await http.probe(HOST, down.http_port, 1.0)
        finally:
            await http.aclose()
    assert refused.outcome is Outcome.REFUSED


@pytest.mark.asyncio
async def test_metrics_endpoint_serves_prometheus_text_labelled_by_agent() -> None:
    async with SimulatedFleet([SimAgentSpec("NLUAgent", "m", None, 0, 0, Behaviour.ERROR)]) as fleet:
        agent = fleet.agent("NLUAgent")
        async with httpx.AsyncClient(trust_env=False) as client:
            await client.get(f"http://{HOST}:{agent.http_port}/health")
            text = (await client.get(f"http://{HOST}:{agent.http_port}/metrics")).text
            missing = await client.get(f"http://{HOST}:{agent.http_port}/nope")
            post = await client.post(f"http://{HOST}:{agent.http_port}/health")
    samples = {s.name: s for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["agent_health_status"].value == 0
    assert samples["agent_health_status"].labels == {"agent": "NLUAgent"}
    assert samples["agent_requests_total"].value == 1
    assert (missing.status_code, post.status_code) == (404, 405)


@pytest.mark.asyncio
async def test_push_mode_sends_what_each_behaviour_says() -> None:
    specs = [SimAgentSpec("Good", "m", "g", 0, 0, Behaviour.OK),
             SimAgentSpec("Sad", "m", "g", 0, 0, Behaviour.DEGRADED),
             SimAgentSpec("Hung", "m", "g", 0, 0, Behaviour.SILENT)]
    with HeartbeatSink() as sink:
        fleet = SimulatedFleet(specs)
        assert fleet.start_push(sink.url, interval_seconds=0.05) == 2
        for _ in range(500):
            if {"Good", "Sad"} <= {b["agent"] for b in sink.beats()}:
                break
            await asyncio.sleep(0.01)
        await fleet.stop()
    by_agent = {b["agent"]: b for b in sink.beats()}
    assert set(by_agent) == {"Good", "Sad"}
    assert by_agent["Sad"]["status"] == "degraded"
    assert by_agent["Sad"]["reason"] == "health_checks.ready_signal=false"
    assert by_agent["Good"]["container"] == "g"


def test_simulate_cli_runs_until_interrupted(tmp_path: Path) -> None:
    out = tmp_path / "topo.yaml"
    proc = subprocess_simulate("-m", "pc2", "--ephemeral", "--write-topology", str(out),
                               "--set", "TutoringAgent=degraded")
    try:
        for _ in range(1000):
            if out.exists() and out.stat().st_size:
                break
            time.sleep(0.01)
        agents = {a["name"]: a for a in yaml.safe_load(out.read_text())["agents"]}
        port = agents["TutoringAgent"]["health_check_port"]
        rc = main(["probe", f"{HOST}:{port}"])
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert rc == 1  # degraded, as told
    assert proc.returncode == 0, stderr
    assert stdout.startswith("simulating 22 agents on 127.0.0.1 (1 degraded, 21 ok)")


def subprocess_simulate(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "fleetobs.cli.main", "simulate", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.parametrize(("args", "message"), [
    (["simulate", "--fail-rate", "2"], "--fail-rate 2: expected a fraction"),
    (["simulate", "--set", "NoSuch=ok"], "--set: NoSuch is not among the simulated agents"),
    (["simulate", "--set", "ModelManagerSuite=sleepy"], "'sleepy': expected one of"),
    (["simulate", "--set", "justaname"], "--set 'justaname': expected AGENT=BEHAVIOUR"),
    (["simulate", "-m", "pc9"], "--machine 'pc9': not in the topology"),
    (["simulate", "--kinds", "lazy"], "--kinds 'lazy': expected one of"),
])
def test_simulate_bad_input(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
