"""Both machines' generated bundles on one real Docker daemon, two compose projects
standing in for MainPC and PC2, each group's agents played by the group simulator.

The tests run in this order on one pair of projects (module fixture ``fleet``): what is
read first, then the faults, each putting back what it broke.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from fleetobs.testing.docker.compose import has_healthcheck, health, ready, service_of, wait_healthy
from fleetobs.testing.docker.fleet import Fleet
from fleetobs.testing.docker.stage import generated_prometheus
from fleetobs.topology.model import Group

T = TypeVar("T")
OTHER = {"mainpc": "pc2", "pc2": "mainpc"}
#: Alive as the hub judges it. The simulator, like BaseAgent, lets its Redis ready key
#: expire after 300 s, after which a healthy agent reports ``degraded``: agents a fault
#: did not touch must stay alive, and are "up" only within their first 5 minutes.
ALIVE = {"up", "degraded"}


def poll(fn: Callable[[], T], ok: Callable[[T], bool], timeout: float, every: float = 1.0) -> T:
    """``fn()`` until ``ok`` of it, or its last value after ``timeout`` (the assert shows it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(every)


def agents(fleet: Fleet, hub_machine: str, of: str | None = None) -> dict[str, dict[str, Any]]:
    """name -> the hub's view of each agent of machine ``of`` (default: the hub's own)."""
    r = httpx.get(f"{fleet.hub(hub_machine)}/v1/agents", params={"machine": of or hub_machine}, timeout=10)
    r.raise_for_status()
    return {a["name"]: a for a in r.json()["agents"]}


def states(view: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: str(a["state"]) for name, a in view.items()}


def expected(fleet: Fleet, machine: str, group: str | None = None) -> set[str]:
    return {a.name for a in fleet.topology.agents_on(machine) if group is None or a.group == group}


def metrics(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


# --- the bundles up ------------------------------------------------------------------------
def test_every_container_is_healthy(fleet: Fleet) -> None:
    for machine, project in fleet.projects.items():
        # All at one moment (a check that missed its timeout on a loaded host recovers).
        containers = poll(project.containers, lambda cs: all(ready(c) for c in cs), timeout=90, every=2)
        assert {service_of(c) for c in containers} == set(project.services()), machine
        assert {service_of(c): health(c) for c in containers if not ready(c)} == {}, machine
        checked = {service_of(c) for c in containers if has_healthcheck(c)}
        # Every group container and every fleetobs service has a healthcheck.
        groups = {g.service_name for g in fleet.topology.groups_on(machine)}
        assert groups | {"hub", "gpu-exporter", "prometheus", "alertmanager", "redis", "nats"} <= checked


def test_each_hub_sees_its_own_agents_up(fleet: Fleet) -> None:
    for machine, count in (("mainpc", 54), ("pc2", 23)):
        want = expected(fleet, machine)
        assert len(want) == count
        view = poll(lambda m=machine: states(agents(fleet, m)),  # type: ignore[misc]
                    lambda s, w=want: {n for n, st in s.items() if st == "up"} == w, timeout=90)
        assert {n for n, st in view.items() if st != "up"} == set(), f"{machine}: {view}"
        assert set(view) == want


def test_each_hub_sees_the_other_machines_agents_through_sync(fleet: Fleet) -> None:
    for machine, other in OTHER.items():
        want = expected(fleet, other)
        view = poll(lambda m=machine, o=other: states(agents(fleet, m, o)),  # type: ignore[misc]
                    lambda s, w=want: set(s) == w and set(s.values()) <= ALIVE, timeout=60)
        assert set(view) == want and set(view.values()) <= ALIVE, f"{machine} sees {other}: {view}"


def test_prometheus_scrapes_every_target(fleet: Fleet) -> None:
    for machine in fleet.projects:
        url = fleet.url(machine, "PROMETHEUS_HOST_PORT")

        def targets(u: str = url) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = httpx.get(f"{u}/api/v1/targets", timeout=10).json()["data"][
                "activeTargets"]
            return found

        active = poll(targets, lambda ts: bool(ts) and all(t["health"] == "up" for t in ts), timeout=60)
        assert active and {t["scrapeUrl"]: t["health"] for t in active if t["health"] != "up"} == {}
        jobs = {t["labels"]["job"] for t in active}
        if not generated_prometheus():
            assert jobs == {"fleet-hub", "fleet-gpu-exporter", "prometheus", "alertmanager"}
        result = httpx.get(f"{url}/api/v1/query", params={"query": "up"}, timeout=10).json()["data"]["result"]
        assert len(result) == len(active) and {r["value"][1] for r in result} == {"1"}


def test_security_non_root_hub_read_only_socket_nothing_privileged(fleet: Fleet) -> None:
    d = fleet.docker
    for machine, project in fleet.projects.items():
        containers = project.containers()
        assert [service_of(c) for c in containers if c["HostConfig"].get("Privileged")] == []
        socket_mounts = [(service_of(c), m) for c in containers for m in c["Mounts"]
                         if m.get("Source") == "/var/run/docker.sock"]
        assert socket_mounts, f"{machine}: the GPU exporter mounts the Docker socket"
        assert [(s, m["RW"]) for s, m in socket_mounts if m["RW"]] == []
        hub = project.container("hub")
        assert hub["Config"]["User"] not in ("", "0", "root")
        assert d("exec", hub["Id"], "id", "-u", timeout=30).strip() != "0"


def test_the_exporter_reports_every_group_container(fleet: Fleet) -> None:
    for machine in fleet.projects:
        groups = fleet.topology.groups_on(machine)

        def labels(service: str, group: str, m: str = machine) -> frozenset[tuple[str, str]]:
            return frozenset({("machine", m), ("service", service), ("group", group)})

        def complete(got: dict[tuple[str, frozenset[tuple[str, str]]], float],
                     groups: tuple[Group, ...] = groups) -> bool:
            return all(got.get(("fleet_container_running", labels(g.service_name, g.name))) == 1
                       and ("fleet_container_memory_limit_bytes", labels(g.service_name, g.name)) in got
                       for g in groups)

        # The exporter reads containers every 5 s: its first view may predate the last group.
        got = poll(lambda m=machine: metrics(fleet.url(m, "GPU_EXPORTER_HOST_PORT")),  # type: ignore[misc]
                   complete, timeout=30)
        running = {dict(k[1])["service"]: v for k, v in got.items() if k[0] == "fleet_container_running"}
        # Every group, and the hub (a stack service, no group; it has a memory limit).
        for service, group in [(g.service_name, g.name) for g in groups] + [("hub", "")]:
            key = labels(service, group)
            assert running.get(service) == 1, (machine, service, running)
            assert got[("fleet_container_restarts_total", key)] == 0
            assert got[("fleet_container_cpu_seconds_total", key)] > 0
            # Working set against the limit (0: none), from the host's cgroup files.
            limit = fleet.projects[machine].container(service)["HostConfig"]["Memory"]
            assert got[("fleet_container_memory_limit_bytes", key)] == limit, service
            assert 0 < got[("fleet_container_memory_working_set_bytes", key)] < (limit or float("inf"))
            assert service != "hub" or limit > 0
        other_groups = {g.service_name for g in fleet.topology.groups_on(OTHER[machine])}
        assert not other_groups & set(running), f"{machine}'s exporter counts the other project"


# --- faults ----------------------------------------------------------------------------------
def test_a_killed_group_is_down_on_both_hubs_and_nothing_else_is(fleet: Fleet) -> None:
    machine, group = "mainpc", "utility_gpu"
    service = next(g.service_name for g in fleet.topology.groups_on(machine) if g.name == group)
    lost, others = expected(fleet, machine, group), expected(fleet, machine) - expected(fleet, machine, group)
    d = fleet.docker
    cid = fleet.container(machine, service)
    d("kill", cid, timeout=60)
    try:
        for hub_machine in (machine, OTHER[machine]):
            # Until the group's agents are all down while every other agent is alive (a hub
            # starved of CPU on a loaded host can miss a probe round of everyone for a while).
            view = poll(lambda h=hub_machine: states(agents(fleet, h, machine)),  # type: ignore[misc]
                        lambda s: all(s.get(n) == "down" for n in lost) and all(s.get(n) in ALIVE for n in others),
                        timeout=150)
            assert {n: view.get(n) for n in lost if view.get(n) != "down"} == {}, hub_machine
            assert {n: view[n] for n in others if view[n] not in ALIVE} == {}, hub_machine
        pc2 = states(agents(fleet, "pc2"))
        assert set(pc2.values()) <= ALIVE
        if generated_prometheus():  # the generated rules (issue 10): the page reaches Alertmanager
            am = fleet.url(machine, "ALERTMANAGER_HOST_PORT")
            firing = poll(lambda: httpx.get(f"{am}/api/v2/alerts", timeout=10).json(),
                          lambda alerts: any(a["labels"].get("alertname") in ("GroupDown", "AgentDown")
                                             for a in alerts), timeout=120, every=2)
            names = {a["labels"].get("alertname") for a in firing}
            assert names & {"GroupDown", "AgentDown"}, names
            assert all(a["labels"].get("group", group) == group for a in firing
                       if a["labels"].get("alertname") in ("GroupDown", "AgentDown"))
    finally:
        d("start", cid, timeout=60)
        wait_healthy(fleet.projects[machine], timeout=120, services=[service])
    # Back: the group's agents answer again (a fresh ready key: "up").
    view = poll(lambda: states(agents(fleet, machine)), lambda s: {s[n] for n in lost} == {"up"}, timeout=90)
    assert {view[n] for n in lost} == {"up"}


def test_a_restarted_hub_keeps_its_state_and_is_ready_again(fleet: Fleet) -> None:
    machine = "pc2"
    url = fleet.hub(machine)
    hub = fleet.projects[machine].container("hub")
    [data] = [m for m in hub["Mounts"] if m["Destination"] == "/var/lib/fleetobs"]
    assert data["Type"] == "volume"
    # An agent the topology does not know, seen once with a long interval: nothing but the
    # hub's state on its volume can bring it back after a restart.
    beat = {"agent": "volume-witness", "status": "ok", "interval_seconds": 3600}
    assert httpx.post(f"{url}/v1/heartbeats", json=beat, timeout=10).status_code == 200
    before = agents(fleet, machine)["volume-witness"]
    time.sleep(2)  # the store flushes every second
    fleet.docker("restart", "--time", "10", hub["Id"], timeout=60)
    wait_healthy(fleet.projects[machine], timeout=90, services=["hub"])
    assert httpx.get(f"{url}/ready", timeout=10).status_code == 200
    after = agents(fleet, machine)
    witness = after["volume-witness"]
    assert (witness["state"], witness["last_seen"], witness["state_since"]) == \
        ("up", before["last_seen"], before["state_since"])
    assert expected(fleet, machine) <= set(after)


def test_a_stopped_peer_hub_leaves_its_agents_unknown_not_down(fleet: Fleet) -> None:
    fleet.docker("stop", fleet.container("pc2", "hub"), timeout=60)
    view = poll(lambda: states(agents(fleet, "mainpc", "pc2")),
                lambda s: set(s.values()) == {"unknown"}, timeout=60)
    assert expected(fleet, "pc2") <= set(view)  # plus what PC2's hub learned (the witness)
    assert set(view.values()) == {"unknown"}, view
    # MainPC's own agents are untouched.
    assert set(states(agents(fleet, "mainpc")).values()) <= ALIVE
