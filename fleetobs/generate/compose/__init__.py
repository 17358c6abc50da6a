"""Generator of the top-level ``compose/`` folder (see fleetobs/generate/__init__.py).

Per machine: ``docker-compose.yml`` (the observability stack, the machine's Redis and NATS,
one service per container group and its relay), ``.env.example`` (every variable with its
default), ``group/`` (the group healthcheck script and each group's manifest), and the
local-daemon variant the real-Docker tests run (``docker-compose.test.yml``, ``test.env``;
see local.py). docs/compose.md explains the choices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleetobs.generate.build import readme
from fleetobs.generate.compose.bundle import COMPOSE_FILE, bundle, dump
from fleetobs.generate.compose.local import TEST_COMPOSE_FILE, TEST_ENV_FILE, local_bundle

if TYPE_CHECKING:
    from fleetobs.topology.model import Topology

ENV_HEADER = """Copy to .env next to docker-compose.yml and adjust; docker-compose reads it.
Every value below is the default the compose file uses when the variable is unset."""

README = """\
Both machines' compose bundles, generated from the topology (docs/compose.md explains them).

| file | what |
| --- | --- |
| `<machine>/docker-compose.yml` | the machine's stack (hub, GPU exporter, Prometheus, Alertmanager, Loki, \
Grafana), its agents' Redis and NATS, one service per container group and its relay |
| `<machine>/.env.example` | every variable the bundle reads, with its default: copy to `.env` |
| `<machine>/group/healthcheck.py` | the group healthcheck (stdlib + pyzmq), mounted read-only into each group |
| `<machine>/group/<group>.json` | each group's agents in start order, with their ports |
| `<machine>/docker-compose.test.yml`, `<machine>/test.env` | the bundle on a local daemon without GPUs (tests) |

Deploy on each machine, from the repository (the bundle mounts `../../prometheus/` and
`../../dashboards/`):

```
cd compose/mainpc && cp .env.example .env && docker-compose up -d
```
"""


def render(topology: Topology) -> dict[str, str]:
    """Files of ``compose/``, relative to it."""
    out: dict[str, str] = {"README.md": readme("compose", README)}
    for m in topology.machines:
        b = bundle(topology, m.name)
        out[f"{m.name}/{COMPOSE_FILE}"] = dump(
            b.document, f"Machine {m.name}: docker-compose up -d (variables: .env.example, docs/compose.md).")
        out[f"{m.name}/.env.example"] = b.variables.env_example(f"{ENV_HEADER}\nMachine {m.name}.")
        for rel, text in b.files.items():
            out[f"{m.name}/{rel}"] = text
        local = local_bundle(topology, m.name)
        out[f"{m.name}/{TEST_COMPOSE_FILE}"] = dump(local.document, local.comment)
        out[f"{m.name}/{TEST_ENV_FILE}"] = local.env
    return out
