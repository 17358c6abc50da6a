"""Every property the issue lists, checked on the real fleet's generated bundles."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from fleetobs.generate.compose import images
from fleetobs.generate.compose.lint import check_bundles, defaults, published
from fleetobs.generate.stack import stacks
from fleetobs.topology import Topology
from fleetobs.topology.grouping import group_plan

MACHINES = ("mainpc", "pc2")
STACK = {"hub", "gpu-exporter", "prometheus", "alertmanager", "loki", "grafana", "redis", "nats"}
VAR = re.compile(r"\$\{([A-Z0-9_]+):-([^}]*)\}")


def groups(fleet: Topology, machine: str) -> list[str]:
    return [g.service_name for g in fleet.groups_on(machine)]


def all_files(rendering: dict[str, str]) -> list[tuple[str, str]]:
    return [(p, t) for p, t in rendering.items() if p.startswith("compose/") and p.endswith((".yml", ".env",
                                                                                            ".example"))]


def test_each_machine_has_its_stack_and_one_service_per_group_with_its_relay(
        fleet: Topology, compose: dict[str, dict[str, Any]]) -> None:
    for m in MACHINES:
        services = set(compose[m]["services"])
        expected = STACK | set(groups(fleet, m)) | {f"{g}-net" for g in groups(fleet, m)}
        assert services == expected
    assert len(groups(fleet, "mainpc")) + len(groups(fleet, "pc2")) == 12


def test_images_are_pinned_never_latest(rendering: dict[str, str]) -> None:
    seen = set()
    for path, text in all_files(rendering):
        for line in text.splitlines():
            if "image:" in line or line.split("=", 1)[0].endswith("_IMAGE"):
                ref = defaults(line.split("image:", 1)[-1] if "image:" in line else line.split("=", 1)[1])
                ref = ref.strip().strip("'\"")
                name, _, tag = ref.rpartition(":")
                assert name and tag and tag != "latest" and "/" not in tag, f"{path}: {line}"
                seen.add(ref)
    assert {i.default for i in images.STACK_IMAGES} <= seen
    assert "grafana/grafana:11.6.0" in seen


def _healthchecks(doc: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(n, s["healthcheck"]["test"]) for n, s in doc["services"].items() if "healthcheck" in s]


OURS = (["python3", "/fleetobs/healthcheck.py", "group", "/fleetobs/group.json"],
        ["python3", "-m", "fleetobs.container.healthcheck", "http"],
        ["python3", "-m", "fleetobs.container.healthcheck", "relay"])


@pytest.mark.parametrize("machine", MACHINES)
def test_healthchecks_exit_0_or_1_and_never_curl(compose: dict[str, dict[str, Any]],
                                                 compose_test: dict[str, dict[str, Any]], machine: str) -> None:
    for doc in (compose[machine], compose_test[machine]):
        checks = _healthchecks(doc)
        assert checks
        for name, test in checks:
            assert "curl" not in " ".join(test), name
            if test[0] == "CMD":
                # Our scripts: exit 0/1 by construction (tests/fleetobs/container/).
                assert any(test[1:1 + len(o)] == o for o in OURS), (name, test)
            else:
                assert test[0] == "CMD-SHELL" and test[1].endswith(" || exit 1"), (name, test)


@pytest.mark.parametrize("machine", MACHINES)
def test_groups_have_the_plans_environment_and_the_real_agents_needs(
        fleet: Topology, compose: dict[str, dict[str, Any]], machine: str) -> None:
    services = compose[machine]["services"]
    peer = next(s for n, s in stacks(fleet).items() if n != machine)
    hub_port = fleet.machine(machine).hub_port
    for g in fleet.groups_on(machine):
        svc = services[g.service_name]
        env = svc["environment"]
        assert env["CONTAINER_ROLE"] == g.name
        assert env["MACHINE_TYPE"] == machine
        assert defaults(env["CROSS_MACHINE_DISCOVERY_ENDPOINT"]) == f"http://{peer.machine.address}:{peer.hub.port}"
        assert env["SERVICE_DISCOVERY_MODE"] == "container_dns"
        assert env["BIND_ADDRESS"] == "0.0.0.0"
        assert env["FLEET_HUB_URL"] == f"http://hub:{hub_port}"
        # BaseAgent: Redis/NATS at localhost (the relay owns the namespace), no SIGTERM handler.
        assert svc["network_mode"] == f"service:{g.service_name}-net"
        relay = services[f"{g.service_name}-net"]
        assert relay["networks"]["fleet"]["aliases"] == [g.service_name]
        assert relay["command"][-2:] == ["127.0.0.1:6379=redis:6379", "127.0.0.1:4222=nats:4222"]
        assert (svc["stop_signal"], svc["stop_grace_period"], svc["init"]) == ("SIGINT", "30s", True)
        start = int(svc["healthcheck"]["start_period"].rstrip("s"))
        assert start >= 20 * len(group_plan(fleet, g.name).members)  # ~20 s constructors, one by one
        assert VAR.fullmatch(svc["image"]) and VAR.fullmatch(svc["command"])  # theirs, as variables
        assert svc["depends_on"][f"{g.service_name}-net"] == {"condition": "service_healthy"}
        gpu = svc.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices")
        if g.gpu_memory_budget_gib > 0:
            assert gpu == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
            assert env["GPU_MEMORY_LIMIT"] == f"{g.gpu_memory_budget_gib:g}GB"
            assert env["PYTORCH_CUDA_ALLOC_CONF"] == "max_split_size_mb:128"
            # MPS where the plan uses it (MainPC, whose budgets over-commit the card).
            assert ("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT" in env) is (machine == "mainpc")
            if machine == "mainpc":
                assert env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] == f"0={g.gpu_memory_budget_gib:g}G"
                assert svc["ipc"] == "host"
        else:
            assert gpu is None and "GPU_MEMORY_LIMIT" not in env
        limits = svc.get("deploy", {}).get("resources", {}).get("limits", {})
        assert limits.get("memory") == (f"{g.memory_limit_gib:g}g" if g.memory_limit_gib else None)


def test_core_platform_has_the_topologys_memory_limit(compose: dict[str, dict[str, Any]]) -> None:
    assert compose["mainpc"]["services"]["core-platform"]["deploy"]["resources"]["limits"] == {"memory": "2g"}


@pytest.mark.parametrize("machine", MACHINES)
def test_manifests_list_the_group_in_start_order(fleet: Topology, rendering: dict[str, str], machine: str) -> None:
    for g in fleet.groups_on(machine):
        doc = json.loads(rendering[f"compose/{machine}/group/{g.name}.json"])
        plan = group_plan(fleet, g.name)
        assert [a["name"] for a in doc["agents"]] == [a.name for a in plan.agents]
        assert "ObservabilityHub" not in [a["name"] for a in doc["agents"]]  # it is the hub service
        for a in doc["agents"]:
            assert a["http"] is not bool(a["start_after"])


def test_depends_on_follows_the_plans_startup_order(compose: dict[str, dict[str, Any]]) -> None:
    def deps(m: str, svc: str) -> set[str]:
        return set(compose[m]["services"][svc]["depends_on"]) - {f"{svc}-net"}

    assert deps("mainpc", "core-platform") == set()
    assert deps("mainpc", "memory-stack") == {"core-platform"}
    assert deps("mainpc", "model-manager-gpu") == {"memory-stack"}
    stage4 = {"language-stack-gpu", "reasoning-gpu", "vision-gpu", "utility-gpu"}
    assert all(deps("mainpc", s) == {"model-manager-gpu"} for s in stage4)
    assert deps("mainpc", "audio-emotion") == stage4
    # PC2: ResourceManager and others depend on ObservabilityHub, the hub service.
    assert deps("pc2", "infra-core-cpu") == {"hub"}
    assert deps("pc2", "memory-reasoning-gpu") == {"infra-core-cpu"}
    assert deps("pc2", "vision-dream-gpu") == {"memory-reasoning-gpu"}
    assert deps("pc2", "tutor-suite-cpu") == {"vision-dream-gpu"}


def test_the_generation_time_checks_find_nothing_wrong(fleet: Topology) -> None:
    findings = check_bundles(fleet)
    assert [f for f in findings if f.severity == "error"] == []
    assert {f.code for f in findings} <= {"mount-target-not-built"}


@pytest.mark.parametrize("machine", MACHINES)
def test_the_hub(fleet: Topology, compose: dict[str, dict[str, Any]], machine: str) -> None:
    hub = compose[machine]["services"]["hub"]
    peer = next(m for m in fleet.machines if m.name != machine)
    env = hub["environment"]
    assert defaults(env["FLEET_PEERS"]) == f"http://{peer.address}:{peer.hub_port}"
    assert env["MACHINE_TYPE"] == machine and env["SERVICE_DISCOVERY_MODE"] == "container_dns"
    assert hub["volumes"] == [f"observability_data:{env['FLEET_DATA_DIR']}"]  # a named volume
    assert hub["healthcheck"]["test"][-3:] == [f"http://127.0.0.1:{fleet.machine(machine).hub_port}/ready",
                                               "--timeout", "3"]
    assert published(hub["ports"][0]) == ("0.0.0.0", fleet.machine(machine).hub_port, "tcp")


def test_the_gpu_exporter_sees_host_pids_proc_and_docker_read_only(compose: dict[str, dict[str, Any]]) -> None:
    exp = compose["mainpc"]["services"]["gpu-exporter"]
    assert exp["pid"] == "host"
    assert set(exp["volumes"]) == {"/proc:/host/proc:ro", "/var/run/docker.sock:/var/run/docker.sock:ro",
                                   "/sys/fs/cgroup:/host/sys/fs/cgroup:ro"}
    assert exp["environment"]["FLEET_GPU_PROC_ROOT"] == "/host/proc"
    assert exp["environment"]["FLEET_CGROUP_ROOT"] == "/host/sys/fs/cgroup"
    assert exp["environment"]["FLEET_COMPOSE_PROJECT"] == "${COMPOSE_PROJECT_NAME:-}"
    assert exp["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


def test_generated_prometheus_and_dashboards_are_mounted_where_their_generators_put_them(
        compose: dict[str, dict[str, Any]]) -> None:
    s = compose["pc2"]["services"]
    assert s["prometheus"]["volumes"][:2] == [
        "../../prometheus/pc2/prometheus.yml:/etc/prometheus/config/prometheus.yml:ro",
        "../../prometheus/rules:/etc/prometheus/rules:ro"]
    assert s["alertmanager"]["volumes"][0] == ("../../prometheus/alertmanager/alertmanager.yml:"
                                               "/etc/alertmanager/alertmanager.yml:ro")
    assert s["grafana"]["volumes"][:2] == ["../../dashboards/json:/var/lib/grafana/dashboards/fleetobs:ro",
                                           "../../dashboards/provisioning/pc2:/etc/grafana/provisioning:ro"]


def test_the_plans_volumes_bind_under_data_root(compose: dict[str, dict[str, Any]]) -> None:
    vols = compose["mainpc"]["volumes"]
    assert vols["huggingface_cache"]["driver_opts"]["device"] == "${DATA_ROOT:-/data}/models/huggingface"
    assert vols["observability_data"]["driver_opts"] == {"type": "none", "o": "bind",
                                                         "device": "${DATA_ROOT:-/data}/observability"}
    assert vols["system_logs"]["driver_opts"]["device"] == "${DATA_ROOT:-/data}/logs"


@pytest.mark.parametrize("machine", MACHINES)
def test_env_example_documents_every_variable_with_the_same_default(rendering: dict[str, str], machine: str) -> None:
    used = dict(VAR.findall(rendering[f"compose/{machine}/docker-compose.yml"]))
    example = rendering[f"compose/{machine}/.env.example"]
    documented = dict(line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#"))
    assert documented == used
    assert "CORE_PLATFORM_IMAGE" in documented if machine == "mainpc" else "INFRA_CORE_CPU_IMAGE" in documented


def test_published_ports_are_unique_per_machine_and_across_the_test_bundles(
        compose: dict[str, dict[str, Any]], compose_test: dict[str, dict[str, Any]], rendering: dict[str, str]) -> None:
    for m in MACHINES:
        ports = [published(p) for s in compose[m]["services"].values() for p in s.get("ports", [])]
        assert len(ports) == len(set(ports))
    # One daemon runs both machines' test projects: their host ports must not clash.
    seen: list[tuple[str, int]] = []
    for m in MACHINES:
        env = dict(line.split("=", 1) for line in rendering[f"compose/{m}/test.env"].splitlines()
                   if line and not line.startswith("#"))
        for s in compose_test[m]["services"].values():
            for p in s.get("ports", []):
                resolved = VAR.sub(lambda x, env=env: env.get(x.group(1), x.group(2)), p)
                addr, port, proto = published(resolved) or ("", 0, "")
                assert addr == "127.0.0.1"
                seen.append((proto, port))
    assert len(seen) == len(set(seen))


def test_an_agent_the_other_machine_depends_on_is_published_on_its_relay() -> None:
    from fleetobs.generate.compose.bundle import bundle

    t = Topology.model_validate({
        "machines": [{"name": "m", "hub_port": 9000, "address": "m"}, {"name": "n", "hub_port": 9100, "address": "n"}],
        "groups": [{"name": "g", "machine": "m"}, {"name": "h", "machine": "n"}],
        "agents": [{"name": "Shared", "machine": "m", "group": "g", "port": 7000, "health_check_port": 8000},
                   {"name": "Local", "machine": "m", "group": "g", "port": 7001, "health_check_port": 8001},
                   {"name": "User", "machine": "n", "group": "h", "port": 7100, "health_check_port": 8100,
                    "dependencies": ["Shared"]}],
    })
    services = bundle(t, "m").document["services"]
    assert services["g-net"]["ports"] == ["${PUBLISH_ADDRESS:-0.0.0.0}:7000:7000"]
    assert "ports" not in bundle(t, "n").document["services"]["h-net"]
