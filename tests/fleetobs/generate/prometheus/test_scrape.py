"""prometheus.yml: what each machine scrapes, the labels that make both machines' alerts
identical, the overrides end-to-end tests use, remote_write, and the topology section."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from fleetobs.generate.prometheus.rules import rule_files
from fleetobs.generate.prometheus.scrape import prometheus_config
from fleetobs.topology.alerting import Alerting, RemoteWrite, duration, seconds
from fleetobs.topology.load import TopologyError, load_topology, topology_from_text
from fleetobs.topology.model import Topology


@pytest.fixture(scope="module")
def fleet() -> Topology:
    return load_topology(None)


def config(fleet: Topology, machine: str, **kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(prometheus_config(fleet, machine, **kw))
    return doc


def jobs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {j["job_name"]: j for j in doc["scrape_configs"]}


def test_each_machine_scrapes_its_own_stack_and_the_peer_hub(fleet: Topology) -> None:
    doc = config(fleet, "mainpc")
    j = jobs(doc)
    assert list(j) == ["fleet-hub", "fleet-hub-peer", "fleet-gpu-exporter", "fleet-agents", "prometheus",
                       "alertmanager"]
    assert j["fleet-hub"]["static_configs"] == [{"targets": ["hub:9000"], "labels": {"machine": "mainpc"}}]
    assert j["fleet-hub-peer"]["static_configs"] == [{"targets": ["pc2:9100"], "labels": {"machine": "pc2"}}]
    assert j["fleet-gpu-exporter"]["static_configs"][0]["targets"] == ["gpu-exporter:9400"]
    assert j["fleet-agents"]["http_sd_configs"] == [
        {"url": "http://hub:9000/v1/sd/prometheus?machine=mainpc", "refresh_interval": "1m"}]
    # the hub lists itself as an agent: it is scraped once, by fleet-hub
    assert j["fleet-agents"]["relabel_configs"] == [
        {"source_labels": ["agent"], "regex": "ObservabilityHub", "action": "drop"}]
    assert doc["alerting"]["alertmanagers"][0]["static_configs"] == [{"targets": ["alertmanager:9093", "pc2:9093"]}]
    assert doc["global"]["external_labels"] == {"machine": "mainpc"}
    assert doc["rule_files"] == [f"../rules/{f}" for f in sorted(rule_files(fleet))]
    assert "remote_write" not in doc
    pc2 = jobs(config(fleet, "pc2"))
    assert pc2["fleet-hub"]["static_configs"][0]["targets"] == ["hub:9100"]
    assert pc2["fleet-hub-peer"]["static_configs"][0]["targets"] == ["mainpc:9000"]


def test_both_machines_label_a_hubs_series_identically(fleet: Topology) -> None:
    """The instance is canonical and the peer's samples are relabelled job=fleet-hub: the
    two copies of an alert about a mainpc agent have the same labels, so one page."""
    main, pc2 = jobs(config(fleet, "mainpc")), jobs(config(fleet, "pc2"))
    assert main["fleet-hub"]["relabel_configs"] == [{"target_label": "instance", "replacement": "mainpc:9000"}]
    assert pc2["fleet-hub-peer"]["relabel_configs"] == [
        {"source_labels": ["machine"], "regex": "mainpc", "target_label": "instance", "replacement": "mainpc:9000"}]
    assert pc2["fleet-hub-peer"]["metric_relabel_configs"] == [{"target_label": "job", "replacement": "fleet-hub"}]
    assert "metric_relabel_configs" not in main["fleet-hub"]
    for j in (main["fleet-hub"], pc2["fleet-hub-peer"], main["fleet-gpu-exporter"]):
        assert j["honor_labels"] is True  # the hub's own machine label wins


def test_hosts_alertmanagers_and_rule_files_override_for_loopback_tests(fleet: Topology) -> None:
    fast = fleet.alerting.fast(interval="1s")
    doc = config(fleet, "pc2", config=fast,
                 hosts={"pc2/hub": "127.0.0.1:19100", "mainpc/hub": "127.0.0.2:19000",
                        "pc2/gpu-exporter": "127.0.0.1:19400", "pc2/prometheus": "127.0.0.1:19090",
                        "pc2/alertmanager": "127.0.0.1:19093"},
                 alertmanagers=["127.0.0.1:19093", "127.0.0.2:19093"], rule_files=["rules/a.yml"])
    j = jobs(doc)
    assert j["fleet-hub"]["static_configs"][0]["targets"] == ["127.0.0.1:19100"]
    assert j["fleet-hub-peer"]["static_configs"][0]["targets"] == ["127.0.0.2:19000"]
    assert j["fleet-agents"]["http_sd_configs"][0]["url"] == "http://127.0.0.1:19100/v1/sd/prometheus?machine=pc2"
    assert j["prometheus"]["static_configs"][0]["targets"] == ["127.0.0.1:19090"]
    assert j["alertmanager"]["static_configs"][0]["targets"] == ["127.0.0.1:19093"]
    # labels never depend on where this Prometheus dials
    assert j["fleet-hub"]["relabel_configs"] == [{"target_label": "instance", "replacement": "pc2:9100"}]
    assert doc["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:19093", "127.0.0.2:19093"]
    assert doc["rule_files"] == ["rules/a.yml"]
    assert doc["global"]["scrape_interval"] == doc["global"]["evaluation_interval"] == "1s"


def test_unknown_machine_is_a_clear_error(fleet: Topology) -> None:
    with pytest.raises(KeyError, match="unknown machine 'pc3'"):
        prometheus_config(fleet, "pc3")


def test_remote_write_sends_each_machine_its_own_series_once(fleet: Topology) -> None:
    cfg = Alerting(remote_write=(RemoteWrite(url="http://vm:8428/api/v1/write", name="vm", keep_metrics="fleet_.*"),
                                 RemoteWrite(url="https://mimir/api/v1/push", bearer_token_file="/t")))
    rw = config(fleet, "pc2", config=cfg)["remote_write"]
    assert rw[0] == {"url": "http://vm:8428/api/v1/write", "name": "vm", "remote_timeout": "30s",
                     "write_relabel_configs": [
                         {"source_labels": ["machine"], "regex": "pc2", "action": "keep"},
                         {"source_labels": ["__name__"], "regex": "fleet_.*", "action": "keep"}]}
    assert rw[1]["authorization"] == {"type": "Bearer", "credentials_file": "/t"}


def test_hub_token_applies_to_the_hub_scrapes_and_the_sd(fleet: Topology) -> None:
    j = jobs(config(fleet, "mainpc", config=Alerting(hub_bearer_token_file="/run/secrets/read")))
    auth = {"type": "Bearer", "credentials_file": "/run/secrets/read"}
    assert j["fleet-hub"]["authorization"] == j["fleet-hub-peer"]["authorization"] == auth
    assert j["fleet-agents"]["http_sd_configs"][0]["authorization"] == auth
    assert "authorization" not in j["fleet-gpu-exporter"]


def test_alerting_section_of_the_topology_overrides_the_defaults(fleet: Topology) -> None:
    base = (load_topology(None).model_dump_json())  # the default is the committed fleet
    assert '"alerting"' in base
    text = """
machines: [{name: a, hub_port: 9000, address: a.lan}, {name: b, hub_port: 9000, address: b.lan}]
groups: [{name: g, machine: a}]
alerting:
  scrape_interval: 30s
  for: {AgentDown: 2m}
  slo: {objective: 0.995, groups: {g: 0.9}}
  alertmanager: {group_wait: 1m, watchdog: {webhook_url: "https://hc.example/ping"}}
"""
    t = topology_from_text(text, "t.yaml")
    assert t.alerting.for_of("AgentDown") == "2m" and t.alerting.for_of("HubDown") == "1m"
    assert t.alerting.slo.objective_of("g") == 0.9 and t.alerting.slo.objective_of("other") == 0.995
    assert t.alerting.alertmanager.group_wait == "1m"
    assert jobs(config(t, "a"))["fleet-hub-peer"]["static_configs"][0]["targets"] == ["b.lan:9000"]


@pytest.mark.parametrize(("section", "message"), [
    ("for: {AgentDwn: 1m}", "alerting.for: unknown alert(s) AgentDwn"),
    ("scrape_interval: 15 s", "alerting.scrape_interval: String should match pattern"),
    ("slo: {objective: 1.5}", "alerting.slo.objective: Input should be less than 1"),
    ("slo: {groups: {nope: 0.9}}", "alerting.slo.groups: unknown group(s) nope"),
    ("scrape_timeout: 1m", "scrape_timeout 1m exceeds scrape_interval 15s"),
    ("colour: red", "alerting.colour: unknown key 'colour'"),
    ("remote_write: [{url: 'ftp://x'}]", "alerting.remote_write[0].url: String should match pattern"),
])
def test_bad_alerting_sections_are_located_errors(section: str, message: str) -> None:
    text = (f"machines: [{{name: a, hub_port: 9000, address: a}}]\ngroups: [{{name: g, machine: a}}]\n"
            f"alerting:\n  {section}\n")
    with pytest.raises(TopologyError) as err:
        topology_from_text(text, "t.yaml")
    assert message in str(err.value), str(err.value)
    assert "t.yaml:" in str(err.value)


def test_durations() -> None:
    assert seconds("1h30m") == 5400 and seconds("500ms") == 0.5 and seconds("30d") == 30 * 86400
    assert duration(5400) == "1h30m" and duration(97) == "1m37s" and duration(0.5) == "500ms"
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        seconds("5 minutes")
