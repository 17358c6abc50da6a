"""Fixtures: the generated dashboards, Grafana's JSON schemas (tests/fixtures/schemas), and
the live stack the live checks and the preview run against."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from fleetobs.generate.dashboards import dashboards
from fleetobs.generate.prometheus import recording
from fleetobs.testing.binaries import require_binary
from fleetobs.testing.live_fleet import LiveFleet
from fleetobs.testing.loki import Reply
from fleetobs.testing.prometheus import PrometheusProcess
from fleetobs.topology.load import load_topology
from fleetobs.topology.model import Topology

SCHEMAS = Path(__file__).resolve().parents[3] / "fixtures" / "schemas" / "grafana"
VERSIONS = ("v11.6", "main")

Validator = Callable[[Any], list[str]]


@pytest.fixture(scope="session")
def fleet() -> Topology:
    return load_topology(None)


@pytest.fixture(scope="session")
def docs(fleet: Topology) -> dict[str, dict[str, Any]]:
    return dashboards(fleet)


def schema_validator(version: str, name: str, definition: str | None = None) -> Validator | None:
    """Errors of a document against ``<name>.jsonschema.json`` (or one of its definitions);
    None when Grafana's schemas have no such file."""
    path = SCHEMAS / version / f"{name}.jsonschema.json"
    if not path.exists():
        return None
    schema = json.loads(path.read_text())
    if definition is not None:
        if definition not in schema["definitions"]:
            return None
        schema = {**schema, "$ref": f"#/definitions/{definition}"}
    validator = jsonschema.Draft7Validator(schema)

    def errors(doc: Any) -> list[str]:
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(doc)]

    return errors


@pytest.fixture(scope="session")
def grafana_schema() -> Callable[..., Validator | None]:
    return schema_validator


# --- the live stack: the real fleet simulated, both hubs, both exporters, Prometheus ---

#: What the simulated agents do (the rest answer ok).
BEHAVIOURS = {"GoalManager": "degraded", "ChitchatAgent": "silent", "FeedbackHandler": "down",
              "NLUAgent": "error", "DreamWorldAgent": "degraded", "DreamingModeAgent": "silent"}
#: Variable values the live checks substitute: each machine with a GPU group and a silent
#: agent of it (it beats once, then the hub sees it go suspect and missing), and every
#: variable at its "All" value.
VALUE_SETS: dict[str, dict[str, str]] = {
    "mainpc": {"machine": "mainpc", "group": "language_stack_gpu", "agent": "ChitchatAgent"},
    "pc2": {"machine": "pc2", "group": "vision_dream_gpu", "agent": "DreamingModeAgent"},
    "all": {"machine": ".+", "group": ".*", "agent": "ChitchatAgent"},
}
#: Prometheus scrapes and evaluates every SCRAPE (each scrape must answer within it).
SCRAPE = "2s"
#: Grafana's interval variables for that scrape interval (rate windows hold >= 4 samples).
INTERVALS = {"__rate_interval": "10s", "__interval": "2s", "__range": "1m", "__auto": "5m"}
#: The test's own alert rule, so Prometheus has ALERTS to show (issue 10's rules are not here).
ALERT_RULES = {"groups": [{"name": "live-test", "rules": [{
    "alert": "LiveTestAgentMissing", "expr": 'fleet_agent_state{state="missing"} == 1',
    "labels": {"severity": "warning"}}]}]}
#: Ready when these have data: rates over the test's windows need two samples and more.
READY = ('rate(fleet_hub_request_duration_seconds_count[10s]) > 0', 'ALERTS{alertstate="firing"}',
         "machine_source:fleet_hub_heartbeats_received:rate5m > 0", "fleet_gpu_xid_errors_total",
         "rate(fleet_log_push_retries_total[10s])", "rate(fleet_sync_rejected_total[10s])",
         "machine_reason:fleet_hub_heartbeats_rejected:rate5m")


@dataclass
class Live:
    fleet: LiveFleet
    prom: PrometheusProcess

    def values(self, name: str) -> dict[str, str]:
        return {"datasource": "", "loki": "", **VALUE_SETS[name], **INTERVALS}


def recording_rule_file() -> str:
    return yaml.safe_dump({"groups": [
        {"name": name, "rules": [{"record": r.record, "expr": r.expr} for r in rules]}
        for name, rules in recording.GROUPS.items()]}, sort_keys=False)


def _exercise(fleet: LiveFleet) -> None:
    """Real inputs for the panels that only show something when it happens."""
    for machine, ex in fleet.exporters.items():
        ex.xid(0, 43 if machine == "mainpc" else 31)
        ex.fail("nvmlDeviceGetPerformanceState", 10)  # timeouts: counted, that series omitted
    def until(done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 60
        while not done():
            assert time.monotonic() < deadline, what
            time.sleep(0.1)

    # The checked (silent) agents beat once, announcing a 1 s interval: the hubs' judge loop
    # then sees them go suspect and missing and logs it, and those lines reach Loki first...
    with httpx.Client(timeout=5.0) as c:
        for machine, hub in fleet.hubs.items():
            r = c.post(f"{hub.url}/v1/heartbeats", json={"agent": VALUE_SETS[machine]["agent"], "status": "ok",
                                                        "interval_seconds": 1.0})
            assert r.status_code == 200, r.text
    for machine, loki in fleet.lokis.items():
        needle = f"agent {VALUE_SETS[machine]['agent']} "
        until(lambda loki=loki, needle=needle: any(
            s.label_dict.get("source") == "hub" and needle in s.line for s in loki.stored),
            f"{machine}'s hub shipped no line about {needle}")
    # ...then Loki refuses one push (retried) and rejects the next (dropped, counted); the
    # hubs' own lines take those, before the agents' lines below are sent.
    for loki in fleet.lokis.values():
        loki.script(Reply(429, retry_after="0"), Reply(400, body="entry too far behind"))
    until(lambda: all(any(r.status == 400 for r in loki.requests) for loki in fleet.lokis.values()),
          "the hubs did not push to Loki")
    with httpx.Client(timeout=5.0) as c:
        for machine, hub in fleet.hubs.items():
            agent = VALUE_SETS[machine]["agent"]  # the agent whose dashboard is checked
            assert c.post(f"{hub.url}/v1/heartbeats", content=b"{not json",
                          headers={"Content-Type": "application/json"}).status_code in (400, 422)
            c.post(f"{hub.url}/v1/heartbeats", json={"agent": "GhostAgent", "status": "ok"})
            other = next(a for a in fleet.topology.agents if a.machine != machine and a.probe == "zmq")
            c.post(f"{hub.url}/v1/heartbeats", json={"agent": other.name, "status": "ok"})
            assert c.post(f"{hub.url}/v1/sync/push", content=b"[]",
                          headers={"Content-Type": "application/json"}).status_code == 422
            r = c.post(f"{hub.url}/v1/logs", json=[
                {"agent": agent, "level": "info", "message": "loading model"},
                {"agent": agent, "level": "error", "message": "model not loaded: CUDA out of memory"}])
            assert r.status_code == 202, r.text


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    require_binary("prometheus")
    work = tmp_path_factory.mktemp("live")
    with LiveFleet(work, BEHAVIOURS) as fleet:
        _exercise(fleet)
        files = {"rules/recording.yml": recording_rule_file(), "rules/alerts.yml": yaml.safe_dump(ALERT_RULES)}
        config = fleet.scrape_config(("rules/recording.yml", "rules/alerts.yml"), interval=SCRAPE)
        with PrometheusProcess(config, files, work / "prometheus") as prom:
            for expr in READY:
                prom.wait_for(expr, timeout=60.0)
            yield Live(fleet, prom)
