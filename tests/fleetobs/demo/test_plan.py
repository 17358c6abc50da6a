"""What the demo runs for Prometheus and Alertmanager: the generator's files for the
demo topology, accepted by the real promtool and amtool, or a reason when not installed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from fleetobs.demo import plan
from fleetobs.testing.binaries import require_binary
from fleetobs.topology.load import load_topology
from fleetobs.topology.model import Topology


def demo_topology() -> Topology:
    base = load_topology(None)
    ports = plan.choose_ports(base, ephemeral=False)
    doc = base.model_dump(mode="json")
    for m in doc["machines"]:
        m["address"], m["hub_port"] = plan.HOSTS[m["name"]], ports.hub[m["name"]]
    return Topology.model_validate(doc)


def test_without_the_packages_both_are_listed_as_not_installed_with_the_apt_command(tmp_path: Path) -> None:
    topo = demo_topology()
    specs, skipped = plan.monitoring(topo, tmp_path, plan.choose_ports(topo, False), "http://127.0.0.1:1/x",
                                     which=lambda name: "/usr/bin/prometheus" if name == "prometheus" else None)
    assert specs == []
    assert [s.name for s in skipped] == ["prometheus", "alertmanager"]
    assert all(s.why == "not installed (apt-get install prometheus-alertmanager)" for s in skipped)
    assert not (tmp_path / "prometheus").exists()


def test_with_the_packages_the_generated_files_pass_promtool_and_amtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    amtool = require_binary("amtool")
    topo = demo_topology()
    ports = plan.choose_ports(topo, ephemeral=False)
    specs, skipped = plan.monitoring(topo, tmp_path, ports, "http://127.0.0.1:9095/fleetobs/notify",
                                     which=lambda name: f"/usr/bin/{name}")
    assert skipped == []
    # Alertmanagers start before the Prometheus servers that alert to them.
    assert [s.name for s in specs] == ["alertmanager-mainpc", "alertmanager-pc2", "prometheus-mainpc", "prometheus-pc2"]
    am = tmp_path / "prometheus" / "alertmanager" / "alertmanager.yml"
    out = subprocess.run([amtool, "check-config", str(am)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    receivers = yaml.safe_load(am.read_text())["receivers"]
    urls = {c["url"] for r in receivers for c in r.get("webhook_configs", [])}
    assert urls == {"http://127.0.0.1:9095/fleetobs/notify"}  # every page and ticket to the demo's webhook
    for machine, host in plan.HOSTS.items():
        cfg_path = tmp_path / "prometheus" / machine / "prometheus.yml"
        out = subprocess.run([promtool, "check", "config", str(cfg_path)], capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stdout + out.stderr
        cfg = yaml.safe_load(cfg_path.read_text())
        assert cfg["global"]["scrape_interval"] == "5s"
        targets = {t for job in cfg["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]}
        assert f"{host}:{ports.hub[machine]}" in targets and f"{host}:{ports.gpu[machine]}" in targets
        other = next(m for m in plan.HOSTS if m != machine)
        assert f"{plan.HOSTS[other]}:{ports.hub[other]}" in targets  # the peer hub: the cross-machine view
        sd = [c["url"] for job in cfg["scrape_configs"] for c in job.get("http_sd_configs", [])]
        assert sd == [f"http://{host}:{ports.hub[machine]}/v1/sd/prometheus?machine={machine}"]
        ams = {t for a in cfg["alerting"]["alertmanagers"] for sc in a["static_configs"] for t in sc["targets"]}
        assert ams == {f"{h}:9093" for h in plan.HOSTS.values()}
        prom = next(s for s in specs if s.name == f"prometheus-{machine}")
        assert f"--web.listen-address={host}:9090" in prom.argv
        alertmanager = next(s for s in specs if s.name == f"alertmanager-{machine}")
        assert f"--cluster.peer={plan.HOSTS[other]}:9094" in alertmanager.argv


def test_the_ports_to_check_cover_every_process_the_demo_starts() -> None:
    ports = plan.choose_ports(load_topology(None), ephemeral=False)
    checked = plan.fixed_ports(ports)
    assert len(checked) == len(set(checked)) == 1 + 5 * len(plan.HOSTS)
    assert ("127.0.0.2", 9090, "pc2 Prometheus") in checked and ("127.0.0.1", 9095, "notification webhook") in checked
