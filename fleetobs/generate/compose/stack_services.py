"""One machine's observability services: hub, GPU exporter, Prometheus, Alertmanager, Loki,
Grafana, and the Redis and NATS its agents share.

Names and ports come from fleetobs/generate/stack.py. Published host ports are variables
(``HUB_HOST_PORT``, ...) whose defaults are the container ports, because the other machine
reaches a service at its topology ``address`` on that port (``Stack.remote``); the bind
address is ``PUBLISH_ADDRESS`` (``0.0.0.0``; tests use 127.0.0.1). The generated
prometheus/ and dashboards/ folders are mounted from ``../../`` (the bundle is
``compose/<machine>/`` of the repository, or of a copy of ``fleetobs build -o DIR``).
"""

from __future__ import annotations

from typing import Any

from fleetobs.generate import links
from fleetobs.generate.compose import healthchecks as hc
from fleetobs.generate.compose import images
from fleetobs.generate.compose.variables import Variables
from fleetobs.generate.stack import ALERTMANAGER_CLUSTER_PORT, Service, Stack

#: Inside the containers.
HUB_DATA_DIR = "/var/lib/fleetobs"
# In a folder of its own: the generated config names its rule files as ../rules/*.yml.
PROMETHEUS_CONFIG = "/etc/prometheus/config/prometheus.yml"
PROMETHEUS_RULES = "/etc/prometheus/rules"
ALERTMANAGER_CONFIG = "/etc/alertmanager/alertmanager.yml"
HOST_PROC = "/host/proc"
HOST_CGROUP = "/host/sys/fs/cgroup"
DOCKER_SOCKET = "/var/run/docker.sock"

NETWORK = "fleet"  # the machine's one bridge network (a bridge cannot span machines)


# Services of the fleetobs image get no ``init: true``: the image's entrypoint is tini,
# already PID 1 (a second init only makes tini warn that it is not).


def image(v: Variables, img: images.Image) -> str:
    return v.ref(img.variable, img.default, img.doc)


def publish(v: Variables, svc: Service, variable: str, what: str, protocol: str = "") -> str:
    addr = v.ref("PUBLISH_ADDRESS", "0.0.0.0",
                 "host address published ports bind to (127.0.0.1 keeps the machine's services local)")
    host = v.ref(variable, svc.port, f"host port of {what} (the other machine reaches it there)")
    return f"{addr}:{host}:{svc.port}" + (f"/{protocol}" if protocol else "")


def limits(memory: str, cpus: float | None = None) -> dict[str, Any]:
    lim: dict[str, Any] = {"memory": memory}
    if cpus is not None:
        lim["cpus"] = f"{cpus:g}"
    return {"resources": {"limits": lim}}


def gpu_reservation(capabilities: tuple[str, ...] = ("gpu",)) -> dict[str, Any]:
    """All of the machine's GPUs (each machine has one): the NVIDIA runtime's device request."""
    return {"driver": "nvidia", "count": "all", "capabilities": list(capabilities)}


def with_gpu(deploy: dict[str, Any], capabilities: tuple[str, ...] = ("gpu",)) -> dict[str, Any]:
    resources = {**deploy.get("resources", {}), "reservations": {"devices": [gpu_reservation(capabilities)]}}
    return {**deploy, "resources": resources}


def peer_urls(stack: Stack, peers: list[Stack]) -> str:
    return ",".join(f"http://{p.remote(p.hub)}" for p in peers)


def hub(v: Variables, stack: Stack, peers: list[Stack]) -> dict[str, Any]:
    m = stack.machine
    env: dict[str, str] = {
        "MACHINE_TYPE": m.name,
        "BIND_ADDRESS": "0.0.0.0",
        "FLEET_HUB_PORT": str(stack.hub.port),
        "SERVICE_DISCOVERY_MODE": "container_dns",
        "FLEET_DATA_DIR": HUB_DATA_DIR,
        "FLEET_GPU_EXPORTER_URL": f"http://{stack.gpu_exporter.local()}",
        "FLEET_LOKI_URL": f"http://{stack.loki.local()}",
        "FLEET_LOG_LEVEL": v.ref("FLEET_LOG_LEVEL", "INFO", "log level of the fleetobs services"),
    }
    if peers:
        # Explicit, from the topology: the other machines' address and hub_port.
        env["FLEET_PEERS"] = v.ref("HUB_PEERS", peer_urls(stack, peers),
                                   "the other machines' hubs (comma-separated URLs) this hub syncs with")
    return {
        "image": image(v, images.FLEETOBS),
        "command": ["fleetobs", "hub"],
        "restart": "unless-stopped",
        "environment": env,
        "volumes": [f"observability_data:{HUB_DATA_DIR}"],
        "ports": [publish(v, stack.hub, "HUB_HOST_PORT", "the hub (sync between the machines' hubs)")],
        "networks": [NETWORK],
        "healthcheck": hc.fleetobs_http(f"http://127.0.0.1:{stack.hub.port}/ready"),
        "stop_grace_period": "10s",
        "deploy": limits("1g", 2),
    }


def gpu_exporter(v: Variables, stack: Stack) -> dict[str, Any]:
    port = stack.gpu_exporter.port
    return {
        "image": image(v, images.FLEETOBS),
        "command": ["fleetobs", "gpu-exporter"],
        "restart": "unless-stopped",
        # PIDs of GPU processes are host PIDs (NVML); their cgroups name the containers.
        "pid": "host",
        # The Docker socket is root:docker 0660 and the image runs as non-root.
        "group_add": [v.ref("DOCKER_GID", 999, "group id owning /var/run/docker.sock on the host "
                                               "(getent group docker), for the GPU exporter")],
        "environment": {
            "MACHINE_TYPE": stack.machine.name,
            "BIND_ADDRESS": "0.0.0.0",
            "FLEET_GPU_EXPORTER_PORT": str(port),
            "FLEET_GPU_PROC_ROOT": HOST_PROC,
            "FLEET_DOCKER_SOCKET": DOCKER_SOCKET,
            "FLEET_CGROUP_ROOT": HOST_CGROUP,
            # Only this project's containers (two projects on one daemon: the tests); empty,
            # as on a host with one project: every container.
            "FLEET_COMPOSE_PROJECT": v.ref("COMPOSE_PROJECT_NAME", "",
                                           "compose project name; empty: the folder's name (mainpc, pc2)"),
            "FLEET_LOG_LEVEL": v.ref("FLEET_LOG_LEVEL", "INFO", "log level of the fleetobs services"),
            "NVIDIA_DRIVER_CAPABILITIES": "utility",
        },
        "volumes": [f"/proc:{HOST_PROC}:ro", f"{DOCKER_SOCKET}:{DOCKER_SOCKET}:ro",
                    f"/sys/fs/cgroup:{HOST_CGROUP}:ro"],  # containers' CPU, memory, OOM kills
        "ports": [publish(v, stack.gpu_exporter, "GPU_EXPORTER_HOST_PORT", "the GPU exporter")],
        "networks": [NETWORK],
        "healthcheck": hc.fleetobs_http(f"http://127.0.0.1:{port}/metrics"),
        "deploy": with_gpu(limits("256m", 0.5), ("gpu", "utility")),
    }


def prometheus(v: Variables, stack: Stack) -> dict[str, Any]:
    m = stack.machine.name
    return {
        "image": image(v, images.PROMETHEUS),
        "command": [
            f"--config.file={PROMETHEUS_CONFIG}",
            "--storage.tsdb.path=/prometheus",
            "--storage.tsdb.retention.time="
            + v.ref("PROMETHEUS_RETENTION", "15d", "how long Prometheus keeps samples"),
            "--web.enable-lifecycle",
        ],
        "restart": "unless-stopped",
        "volumes": [
            f"../../prometheus/{m}/prometheus.yml:{PROMETHEUS_CONFIG}:ro",
            f"../../prometheus/rules:{PROMETHEUS_RULES}:ro",
            "prometheus_data:/prometheus",
        ],
        "ports": [publish(v, stack.prometheus, "PROMETHEUS_HOST_PORT", "Prometheus")],
        "networks": [NETWORK],
        "healthcheck": hc.shell(f"wget -q -O /dev/null http://127.0.0.1:{stack.prometheus.port}/-/ready"),
        "deploy": limits("2g", 2),
    }


def alertmanager(v: Variables, stack: Stack, peers: list[Stack]) -> dict[str, Any]:
    cluster = ALERTMANAGER_CLUSTER_PORT
    command = [
        f"--config.file={ALERTMANAGER_CONFIG}",
        "--storage.path=/alertmanager",
        f"--cluster.listen-address=0.0.0.0:{cluster}",
        # Gossip crosses machines through the published port: advertise the host's IP
        # (Alertmanager needs an IP here; empty: its container IP, fine on one machine).
        "--cluster.advertise-address=" + v.ref(
            "ALERTMANAGER_ADVERTISE_ADDRESS", "",
            "IP:port the other machine's Alertmanager reaches this one's gossip at (e.g. 192.168.1.10:9094)"),
        *(f"--cluster.peer={p.machine.address}:{cluster}" for p in peers),
    ]
    cluster_svc = Service(stack.alertmanager.name, cluster)
    return {
        "image": image(v, images.ALERTMANAGER),
        "command": command,
        "restart": "unless-stopped",
        "volumes": [f"../../prometheus/alertmanager/alertmanager.yml:{ALERTMANAGER_CONFIG}:ro",
                    "alertmanager_data:/alertmanager"],
        "ports": [publish(v, stack.alertmanager, "ALERTMANAGER_HOST_PORT", "Alertmanager"),
                  publish(v, cluster_svc, "ALERTMANAGER_CLUSTER_HOST_PORT", "Alertmanager's gossip", "tcp"),
                  publish(v, cluster_svc, "ALERTMANAGER_CLUSTER_HOST_PORT", "Alertmanager's gossip", "udp")],
        "networks": [NETWORK],
        "healthcheck": hc.shell(f"wget -q -O /dev/null http://127.0.0.1:{stack.alertmanager.port}/-/ready"),
        "deploy": limits("256m", 0.5),
    }


def loki(v: Variables, stack: Stack) -> dict[str, Any]:
    # No healthcheck: Loki 3's image ships no HTTP client to run one with. Nothing waits on
    # it either: the hub spools log lines while Loki is away.
    return {
        "image": image(v, images.LOKI),
        "command": ["-config.file=/etc/loki/local-config.yaml"],
        "restart": "unless-stopped",
        "volumes": ["loki_data:/loki"],
        "ports": [publish(v, stack.loki, "LOKI_HOST_PORT", "Loki")],
        "networks": [NETWORK],
        "deploy": limits("1g", 1),
    }


def grafana(v: Variables, stack: Stack) -> dict[str, Any]:
    m = stack.machine.name
    return {
        "image": image(v, images.GRAFANA),
        "restart": "unless-stopped",
        "environment": {
            "GF_PATHS_PROVISIONING": links.GRAFANA_PROVISIONING_DIR,
            "GF_SECURITY_ADMIN_PASSWORD": v.ref("GRAFANA_ADMIN_PASSWORD", "admin",
                                                "Grafana's admin password (change it)"),
            "GF_USERS_ALLOW_SIGN_UP": "false",
            "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH": f"{links.GRAFANA_DASHBOARDS_DIR}/{links.OVERVIEW}.json",
        },
        "volumes": [
            f"../../dashboards/json:{links.GRAFANA_DASHBOARDS_DIR}:ro",
            f"../../dashboards/provisioning/{m}:{links.GRAFANA_PROVISIONING_DIR}:ro",
            "grafana_data:/var/lib/grafana",
        ],
        "ports": [publish(v, stack.grafana, "GRAFANA_HOST_PORT", "Grafana")],
        "networks": [NETWORK],
        "depends_on": {"prometheus": {"condition": "service_healthy"}},
        "healthcheck": hc.shell(f"wget -q -O /dev/null http://127.0.0.1:{stack.grafana.port}/api/health"),
        "deploy": limits("512m", 1),
    }


def redis(v: Variables, stack: Stack) -> dict[str, Any]:
    # Not published: only this machine's agents use it (through their group's relay).
    return {
        "image": image(v, images.REDIS),
        "command": ["redis-server", "--save", "", "--appendonly", "no", "--port", str(stack.redis.port)],
        "restart": "unless-stopped",
        "networks": [NETWORK],
        "healthcheck": hc.shell(f"redis-cli -p {stack.redis.port} ping | grep -q PONG"),
        "deploy": limits("512m", 1),
    }


def nats(v: Variables, stack: Stack) -> dict[str, Any]:
    monitor = 8222
    return {
        "image": image(v, images.NATS),
        "command": ["--port", str(stack.nats.port), "--http_port", str(monitor)],
        "restart": "unless-stopped",
        "networks": [NETWORK],
        "healthcheck": hc.shell(f"wget -q -O /dev/null http://127.0.0.1:{monitor}/healthz"),
        "deploy": limits("256m", 0.5),
    }


def stack_services(v: Variables, stack: Stack, peers: list[Stack]) -> dict[str, dict[str, Any]]:
    s = stack
    return {
        s.hub.name: hub(v, s, peers),
        s.gpu_exporter.name: gpu_exporter(v, s),
        s.prometheus.name: prometheus(v, s),
        s.alertmanager.name: alertmanager(v, s, peers),
        s.loki.name: loki(v, s),
        s.grafana.name: grafana(v, s),
        s.redis.name: redis(v, s),
        s.nats.name: nats(v, s),
    }
