"""Start order inside one group's network namespace: every shared port's owner first."""

from __future__ import annotations

from typing import Any

from fleetobs.topology import Topology, load_topology
from fleetobs.topology.checks import check_topology
from fleetobs.topology.grouping import group_agents, group_plan


def _topology(agents: list[dict[str, Any]]) -> Topology:
    return Topology.model_validate({
        "machines": [{"name": "m", "hub_port": 9000, "address": "m"}],
        "groups": [{"name": "g", "machine": "m"}],
        "agents": [{"machine": "m", "group": "g", **a} for a in agents],
    })


def test_the_owner_of_an_http_port_starts_before_the_agent_that_loses_it() -> None:
    # A's HTTP port (1001 + 1) is B's health port; B is listed (and depends) after A.
    t = _topology([{"name": "A", "port": 100, "health_check_port": 1001},
                   {"name": "B", "port": 200, "health_check_port": 1002, "dependencies": ["A"]}])
    plan = group_plan(t, "g")
    assert [a.name for a in plan.agents] == ["B", "A"]
    a = plan.member("A")
    assert not a.http_served
    assert [(w.owner, w.port, w.kind) for w in a.waits] == [("B", 1002, "health_check_port")]
    assert plan.member("B").http_served
    assert plan.cycle == ()


def test_dependencies_order_the_rest() -> None:
    t = _topology([{"name": "A", "port": 100, "health_check_port": 1000, "dependencies": ["B"]},
                   {"name": "B", "port": 200, "health_check_port": 2000}])
    assert [a.name for a in group_plan(t, "g").agents] == ["B", "A"]


def test_mutual_ownership_is_a_cycle_and_an_error() -> None:
    # A's HTTP port is B's main port and B's HTTP port is A's main port: whoever starts
    # first takes the other's port, so one of them always hangs.
    t = _topology([{"name": "A", "port": 501, "health_check_port": 599},
                   {"name": "B", "port": 600, "health_check_port": 500}])
    plan = group_plan(t, "g")
    assert set(plan.cycle) == {"A", "B"}
    errors = [f for f in check_topology(t).errors if f.code == "group-port-order"]
    assert len(errors) == 1
    assert "one of them would hang" in errors[0].message


def test_the_hub_agent_runs_as_the_hub_service_not_in_its_group() -> None:
    t = load_topology()
    names = [a.name for a in group_agents(t, "core_platform")]
    assert "ObservabilityHub" not in names
    assert set(names) == {"ServiceRegistry", "SystemDigitalTwin", "RequestCoordinator"}


def test_real_fleet_collisions_inside_groups_are_named_per_group() -> None:
    t = load_topology()
    found = [f for f in check_topology(t).warnings if f.code == "group-http-port-collision"]
    per_group: dict[str, int] = {}
    for f in found:
        per_group[f.data["group"]] = per_group.get(f.data["group"], 0) + 1
    # 32 collisions on a shared host network; 17 of them inside one group's namespace.
    assert per_group == {"utility_gpu": 1, "language_stack_gpu": 3, "audio_emotion": 7, "infra_core_cpu": 6}
    for g in t.groups:
        plan = group_plan(t, g.name)
        position = {a.name: i for i, a in enumerate(plan.agents)}
        for m in plan.members:
            for w in m.waits:
                assert position[w.owner] < position[m.agent.name]
