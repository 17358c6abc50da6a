from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from fleetobs.topology import ProbeKind, Topology, load_topology
from fleetobs.topology.model import Agent


@pytest.fixture(scope="module")
def fleet() -> Topology:
    return load_topology()


def test_default_topology_is_the_real_fleet(fleet: Topology) -> None:
    assert Counter(a.machine for a in fleet.agents) == {"mainpc": 54, "pc2": 23}
    assert len(fleet.groups) == 12
    assert {m.name: (m.gpu_model, m.gpu_memory_gib, m.hub_port) for m in fleet.machines} == {
        "mainpc": ("RTX 4090", 24, 9000),
        "pc2": ("RTX 3060", 12, 9100),
    }


def test_every_agent_is_placed_on_its_own_machine(fleet: Topology) -> None:
    for a in fleet.agents:
        assert a.group is not None, a.name
        assert fleet.group_by_name[a.group].machine == a.machine


def test_agents_not_in_the_plan_carry_a_note(fleet: Topology) -> None:
    noted = {a.name for a in fleet.agents if a.note.startswith("placed by fleetobs")}
    assert noted == {"LearningOrchestrationService", "LearningOpportunityDetector", "LearningManager",
                     "ActiveLearningMonitor", "LearningAdjusterAgent", "AsyncProcessor"}


def test_one_observability_hub_per_machine_watched_by_push(fleet: Topology) -> None:
    hubs = [a for a in fleet.agents if a.name == "ObservabilityHub"]
    assert {(a.machine, a.port, a.probe) for a in hubs} == {
        ("mainpc", 9000, ProbeKind.PUSH), ("pc2", 9100, ProbeKind.PUSH)}
    assert all(a.probe is ProbeKind.ZMQ for a in fleet.agents if a.name != "ObservabilityHub")


def test_find_agent_prefers_the_local_machine_and_refuses_ambiguity(fleet: Topology) -> None:
    hub = fleet.find_agent("ObservabilityHub", prefer_machine="pc2")
    assert hub is not None and hub.machine == "pc2"
    assert fleet.find_agent("ObservabilityHub") is None  # one per machine: ambiguous
    nlu = fleet.find_agent("NLUAgent", prefer_machine="pc2")
    assert nlu is not None and nlu.machine == "mainpc"
    assert fleet.find_agent("NoSuchAgent") is None


def test_dependencies_resolve_on_the_same_machine_first(fleet: Topology) -> None:
    rm = fleet.agent_by_key[("pc2", "ResourceManager")]
    dep = fleet.resolve_dependency(rm, "ObservabilityHub")
    assert dep is not None and dep.machine == "pc2"


def test_derived_ports_and_names(fleet: Topology) -> None:
    nlu = fleet.agent_by_key[("mainpc", "NLUAgent")]
    assert (nlu.port, nlu.health_check_port, nlu.http_port) == (5709, 6709, 6710)
    assert fleet.group_by_name["language_stack_gpu"].service_name == "language-stack-gpu"
    assert fleet.group_by_name["utility_gpu"].gpu_memory_budget_bytes == 14 * 1024**3
    assert fleet.machine("pc2").gpu_memory_bytes == 12 * 1024**3


def test_models_are_immutable(fleet: Topology) -> None:
    agent = fleet.agents[0]
    with pytest.raises(ValidationError):
        agent.port = 1  # type: ignore[misc]


def test_unknown_machine_lookup_names_the_known_ones(fleet: Topology) -> None:
    with pytest.raises(KeyError, match="known: mainpc, pc2"):
        fleet.machine("pc3")


def _doc(**agent: object) -> dict[str, object]:
    return {
        "machines": [{"name": "m1", "hub_port": 9000, "address": "m1"},
                     {"name": "m2", "hub_port": 9100, "address": "m2"}],
        "groups": [{"name": "g1", "machine": "m1"}],
        "agents": [{"name": "A", "machine": "m1", "group": "g1", "port": 1000, "health_check_port": 1001,
                    **agent}],
    }


def test_defaults_section_fills_agent_fields() -> None:
    doc = _doc()
    doc["defaults"] = {"heartbeat_interval_seconds": 5, "probe": "http", "required": False}
    t = Topology.model_validate(doc)
    assert (t.agents[0].heartbeat_interval_seconds, t.agents[0].probe, t.agents[0].required) == (
        5, ProbeKind.HTTP, False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"machine": "m3"}, "unknown machine 'm3'"),
        ({"group": "g9"}, "unknown group 'g9'"),
        ({"machine": "m2"}, "group 'g1' is on machine 'm1', the agent on 'm2'"),
    ],
)
def test_cross_references_are_validated(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Topology.model_validate(_doc(**change))


def test_agent_key_is_machine_and_name() -> None:
    a = Agent(name="X", machine="m", port=1, health_check_port=2)
    assert a.key == ("m", "X")
