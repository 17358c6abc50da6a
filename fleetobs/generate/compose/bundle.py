"""One machine's compose bundle as data: the compose document, its variables, its files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fleetobs.generate.build import HEADER
from fleetobs.generate.compose.group_services import group_services
from fleetobs.generate.compose.stack_services import NETWORK, stack_services
from fleetobs.generate.compose.variables import Variables
from fleetobs.generate.stack import peers, stacks
from fleetobs.topology.model import Topology

#: The plan's bind-mounted volumes, under ``DATA_ROOT`` (which must hold these folders).
PLAN_VOLUMES: dict[str, str] = {
    "huggingface_cache": "models/huggingface",
    "observability_data": "observability",
    "system_logs": "logs",
}
#: Plain named volumes of the stack.
STACK_VOLUMES = ("prometheus_data", "alertmanager_data", "loki_data", "grafana_data")

HEALTHCHECK_FILE = "group/healthcheck.py"
COMPOSE_FILE = "docker-compose.yml"


@dataclass
class Bundle:
    machine: str
    document: dict[str, Any]
    variables: Variables
    files: dict[str, str] = field(default_factory=dict)  # relative to compose/<machine>/


def healthcheck_source() -> str:
    """The group healthcheck script, copied verbatim into every bundle."""
    from fleetobs.container import healthcheck

    return Path(healthcheck.__file__).read_text(encoding="utf-8")


def bundle(topology: Topology, machine: str) -> Bundle:
    stack = stacks(topology)[machine]
    others = peers(topology, machine)
    v = Variables(section="images and versions")
    services = stack_services(v, stack, others)
    v.section = "container groups"
    peer_hub = f"http://{others[0].remote(others[0].hub)}" if others else None
    groups, files = group_services(v, topology, stack, peer_hub)
    services.update(groups)
    v.section = "volumes"
    data_root = v.ref("DATA_ROOT", "/data", "host folder holding the plan's volumes: models/huggingface, "
                                            "observability (owned by the fleetobs image's user), logs")
    volumes: dict[str, Any] = {
        name: {"driver": "local", "driver_opts": {"type": "none", "o": "bind", "device": f"{data_root}/{sub}"}}
        for name, sub in PLAN_VOLUMES.items()
    }
    for name in STACK_VOLUMES:
        volumes[name] = {}
    for g in topology.groups_on(machine):
        volumes[f"{g.name}_data"] = {}
    document = {
        "services": services,
        "networks": {NETWORK: {"driver": "bridge"}},
        "volumes": volumes,
    }
    files[HEALTHCHECK_FILE] = healthcheck_source()
    return Bundle(machine, document, v, files)


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    # Quote what YAML 1.1 readers (docker-compose 1.x) could read as another type.
    style = "'" if data in ("", "true", "false", "yes", "no", "on", "off") or ":" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def dump(document: dict[str, Any], comment: str) -> str:
    head = "".join(f"# {line}\n" if line else "#\n" for line in [HEADER, *comment.splitlines()])
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=200)
    return head + body
