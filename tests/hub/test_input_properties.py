"""Property (issue 13): whatever JSON value comes in, from any side, the API stays up and
the next flush succeeds.

Arbitrary JSON values, including what ``json.loads`` accepts but cannot write back
(non-finite numbers, lone surrogate escapes), NUL, huge numbers and deep nesting, are
sent through every input path of one running hub (real sockets, real plugins):

* a heartbeat (``POST /v1/heartbeats``: in ``details``, as ``reason``, as the body);
* a probe reply, from a real ZeroMQ and a real HTTP fake agent (the hub's prober);
* the same reply through a sidecar (``fleetobs.probe.sidecar``), which pushes to the hub;
* a sync record and GPU summary of a peer (``POST /v1/sync/push``);
* a log line (``POST /v1/logs``) shipped to the Loki stand-in.

Then every read endpoint must answer 2xx/4xx and the next write-behind flush must
succeed with nothing left pending.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetobs.probe.cycle import ProbeTarget
from fleetobs.probe.result import Protocol
from fleetobs.probe.sidecar import Sidecar
from fleetobs.settings import load_settings
from fleetobs.simulator.agent import SimAgentSpec, SimulatedAgent
from fleetobs.simulator.fleet import SimulatedFleet
from fleetobs.testing.live_hub import serve_app
from fleetobs.testing.loki import LokiStandIn
from fleetobs.topology.model import Topology
from hub.app import create_app, hub_of
from hub.probing import ProbingPlugin
from hub.service import Hub, HubConfig

JSON = {"content-type": "application/json"}
READS = ("/v1/agents", "/v1/agents/NLUAgent", "/v1/agents/Zed", "/v1/agents/Hat", "/v1/agents/Far",
         "/v1/probes", "/v1/fleet", "/metrics", "/v1/sd/prometheus", "/v1/discover/NLUAgent",
         "/health", "/ready", "/openapi.json")


# --- JSON values, written as text (so NaN, 1e400 and lone surrogates can be said) -------
@dataclass(frozen=True)
class Literal:
    """JSON text put in as it is: ``1e400``, ``-1e400``, ``[[[...]]]``."""

    text: str


def to_json(v: Any) -> str:
    if isinstance(v, Literal):
        return v.text
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return repr(v)
    if isinstance(v, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(to_json(x) for x in v) + "]"
    return json.dumps(v)  # ensure_ascii: a lone surrogate becomes its \\udXXX escape


nasty_text = st.one_of(
    st.text(max_size=30),
    st.lists(st.sampled_from(["\ud800", "\udfff", "\x00", "a", "\u2028", "\ufffe", "\U0001f600", '"', "\\"]),
             max_size=8).map("".join),
    st.just("x" * 5000),
)
leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.just(10**400),
    st.floats(allow_nan=True, allow_infinity=True), nasty_text,
    st.sampled_from([Literal("1e400"), Literal("-1e400"), Literal("1e-400")]),
    st.integers(150, 3000).map(lambda d: Literal("[" * d + "]" * d)),
)
values = st.recursive(leaf, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(nasty_text, kids, max_size=4)), max_leaves=12)


# --- one running hub with every input path ---------------------------------------------
def topology() -> Topology:
    return Topology.model_validate({
        "machines": [{"name": "m1", "hub_port": 9000, "address": "m1.lan"},
                     {"name": "m2", "hub_port": 9100, "address": "m2.lan"}],
        "groups": [{"name": "g1", "machine": "m1"}, {"name": "g2", "machine": "m2"}],
        "agents": [
            {"name": "Zed", "machine": "m1", "group": "g1", "port": 10, "health_check_port": 11, "probe": "zmq"},
            {"name": "Hat", "machine": "m1", "group": "g1", "port": 20, "health_check_port": 21, "probe": "http"},
            {"name": "NLUAgent", "machine": "m1", "group": "g1", "port": 30, "health_check_port": 31,
             "probe": "push"},
            {"name": "Far", "machine": "m2", "group": "g2", "port": 40, "health_check_port": 41},
        ]})


@dataclass
class Stack:
    loop: asyncio.AbstractEventLoop
    url: str
    hub: Hub
    prober: ProbingPlugin
    sidecar: Sidecar
    agents: list[SimulatedAgent]
    loki: LokiStandIn
    client: httpx.AsyncClient
    seq: int = 0

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    loop = asyncio.new_event_loop()
    exits = AsyncExitStack()
    with LokiStandIn() as loki:
        try:
            fleet = SimulatedFleet([SimAgentSpec("Zed", "m1", "g1", 0, 0), SimAgentSpec("Hat", "m1", "g1", 0, 0)])
            loop.run_until_complete(exits.enter_async_context(fleet))
            topo = fleet.topology(topology())
            settings = load_settings({
                "FLEET_LOKI_URL": loki.url, "FLEET_LOKI_SPOOL_MAX_BYTES": "0", "FLEET_PEERS": "http://127.0.0.1:9",
                "FLEET_PROBE_TIMEOUT": "1", "FLEET_PROBE_INTERVAL": "3600", "FLEET_GPU_EXPORTER_URL": "off",
                "FLEET_LOG_LEVEL": "WARNING"})
            app = create_app(topo, settings, machine="m1", data_dir=tmp_path_factory.mktemp("hub"),
                             config=HubConfig(background=False))
            url = loop.run_until_complete(exits.enter_async_context(serve_app(app)))
            hub = hub_of(app)
            prober = next(p for p in hub.plugins if isinstance(p, ProbingPlugin))
            targets = [ProbeTarget(a.name, "m1", Protocol.ZMQ if a.name == "Zed" else Protocol.HTTP, "127.0.0.1",
                                   topo.agent_by_key[("m1", a.name)].health_check_port
                                   + (1 if a.name == "Hat" else 0), "g1")
                       for a in topo.agents_on("m1") if a.name in ("Zed", "Hat")]
            sidecar = Sidecar(targets, url, interval_seconds=30, timeout_seconds=1)
            exits.push_async_callback(sidecar.aclose)
            client = loop.run_until_complete(exits.enter_async_context(httpx.AsyncClient(base_url=url, timeout=20)))
            yield Stack(loop, url, hub, prober, sidecar, list(fleet.agents.values()), loki, client)
        finally:
            loop.run_until_complete(exits.aclose())
            loop.close()


async def feed(s: Stack, value: Any, reply_shape: int) -> None:
    v = to_json(value)
    # Heartbeats: the value in details, as the reason, as a batch item, as the body.
    for body in (f'{{"agent":"NLUAgent","status":"degraded","details":{{"x":{v}}}}}',
                 f'{{"agent":"NLUAgent","reason":{v}}}', f"[{v}]", v):
        r = await s.client.post("/v1/heartbeats", content=body.encode(), headers=JSON)
        assert r.status_code < 500, (body[:200], r.status_code, r.text[:300])
    # Probe replies over ZeroMQ and HTTP, to the hub's prober and to a sidecar.
    reply = (f'{{"status":"degraded","message":{v},"health_checks":{{"k":false,"v":{v}}}}}',
             f'{{"status":{v}}}', v)[reply_shape]
    for agent in s.agents:
        agent.raw_reply = reply.encode()
    await s.prober.probe_once()
    cycle = await s.sidecar.run_once()
    assert cycle.error is None or "HTTP 4" in cycle.error, cycle.error  # the hub took it or said why
    # A peer's sync record and GPU summary.
    s.seq += 1
    push = (f'{{"sender":{{"machine":"m2","epoch":7}},"as_of":{s.seq},"records":[{{"name":"Far","owner":"m2",'
            f'"machine":"m2","epoch":7,"seq":{s.seq},"state":"degraded","reason":{v},"endpoint":{v},'
            f'"interval_seconds":10}}],"gpus":{{"machine":"m2","seq":{s.seq},"error":{v},'
            f'"gpus":[{{"index":0,"uuid":"GPU-1","name":{v}}}]}}}}')
    r = await s.client.post("/v1/sync/push", content=push.encode(), headers=JSON)
    assert r.status_code < 500, (r.status_code, r.text[:300])
    # A log line.
    line = f'[{{"agent":"NLUAgent","level":"info","message":{v},"fields":{{"f":{v}}}}}]'
    r = await s.client.post("/v1/logs", content=line.encode(), headers=JSON)
    assert r.status_code < 500, (r.status_code, r.text[:300])


async def check(s: Stack) -> None:
    for path in READS:
        r = await s.client.get(path)
        assert 200 <= r.status_code < 500, (path, r.status_code, r.text[:300])
        if r.headers.get("content-type", "").startswith("application/json"):
            json.loads(r.content)  # strict JSON, UTF-8
    failures = dict(s.hub.counters.flush_failures)
    await s.hub.flush()
    assert not s.hub.registry.dirty
    assert dict(s.hub.counters.flush_failures) == failures  # no new failure of any kind


@given(value=values, reply_shape=st.integers(0, 2))
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
def test_no_value_from_any_side_breaks_the_api_or_the_flush(stack: Stack, value: Any, reply_shape: int) -> None:
    stack.run(feed(stack, value, reply_shape))
    stack.run(check(stack))


def test_what_the_property_run_sent_reached_its_sinks(stack: Stack) -> None:
    """Runs after the property (same module): the log shipper and the records kept working."""
    stack.run(feed(stack, "disk \ud800 full\x00", 0))
    for agent in stack.agents:  # the tester's reply, byte for byte
        agent.raw_reply = b'{"status": "degraded", "message": "disk \\ud800 full\\u0000"}'
    stack.run(stack.prober.probe_once())
    stack.run(check(stack))
    zed = stack.run(stack.client.get("/v1/agents/Zed")).json()
    assert zed["reason"] == "message: disk \ufffd full\ufffd"
    assert stack.loki.wait_for(1, 20)
    assert any("disk \ufffd full\ufffd" in line for line in stack.loki.lines(agent="NLUAgent"))
    assert not stack.hub.counters.flush_failures
    assert Path(stack.hub.store.path).exists()
