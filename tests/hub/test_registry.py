"""The registry: expected, unknown and foreign agents of one machine, and their records."""

from __future__ import annotations

import pytest

from fleetobs.topology.load import load_topology
from fleetobs.topology.model import Topology
from hub.liveness import LivenessPolicy, State
from hub.observation import Observation, Source, Status
from hub.registry import HUB_AGENT, Kind, Outcome, Registry

P = LivenessPolicy()


@pytest.fixture(scope="module")
def fleet() -> Topology:
    return load_topology(None)


def test_expected_agents_are_this_machines_agents_and_start_missing(fleet: Topology) -> None:
    reg = Registry(fleet, "pc2", P)
    assert {r.name for r in reg} == {a.name for a in fleet.agents_on("pc2")}
    assert len(reg) == 23
    assert all(r.state is State.MISSING and r.kind is Kind.EXPECTED for r in reg)


def test_unknown_machine_is_refused(fleet: Topology) -> None:
    with pytest.raises(KeyError, match="unknown machine 'nope'"):
        Registry(fleet, "nope", P)


def test_observation_is_recorded_with_its_details(fleet: Topology) -> None:
    reg = Registry(fleet, "mainpc", P)
    outcome, rec = reg.record(Observation(agent="MemoryClient", machine="mainpc",
                                          status=Status.DEGRADED, source=Source.PROBE,
                                          reason="health_checks.ready_signal=false",
                                          version="1.2", pid=42, endpoint="tcp://x:1",
                                          details={"k": 1}), now=10.0, wall=1e9)
    assert outcome is Outcome.ACCEPTED and rec is not None
    assert rec.state is State.DEGRADED
    assert (rec.source, rec.reason, rec.version, rec.pid, rec.endpoint, dict(rec.details)) == (
        Source.PROBE, "health_checks.ready_signal=false", "1.2", 42, "tcp://x:1", {"k": 1})
    assert rec.last_seen_wall == 1e9 and rec.state_since_wall == 1e9
    assert "MemoryClient" in reg.dirty


def test_stranger_kinds(fleet: Topology) -> None:
    reg = Registry(fleet, "mainpc", P)
    _, nobody = reg.record(Observation(agent="NoSuchAgent", machine="mainpc"), 0.0, 0.0)
    _, wrong_machine = reg.record(Observation(agent="ResourceManager", machine="mainpc"), 0.0, 0.0)
    assert nobody is not None and nobody.kind is Kind.UNKNOWN and nobody.expected_machine is None
    assert wrong_machine is not None and wrong_machine.kind is Kind.FOREIGN
    assert wrong_machine.expected_machine == "pc2"
    assert nobody.group is None and not nobody.required
    assert reg.unknown_count == 2


def test_hub_agent_is_local_not_foreign(fleet: Topology) -> None:
    """ObservabilityHub exists on both machines: each hub's own is expected."""
    reg = Registry(fleet, "pc2", P)
    _, rec = reg.record(Observation(agent=HUB_AGENT, machine="pc2"), 0.0, 0.0)
    assert rec is not None and rec.kind is Kind.EXPECTED and rec.group == "infra_core_cpu"


def test_unknown_agents_are_capped(fleet: Topology) -> None:
    reg = Registry(fleet, "mainpc", P, max_unknown=2)
    for name in ("a", "b"):
        assert reg.record(Observation(agent=name, machine="mainpc"), 0.0, 0.0)[0] is Outcome.ACCEPTED
    assert reg.record(Observation(agent="c", machine="mainpc"), 0.0, 0.0) == (
        Outcome.TOO_MANY_UNKNOWN, None)
    # Known agents are never refused by the cap.
    assert reg.record(Observation(agent="MemoryClient", machine="mainpc"), 0.0, 0.0)[0] is Outcome.ACCEPTED
    assert reg.get("c") is None


def test_observation_for_another_machine_is_not_judged_here(fleet: Topology) -> None:
    reg = Registry(fleet, "mainpc", P)
    assert reg.record(Observation(agent="ResourceManager", machine="pc2"), 0.0, 0.0) == (
        Outcome.OTHER_MACHINE, None)
    assert reg.get("ResourceManager") is None


def test_judge_all_reports_changes_once(fleet: Topology) -> None:
    reg = Registry(fleet, "mainpc", P)
    reg.record(Observation(agent="MemoryClient", machine="mainpc", interval_seconds=10), 0.0, 0.0)
    reg.dirty.clear()
    assert reg.judge_all(20.0, 20.0) == []
    changed = reg.judge_all(21.0, 21.0)
    assert [(r.name, before, r.state) for r, before in changed] == [
        ("MemoryClient", State.UP, State.SUSPECT)]
    assert reg.dirty == {"MemoryClient"}
    assert reg.judge_all(22.0, 22.0) == []


def test_restore_rows_brings_back_strangers_and_skips_junk(fleet: Topology) -> None:
    reg = Registry(fleet, "mainpc", P)
    rows = [
        {"name": "MemoryClient", "state": "up", "status": "ok", "interval_seconds": 30.0,
         "last_seen_wall": 990.0, "source": "heartbeat", "details": {"a": 1}},
        {"name": "Stranger", "state": "down", "status": "ok", "interval_seconds": 5.0,
         "last_seen_wall": 100.0, "source": "garbage"},
        {"name": "KnowledgeBase", "state": "not-a-state", "status": "ok",
         "interval_seconds": 30.0, "last_seen_wall": 990.0},
    ]
    assert reg.restore_rows(rows, now=50.0, wall=1000.0) == 2
    mc, stranger, kb = reg.get("MemoryClient"), reg.get("Stranger"), reg.get("KnowledgeBase")
    assert mc is not None and mc.state is State.UP and mc.timing.last_seen == 40.0
    assert mc.source is Source.HEARTBEAT and dict(mc.details) == {"a": 1}
    assert stranger is not None and stranger.kind is Kind.UNKNOWN and stranger.timing.interval == 5.0
    assert stranger.source is None and stranger.state is State.DOWN
    assert kb is not None and kb.state is State.MISSING
