"""Pinned images of the bundle (never ``:latest``), each overridable by a variable.

Versions are chosen for what the rest of fleetobs is validated against: Grafana
11.6.0 (links.py, the dashboards' schemas), Prometheus 2.x and Alertmanager 0.2x (the
rules and configs are tested with Debian's 2.42 / 0.25; these are the newer releases of
the same major lines). Images with a shell get ``CMD-SHELL ... || exit 1`` healthchecks
(busybox wget exits 1 on failure, GNU wget up to 8; Docker reserves 2).
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetobs import __version__
from fleetobs.generate.links import GRAFANA_VERSION


@dataclass(frozen=True)
class Image:
    variable: str
    default: str
    doc: str


FLEETOBS = Image("FLEETOBS_IMAGE", f"fleetobs:{__version__}",
                 "the fleetobs image (hub, GPU exporter, relays): built from the repository's Dockerfile")
PROMETHEUS = Image("PROMETHEUS_IMAGE", "prom/prometheus:v2.53.4", "Prometheus")
ALERTMANAGER = Image("ALERTMANAGER_IMAGE", "prom/alertmanager:v0.27.0", "Alertmanager")
LOKI = Image("LOKI_IMAGE", "grafana/loki:3.4.2", "Loki")
GRAFANA = Image("GRAFANA_IMAGE", f"grafana/grafana:{GRAFANA_VERSION}", "Grafana (the dashboards are validated for it)")
REDIS = Image("REDIS_IMAGE", "redis:7.2.7-alpine", "the machine's Redis for the agents (BaseAgent's ready keys)")
NATS = Image("NATS_IMAGE", "nats:2.10.24-alpine", "the machine's NATS for the agents")

STACK_IMAGES: tuple[Image, ...] = (FLEETOBS, PROMETHEUS, ALERTMANAGER, LOKI, GRAFANA, REDIS, NATS)

#: The commit of the real system the topology was imported from: the agents' images' default tag.
AGENTS_TAG = "afcc8738"


def agent_image(service: str) -> Image:
    """A group's agents' image: theirs, not ours (the plan builds one per group)."""
    var = service.upper().replace("-", "_") + "_IMAGE"
    return Image(var, f"voice-assistant/{service}:{AGENTS_TAG}",
                 f"the agents' image for group {service} (the real system's, built from its Dockerfile)")
