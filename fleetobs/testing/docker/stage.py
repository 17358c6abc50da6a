"""A copy of the generated bundles to bring up: compose/ and the prometheus/ it mounts.

The compose files mount ``../../prometheus/<machine>/prometheus.yml``, ``../../prometheus/
rules`` and ``../../prometheus/alertmanager/alertmanager.yml``. Until the generated
Prometheus configuration exists (``fleetobs build`` target ``prometheus``), a minimal one
is rendered here from the same stack layout (fleetobs/generate/stack.py): each project's
hub, GPU exporter, Prometheus and Alertmanager, by service name.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from fleetobs.generate.stack import Stack, stacks
from fleetobs.topology.model import Topology

REPO = Path(__file__).resolve().parents[3]


def generated_prometheus(repo: Path = REPO) -> bool:
    """Whether the repository has the generated Prometheus configuration (the switch)."""
    return (repo / "prometheus" / "mainpc" / "prometheus.yml").is_file()


def minimal_prometheus(stack: Stack) -> str:
    def job(name: str, target: str) -> dict[str, object]:
        return {"job_name": name, "static_configs": [{"targets": [target]}]}

    config = {
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s",
                   "external_labels": {"machine": stack.machine.name}},
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [stack.alertmanager.local()]}]}]},
        "rule_files": ["/etc/prometheus/rules/*.yml"],
        "scrape_configs": [
            job("fleet-hub", stack.hub.local()),
            job("fleet-gpu-exporter", stack.gpu_exporter.local()),
            job("prometheus", f"127.0.0.1:{stack.prometheus.port}"),
            job("alertmanager", stack.alertmanager.local()),
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


MINIMAL_ALERTMANAGER = "route:\n  receiver: default\nreceivers:\n  - name: default\n"


def stage_bundles(topology: Topology, out: Path, repo: Path = REPO) -> Path:
    """``out`` with compose/ and prometheus/ as the bundles expect them; returns ``out``."""
    shutil.copytree(repo / "compose", out / "compose", dirs_exist_ok=True)
    if generated_prometheus(repo):
        shutil.copytree(repo / "prometheus", out / "prometheus", dirs_exist_ok=True)
    else:
        for name, stack in stacks(topology).items():
            d = out / "prometheus" / name
            d.mkdir(parents=True, exist_ok=True)
            (d / "prometheus.yml").write_text(minimal_prometheus(stack))
        (out / "prometheus" / "alertmanager").mkdir(parents=True, exist_ok=True)
        (out / "prometheus" / "alertmanager" / "alertmanager.yml").write_text(MINIMAL_ALERTMANAGER)
        (out / "prometheus" / "rules").mkdir(parents=True, exist_ok=True)
    for path in out.rglob("*"):  # the stand-ins run as nobody: everything world-readable
        path.chmod(0o755 if path.is_dir() else 0o644)
    return out
