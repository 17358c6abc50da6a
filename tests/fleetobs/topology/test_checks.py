from __future__ import annotations

from typing import Any

import pytest

from fleetobs.topology import Topology, load_topology
from fleetobs.topology.checks import Finding, check_topology


def _topology(agents: list[dict[str, Any]], groups: list[dict[str, Any]] | None = None,
              gpu_gib: float = 24) -> Topology:
    return Topology.model_validate({
        "machines": [{"name": "m", "hub_port": 9000, "address": "m", "gpu_memory_gib": gpu_gib},
                     {"name": "n", "hub_port": 9100, "address": "n"}],
        "groups": groups if groups is not None else [{"name": "g", "machine": "m"}],
        "agents": [{"machine": "m", "group": "g", **a} for a in agents],
    })


def _agent(name: str, port: int, **kw: Any) -> dict[str, Any]:
    return {"name": name, "port": port, "health_check_port": port + 1000, **kw}


#: Transitional: a checkout whose prometheus/ or dashboards/ generator renders only its README
#: yet reports the compose bundle's mounts of their files as warnings (lint.py).
NOT_BUILT = "mount-target-not-built"


def _codes(t: Topology) -> dict[str, int]:
    return {c: n for c, n in check_topology(t).codes().items() if c != NOT_BUILT}


def _warnings(t: Topology) -> list[Finding]:
    return [f for f in check_topology(t).warnings if f.code != NOT_BUILT]


def test_clean_topology_has_no_findings() -> None:
    t = _topology([_agent("A", 100), _agent("B", 200, dependencies=["A"])])
    assert [f for f in check_topology(t).findings if f.code != NOT_BUILT] == []


def test_duplicate_agent_is_an_error() -> None:
    report = check_topology(_topology([_agent("A", 100), _agent("A", 200)]))
    (f,) = [f for f in report.errors if f.code == "duplicate-agent"]
    assert f.message == "agent A is defined 2 times on m"


def test_same_name_on_two_machines_is_not_a_duplicate() -> None:
    t = _topology([_agent("A", 100), {**_agent("A", 100), "machine": "n", "group": None}],
                  groups=[{"name": "g", "machine": "m"}])
    assert "duplicate-agent" not in _codes(t)
    assert "duplicate-port" not in _codes(t)


def test_duplicate_port_on_a_machine_is_an_error() -> None:
    report = check_topology(_topology([_agent("A", 100), {"name": "B", "port": 1100, "health_check_port": 300}]))
    (f,) = report.errors
    assert f.code == "duplicate-port"
    assert f.message == "port 1100 on m is used by A.health_check_port, B.port"
    assert f.to_json()["agents"] == ["A", "B"]


def test_http_port_collision_is_a_warning_naming_both_agents() -> None:
    # A serves HTTP on 1101 (= its health port 1100 + 1), which is B's health port.
    t = _topology([_agent("A", 100), _agent("B", 101)])
    report = check_topology(t)
    assert report.ok
    # On a shared host network, and (both in group g) inside the group's namespace.
    f, g = _warnings(t)
    assert f.code == "http-port-collision"
    assert f.message == ("A on m serves HTTP on health_check_port + 1 = 1101, which is B's health_check_port "
                         "(a ZeroMQ socket): left out of Prometheus discovery (/v1/sd/prometheus)")
    assert g.code == "group-http-port-collision"
    assert g.message.startswith("in group g's network namespace, A's HTTP port (health_check_port + 1 = 1101) "
                                "is B's health_check_port: B starts first")


def test_unknown_dependency_is_an_error() -> None:
    (f,) = check_topology(_topology([_agent("A", 100, dependencies=["Ghost"])])).errors
    assert (f.code, f.message) == ("unknown-dependency", "A (m) depends on Ghost, which is not in the topology")


def test_dependency_cycle_is_an_error_with_its_path() -> None:
    t = _topology([_agent("A", 100, dependencies=["C"]), _agent("B", 200, dependencies=["A"]),
                   _agent("C", 300, dependencies=["B"]), _agent("D", 400, dependencies=["D"])])
    cycles = sorted(f.message for f in check_topology(t).errors if f.code == "dependency-cycle")
    assert cycles == ["dependency cycle: A -> C -> B -> A", "dependency cycle: D -> D"]


def test_unplaced_agent_is_an_error() -> None:
    (f,) = check_topology(_topology([_agent("A", 100, group=None)])).errors
    assert (f.code, f.message) == ("unplaced-agent", "A (m) is in no container group")


def test_group_budget_larger_than_the_gpu_is_an_error() -> None:
    t = _topology([_agent("A", 100)], groups=[{"name": "g", "machine": "m", "gpu_memory_budget_gib": 30}])
    codes = _codes(t)
    assert codes == {"budget-exceeds-gpu": 1, "gpu-overcommit": 1}
    (f,) = check_topology(t).errors
    assert f.message == "group g has a GPU budget of 30 GiB, more than m's 24 GiB GPU"


def test_budgets_over_the_gpu_are_a_warning_with_the_numbers() -> None:
    groups = [{"name": "g", "machine": "m", "gpu_memory_budget_gib": 20},
              {"name": "h", "machine": "m", "gpu_memory_budget_gib": 10}]
    t = _topology([_agent("A", 100), {**_agent("B", 200), "group": "h"}], groups=groups)
    assert check_topology(t).ok
    (f,) = _warnings(t)
    assert f.message == "GPU budgets on m add up to 30 GiB on a 24 GiB GPU (1.2x): g 20 + h 10"
    assert f.to_json()["ratio"] == 1.25


def test_group_starting_before_its_dependency_is_a_warning() -> None:
    groups = [{"name": "early", "machine": "m", "startup_stage": 1},
              {"name": "late", "machine": "m", "startup_stage": 2}]
    t = _topology([{**_agent("A", 100, dependencies=["B"]), "group": "early"},
                   {**_agent("B", 200), "group": "late"}], groups=groups)
    (f,) = _warnings(t)
    assert f.code == "startup-order"
    assert f.message == ("group early (stage 1) starts before group late (stage 2) it depends on: "
                         "A depends on B")


def test_empty_group_is_a_warning() -> None:
    t = _topology([_agent("A", 100)], groups=[{"name": "g", "machine": "m"}, {"name": "e", "machine": "m"}])
    assert _codes(t) == {"empty-group": 1}


@pytest.fixture(scope="module")
def fleet() -> Topology:
    return load_topology()


def test_default_topology_passes_with_the_real_fleets_warnings(fleet: Topology) -> None:
    report = check_topology(fleet)
    assert report.errors == ()
    codes = report.codes()
    assert codes["http-port-collision"] == 32
    collisions = [f for f in report.warnings if f.code == "http-port-collision"]
    assert sum(f.data["machine"] == "mainpc" for f in collisions) == 22
    assert sum(f.data["machine"] == "pc2" for f in collisions) == 10
    (overcommit,) = [f for f in report.warnings if f.code == "gpu-overcommit"]
    assert (overcommit.data["machine"], overcommit.data["budget_total_gib"], overcommit.data["gpu_memory_gib"]) == (
        "mainpc", 62, 24)
    assert "(2.6x)" in overcommit.message
    assert set(codes) - {NOT_BUILT} == {"http-port-collision", "gpu-overcommit", "startup-order",
                                        "group-http-port-collision"}


def test_report_json_shape(fleet: Topology) -> None:
    doc = check_topology(fleet).to_json()
    assert set(doc) == {"errors", "warnings"}
    assert all({"code", "message"} <= set(w) for w in doc["warnings"])
