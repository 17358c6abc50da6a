"""The generation-time checks catch each mistake they exist for (fleetobs/generate/compose/lint.py)."""

from __future__ import annotations

import copy
from typing import Any

from fleetobs.generate.compose.lint import (
    defaults,
    depends_on_order,
    host_port_clashes,
    lint_bundle,
    missing_mounts,
    published,
    unread_env,
)
from fleetobs.topology import Topology


def test_defaults_and_published_ports() -> None:
    assert defaults("${A:-x}:${B:-9000}:9000") == "x:9000:9000"
    assert published("${PUBLISH_ADDRESS:-0.0.0.0}:${P:-9094}:9094/udp") == ("0.0.0.0", 9094, "udp")
    assert published("8080:80") == ("0.0.0.0", 8080, "tcp")
    assert published("80") is None


def test_a_host_port_published_twice_is_an_error() -> None:
    services = {"a": {"ports": ["0.0.0.0:9090:9090"]}, "b": {"ports": ["${X:-9090}:80"]},
                "c": {"ports": ["9090:9090/udp"]}}
    (f,) = host_port_clashes("m", services)
    assert (f.code, f.severity, f.data["services"]) == ("host-port-clash", "error", ["a", "b"])


def test_mounts_are_checked_against_the_rendering_not_the_disk() -> None:
    services = {"p": {"volumes": ["../../prometheus/m/prometheus.yml:/etc/p.yml:ro", "../../prometheus/rules:/r:ro",
                                  "./group/x.json:/x:ro", "data:/data", "/proc:/host/proc:ro"]}}
    built = {"prometheus/README.md": "", "prometheus/m/prometheus.yml": "", "prometheus/rules/fleet.yml": "",
             "compose/m/group/x.json": ""}
    assert missing_mounts("m", services, built) == []
    (f,) = missing_mounts("m", services, {k: v for k, v in built.items() if k != "compose/m/group/x.json"})
    assert (f.code, f.severity, f.data["path"]) == ("missing-mount", "error", "compose/m/group/x.json")
    # A built target that lacks the file: an error; a target that renders only its README: a warning.
    partial = {**built, "prometheus/m/other.yml": ""}
    del partial["prometheus/m/prometheus.yml"]
    assert [f.code for f in missing_mounts("m", services, partial)] == ["missing-mount"]
    unbuilt = {"prometheus/README.md": "", "compose/m/group/x.json": ""}
    assert {f.code for f in missing_mounts("m", services, unbuilt)} == {"mount-target-not-built"}


def test_an_environment_variable_nothing_reads_is_an_error() -> None:
    services = {"hub": {"image": "${FLEETOBS_IMAGE:-fleetobs:1}", "environment": {"MACHINE_TYPE": "m",
                                                                                "FLEET_NOPE": "1"}},
                "g": {"image": "${G_IMAGE:-x:1}", "environment": {"PYTORCH_CUDA_ALLOC_CONF": "x", "HF_HOME": "/c"}},
                "grafana": {"image": "${GRAFANA_IMAGE:-grafana/grafana:11.6.0}", "environment": {"GF_X_Y": "1"}},
                "redis": {"image": "redis:7", "environment": {"PYTORCH_CUDA_ALLOC_CONF": "x"}}}
    found = {(f.data["service"], f.data["variable"]) for f in unread_env("m", services, {"g"})}
    assert found == {("hub", "FLEET_NOPE"), ("redis", "PYTORCH_CUDA_ALLOC_CONF")}


def _topology() -> Topology:
    return Topology.model_validate({
        "machines": [{"name": "m", "hub_port": 9000, "address": "m"}],
        "groups": [{"name": "a", "machine": "m", "startup_stage": 1},
                   {"name": "b", "machine": "m", "startup_stage": 2}],
    })


def test_depends_on_against_stages_and_cycles() -> None:
    t = _topology()
    ok = {"a": {"depends_on": {"hub": {}}}, "b": {"depends_on": {"a": {}}}, "hub": {}}
    assert depends_on_order(t, "m", ok) == []
    backwards = {"a": {"depends_on": {"b": {}}}, "b": {}}
    (f,) = depends_on_order(t, "m", backwards)
    assert f.message == "group a (stage 1) on m waits for b (stage 2)"
    cycle = {"x": {"depends_on": {"y": {}}}, "y": {"depends_on": {"x": {}}}, "z": {"depends_on": {"ghost": {}}}}
    messages = sorted(f.message for f in depends_on_order(t, "m", cycle))
    assert messages == ["depends_on cycle on m: x -> y -> x", "z on m depends on unknown ghost"]


def test_a_real_bundle_with_a_mistake_is_caught(fleet: Topology, compose: dict[str, dict[str, Any]],
                                                rendering: dict[str, str]) -> None:
    doc = copy.deepcopy(compose["mainpc"])
    assert [f for f in lint_bundle(fleet, "mainpc", doc, rendering) if f.severity == "error"] == []
    doc["services"]["loki"]["ports"] = ["${PUBLISH_ADDRESS:-0.0.0.0}:${LOKI_HOST_PORT:-9090}:3100"]
    doc["services"]["core-platform"]["environment"]["REDIS_URL"] = "redis://redis:6379"
    doc["services"]["core-platform"]["volumes"].append("./group/missing.py:/x:ro")
    codes = sorted(f.code for f in lint_bundle(fleet, "mainpc", doc, rendering) if f.severity == "error")
    assert codes == ["host-port-clash", "missing-mount", "unread-env"]
