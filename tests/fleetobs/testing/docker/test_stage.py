"""The staged bundles: compose/ copied, the mounted Prometheus files present and valid."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from fleetobs.testing.binaries import require_binary
from fleetobs.testing.docker.stage import generated_prometheus, stage_bundles
from fleetobs.topology.load import load_topology


def test_every_file_a_test_bundle_mounts_exists(tmp_path: Path) -> None:
    root = stage_bundles(load_topology(None), tmp_path)
    for machine in ("mainpc", "pc2"):
        bundle = root / "compose" / machine
        doc = yaml.safe_load((bundle / "docker-compose.test.yml").read_text())
        for svc in doc["services"].values():
            for volume in svc.get("volumes", []):
                source = volume.split(":", 1)[0]
                if source.startswith("."):
                    assert (bundle / source).resolve().exists(), (machine, volume)


@pytest.mark.binaries
def test_the_mounted_prometheus_config_is_valid(tmp_path: Path) -> None:
    """The minimal one (until the generated configuration exists) scrapes the project's stack."""
    promtool = require_binary("promtool")
    root = stage_bundles(load_topology(None), tmp_path)
    config = root / "prometheus" / "pc2" / "prometheus.yml"
    if not generated_prometheus():
        targets = {t for job in yaml.safe_load(config.read_text())["scrape_configs"]
                   for sc in job["static_configs"] for t in sc["targets"]}
        assert targets == {"hub:9100", "gpu-exporter:9400", "127.0.0.1:9090", "alertmanager:9093"}
    proc = subprocess.run([promtool, "check", "config", "--syntax-only", str(config)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
