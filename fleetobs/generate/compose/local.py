"""The bundle for a local Docker daemon without GPUs or a registry: what the real-Docker tests run.

``docker-compose.test.yml`` is ``docker-compose.yml`` with exactly these changes (a full
file, not an override: compose 1.x merges ``devices`` reservations and ``ports`` by union,
so an override cannot take a GPU reservation away):

- no GPU device reservations (no NVIDIA runtime on the test host);
- no Grafana (no image; the dashboards are validated against Grafana's schemas instead);
- every group runs the fleetobs image's group simulator (``fleetobs simulate-group``, the
  real BaseAgent's quirks, constructor shortened by ``SIM_CONSTRUCTOR_SECONDS``, ready keys
  kept ``SIM_READY_TTL`` s instead of BaseAgent's 300 so a long test run is not cut by the
  expiry) instead of the agents' image, without ``init: true`` (that image's tini is PID 1 already);
- the plan's bind-mounted volumes are plain named volumes (no ``DATA_ROOT`` to prepare);
- Alertmanager runs without cluster gossip (no second host to advertise);
- healthchecks poll every 5 s (and count from 60 s) so the test waits seconds, not minutes;
- each hub also joins the external network ``FLEETOBS_CROSS_NETWORK`` under its machine's
  topology ``address`` (``mainpc``, ``pc2``): both machines' projects share one daemon, and
  the hubs reach each other at ``http://<address>:<hub_port>`` exactly as in production;
- a relay per other machine (``peer-<machine>``) carries that machine's ``address`` on this
  machine's network, so Prometheus scrapes the peer hub at ``<address>:<hub_port>`` as its
  generated config says.

``test.env`` sets the locally built images and loopback host ports that do not clash between
the two machines' projects (20000 + 1000 x machine index + a per-service offset).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from fleetobs.generate.build import HEADER
from fleetobs.generate.compose import healthchecks as hc
from fleetobs.generate.compose import images
from fleetobs.generate.compose.bundle import PLAN_VOLUMES, bundle
from fleetobs.generate.compose.group_services import ordered_groups
from fleetobs.generate.compose.stack_services import NETWORK
from fleetobs.generate.stack import Stack, peers, stacks
from fleetobs.topology.model import Topology

TEST_COMPOSE_FILE = "docker-compose.test.yml"
TEST_ENV_FILE = "test.env"
CROSS_NETWORK = "cross"
CROSS_NETWORK_DEFAULT = "fleetobs-cross"
POLL = "5s"  # each check starts a Python: every 2 s over ~30 containers loads a small host

#: Locally built images (fleetobs/testing/docker/images.py): the fleetobs image and stand-ins.
TEST_IMAGES: dict[str, str] = {
    images.FLEETOBS.variable: "fleetobs:local",
    images.PROMETHEUS.variable: "fleetobs-standin-prometheus:local",
    images.ALERTMANAGER.variable: "fleetobs-standin-alertmanager:local",
    images.LOKI.variable: "fleetobs-standin-loki:local",
    images.REDIS.variable: "fleetobs-standin-redis:local",
    images.NATS.variable: "fleetobs-standin-nats:local",
}
#: Offsets of the published host ports in test.env.
PORT_OFFSETS: dict[str, int] = {
    "HUB_HOST_PORT": 0, "GPU_EXPORTER_HOST_PORT": 1, "PROMETHEUS_HOST_PORT": 2, "ALERTMANAGER_HOST_PORT": 3,
    "ALERTMANAGER_CLUSTER_HOST_PORT": 4, "LOKI_HOST_PORT": 5, "GRAFANA_HOST_PORT": 6,
}
TEST_PORT_BASE = 20000


@dataclass(frozen=True)
class LocalBundle:
    document: dict[str, Any]
    env: str
    comment: str


def test_host_ports(topology: Topology, machine: str) -> dict[str, int]:
    index = [m.name for m in topology.machines].index(machine)
    return {name: TEST_PORT_BASE + 1000 * index + off for name, off in PORT_OFFSETS.items()}


def _fast(check: dict[str, Any]) -> dict[str, Any]:
    return {**check, "interval": POLL, "start_period": "60s"}


def cross_alias(address: str) -> str:
    """A hub's second name on the cross network: only hubs answer to it."""
    return f"{address}-hub"


def peer_relay_name(machine: str) -> str:
    return f"peer-{machine}"


def _peer_relay(other: Stack) -> dict[str, Any]:
    """The other machine's hub under its topology ``address`` on this machine's network.

    The generated prometheus.yml scrapes the peer hub at ``<address>:<hub_port>``; in
    production that name is the other host. Here Prometheus is not on the cross network
    (there every hub also answers to ``hub``, which would make its own ``hub`` ambiguous),
    so a relay on both networks carries the name and forwards to the hub's cross alias."""
    port = other.hub.port
    routes = [f"0.0.0.0:{port}={cross_alias(other.machine.address)}:{port}"]
    return {
        "image": "${" + images.FLEETOBS.variable + ":-" + images.FLEETOBS.default + "}",
        "command": ["python3", "-m", "fleetobs.container.relay", *routes],
        "restart": "unless-stopped",
        "networks": {NETWORK: {"aliases": [other.machine.address]}, CROSS_NETWORK: {}},
        "healthcheck": _fast(hc.relay([f"127.0.0.1:{port}={cross_alias(other.machine.address)}:{port}"],
                                      hc.Timing(start_period="10s"))),
    }


def local_bundle(topology: Topology, machine: str) -> LocalBundle:
    prod = bundle(topology, machine)
    doc = copy.deepcopy(prod.document)
    services: dict[str, dict[str, Any]] = doc["services"]
    stack = stacks(topology)[machine]
    del services[stack.grafana.name]
    for svc in services.values():
        resources = svc.get("deploy", {}).get("resources", {})
        resources.pop("reservations", None)
        if "healthcheck" in svc:
            svc["healthcheck"] = _fast(svc["healthcheck"])
    for g in ordered_groups(topology, machine):
        svc = services[g.service_name]
        svc["image"] = "${" + images.FLEETOBS.variable + ":-" + images.FLEETOBS.default + "}"
        svc["command"] = ["fleetobs", "simulate-group", "--manifest", hc.MANIFEST,
                          "--constructor-seconds", "${SIM_CONSTRUCTOR_SECONDS:-2}",
                          "--ready-ttl", "${SIM_READY_TTL:-3600}"]
        del svc["init"]  # the fleetobs image's tini is PID 1 already
    am = services[stack.alertmanager.name]
    am["command"] = [c for c in am["command"] if not c.startswith(("--cluster.peer=", "--cluster.advertise"))]
    am["command"] = ["--cluster.listen-address=" if c.startswith("--cluster.listen-address=") else c
                     for c in am["command"]]
    hub = services[stack.hub.name]
    hub["networks"] = {n: {} for n in hub["networks"]}
    hub["networks"][CROSS_NETWORK] = {"aliases": [stack.machine.address, cross_alias(stack.machine.address)]}
    for other in peers(topology, machine):
        services[peer_relay_name(other.machine.name)] = _peer_relay(other)
    doc["networks"][CROSS_NETWORK] = {"external": True,
                                      "name": "${FLEETOBS_CROSS_NETWORK:-" + CROSS_NETWORK_DEFAULT + "}"}
    for name in PLAN_VOLUMES:
        doc["volumes"][name] = {}
    doc["volumes"].pop("grafana_data", None)
    env_lines = [f"# {HEADER}",
                 f"# Machine {machine} on a local Docker daemon: docker-compose --env-file {TEST_ENV_FILE} "
                 f"-f {TEST_COMPOSE_FILE} up -d",
                 f"# (the external network first: docker network create {CROSS_NETWORK_DEFAULT})",
                 f"COMPOSE_PROJECT_NAME=fleetobs-test-{machine}",
                 "PUBLISH_ADDRESS=127.0.0.1",
                 f"FLEETOBS_CROSS_NETWORK={CROSS_NETWORK_DEFAULT}",
                 "SIM_CONSTRUCTOR_SECONDS=2",
                 "SIM_READY_TTL=3600"]
    env_lines += [f"{k}={v}" for k, v in TEST_IMAGES.items()]
    env_lines += [f"{k}={v}" for k, v in test_host_ports(topology, machine).items()]
    comment = (f"Machine {machine} on a local Docker daemon (tests): docker-compose.yml without GPU "
               "reservations or Grafana,\ngroups played by the fleetobs simulator; fleetobs/generate/compose/"
               "local.py lists every difference.")
    return LocalBundle(doc, "\n".join(env_lines) + "\n", comment)
