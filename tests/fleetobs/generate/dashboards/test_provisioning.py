"""Grafana provisioning per machine: datasources with fixed uids, and the dashboards provider."""

from __future__ import annotations

from typing import Any

import yaml

from fleetobs.generate import links
from fleetobs.generate.dashboards import render
from fleetobs.generate.dashboards.provisioning import datasources, provider
from fleetobs.topology.model import Topology


def test_each_machine_gets_its_prometheus_first_then_the_peers_then_loki_and_alertmanager(fleet: Topology) -> None:
    main = datasources(fleet, "mainpc")["datasources"]
    assert [(d["type"], d["uid"], d["url"]) for d in main] == [
        ("prometheus", "prometheus-mainpc", "http://prometheus:9090"),
        ("prometheus", "prometheus-pc2", "http://pc2:9090"),
        ("loki", "loki-mainpc", "http://loki:3100"),
        ("alertmanager", "alertmanager-mainpc", "http://alertmanager:9093"),
    ]
    pc2 = datasources(fleet, "pc2")["datasources"]
    assert [d["uid"] for d in pc2] == ["prometheus-pc2", "prometheus-mainpc", "loki-pc2", "alertmanager-pc2"]
    assert pc2[1]["url"] == "http://mainpc:9090"
    for listed in (main, pc2):
        assert [d["isDefault"] for d in listed] == [True, False, False, False]
        assert listed[0]["jsonData"]["alertmanagerUid"] == listed[3]["uid"]
        assert all(d["editable"] is False and d["access"] == "proxy" for d in listed)


def test_peer_urls_follow_the_topology_address(fleet: Topology) -> None:
    data = fleet.model_dump()
    for m in data["machines"]:
        if m["name"] == "pc2":
            m["address"] = "192.168.1.20"
    moved = type(fleet).model_validate(data)
    urls = [d["url"] for d in datasources(moved, "mainpc")["datasources"]]
    assert urls[1] == "http://192.168.1.20:9090"


def test_the_provider_reads_the_folder_the_compose_bundle_mounts() -> None:
    (p,) = provider()["providers"]
    assert p["options"]["path"] == links.GRAFANA_DASHBOARDS_DIR
    assert (p["type"], p["disableDeletion"], p["allowUiUpdates"]) == ("file", True, False)


def test_rendered_files_and_every_dashboard_datasource_variable_has_a_provisioned_datasource(
        fleet: Topology, docs: dict[str, dict[str, Any]]) -> None:
    files = render(fleet)
    assert {f"json/{uid}.json" for uid in links.DASHBOARD_UIDS} <= set(files)
    for machine in ("mainpc", "pc2"):
        ds = yaml.safe_load(files[f"provisioning/{machine}/datasources/fleetobs.yaml"])
        assert files[f"provisioning/{machine}/datasources/fleetobs.yaml"].startswith("# Generated")
        assert yaml.safe_load(files[f"provisioning/{machine}/dashboards/fleetobs.yaml"]) == provider()
        types = {d["type"] for d in ds["datasources"]}
        for doc in docs.values():
            for v in doc["templating"]["list"]:
                if v["type"] == "datasource":
                    assert v["query"] in types
    assert "do not edit" in files["README.md"]
