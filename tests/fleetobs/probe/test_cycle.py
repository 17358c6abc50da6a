"""Probing many agents at once: every target once per cycle, bounded in flight."""

from __future__ import annotations

import pytest

from fleetobs.probe.cycle import Prober, ProbeTarget
from fleetobs.probe.result import Outcome, ProbeResult, Protocol
from fleetobs.probe.targets import auto_concurrency
from fleetobs.simulator.agent import SimAgentSpec
from fleetobs.simulator.behaviour import Behaviour
from fleetobs.simulator.fleet import SimulatedFleet

HOST = "127.0.0.1"


class CountingProber(Prober):
    """A real Prober that also records how many probes were in flight at most."""

    in_flight = 0
    peak = 0

    async def probe(self, target: ProbeTarget) -> ProbeResult:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super().probe(target)
        finally:
            self.in_flight -= 1


def targets_of(fleet: SimulatedFleet, http: frozenset[str] = frozenset()) -> list[ProbeTarget]:
    out = []
    for (machine, name), a in fleet.agents.items():
        if name in http:
            out.append(ProbeTarget(name, machine, Protocol.HTTP, HOST, a.http_port))
        else:
            out.append(ProbeTarget(name, machine, Protocol.ZMQ, HOST, a.health_check_port))
    return out


@pytest.mark.asyncio
async def test_each_target_once_with_its_outcome() -> None:
    specs = [SimAgentSpec("ok", "m", None, 0, 0), SimAgentSpec("deg", "m", None, 0, 0, Behaviour.DEGRADED),
             SimAgentSpec("hung", "m", None, 0, 0, Behaviour.SILENT),
             SimAgentSpec("web", "m", None, 0, 0, Behaviour.ERROR)]
    async with SimulatedFleet(specs) as fleet:
        targets = targets_of(fleet, http=frozenset({"web"}))
        targets.append(ProbeTarget("bad", "m", Protocol.ZMQ, "not a host!", 1))
        prober = Prober(timeout_seconds=0.3, concurrency=8)
        seen: dict[str, Outcome] = {}
        try:
            report = await prober.run_cycle(targets, lambda t, r: seen.__setitem__(t.agent, r.outcome))
        finally:
            await prober.aclose()
            await prober.aclose()
    assert seen == {"ok": Outcome.OK, "deg": Outcome.DEGRADED, "hung": Outcome.TIMEOUT,
                    "web": Outcome.ERROR, "bad": Outcome.UNREACHABLE}
    assert (report.targets, report.answered) == (5, 3)
    assert prober.stats.results[(Protocol.HTTP, Outcome.ERROR)] == 1
    assert prober.stats.results[(Protocol.ZMQ, Outcome.TIMEOUT)] == 1
    assert prober.stats.latency[Protocol.ZMQ].count == 2  # answered zmq probes only
    assert prober.stats.targets == {Protocol.ZMQ: 4, Protocol.HTTP: 1}


@pytest.mark.asyncio
async def test_concurrency_is_bounded() -> None:
    specs = [SimAgentSpec(f"s{i}", "m", None, 0, 0, Behaviour.SLOW, slow_seconds=0.05) for i in range(9)]
    async with SimulatedFleet(specs, http=False) as fleet:
        prober = CountingProber(timeout_seconds=2.0, concurrency=3)
        try:
            report = await prober.run_cycle(targets_of(fleet), lambda t, r: None)
        finally:
            await prober.aclose()
    assert report.answered == 9
    assert prober.peak == 3


@pytest.mark.asyncio
async def test_empty_cycle() -> None:
    prober = Prober()
    report = await prober.run_cycle([], lambda t, r: None)
    await prober.aclose()
    assert (report.targets, report.answered) == (0, 0)


def test_auto_concurrency_fits_a_cycle_of_silent_agents() -> None:
    assert auto_concurrency(75, 2.0, 15.0) == 32  # the real fleet: the floor
    assert auto_concurrency(1000, 2.0, 5.0) == 400  # 1000 silent x 2 s / 400 = 5 s
    assert auto_concurrency(100_000, 2.0, 5.0) == 1024  # capped: descriptors are finite
    assert auto_concurrency(401, 1.0, 1.0) == 401


def test_bad_prober_arguments() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Prober(timeout_seconds=0)
    with pytest.raises(ValueError, match="concurrency"):
        Prober(concurrency=0)


@pytest.mark.asyncio
async def test_a_failing_sink_does_not_abort_the_cycle(caplog: pytest.LogCaptureFixture) -> None:
    specs = [SimAgentSpec(f"a{i}", "m", None, 0, 0) for i in range(4)]
    async with SimulatedFleet(specs, http=False) as fleet:
        prober = Prober(timeout_seconds=2.0, concurrency=2)
        got: list[str] = []

        def sink(t: ProbeTarget, r: ProbeResult) -> None:
            if t.agent == "a1":
                raise RuntimeError("store is full")
            got.append(t.agent)

        try:
            report = await prober.run_cycle(targets_of(fleet), sink)
        finally:
            await prober.aclose()
    assert sorted(got) == ["a0", "a2", "a3"] and report.answered == 4
    assert "probe result of a1 not recorded" in caplog.text


def test_stats_buckets_match_the_catalog() -> None:
    from fleetobs import catalog
    from fleetobs.probe.stats import CYCLE_BUCKETS, LATENCY_BUCKETS

    assert catalog.spec("fleet_probe_latency_seconds").buckets == LATENCY_BUCKETS
    assert catalog.spec("fleet_probe_cycle_duration_seconds").buckets == CYCLE_BUCKETS


def test_the_probe_library_depends_only_on_pyzmq_httpx_and_stdlib() -> None:
    import subprocess
    import sys

    code = ("import sys\n"
            "import fleetobs.probe.cycle, fleetobs.probe.zmq_probe, fleetobs.probe.http_probe\n"
            "import fleetobs.probe.sidecar, fleetobs.probe.health\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'yaml', 'fastapi',"
            " 'prometheus_client', 'typer', 'hub', 'loguru'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
