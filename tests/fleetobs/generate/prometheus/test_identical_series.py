"""Both machines' real Prometheus, with the generated configs, hold *identical* series for
every hub (so both raise identical alerts and Alertmanager pages once), and the peer hub's
scrape is told apart only by its ``up``.

The two "hubs" serve the hub's real per-agent exposition (hub.metrics.render_agents over a
real Registry) on loopback; tests/e2e runs the whole stack with real hub processes.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetobs.generate.prometheus.rules import rule_files
from fleetobs.generate.prometheus.scrape import prometheus_config
from fleetobs.testing.prometheus import PrometheusProcess
from fleetobs.topology.load import load_topology
from fleetobs.topology.model import Topology
from hub.liveness import LivenessPolicy
from hub.metrics import render_agents
from hub.observation import Observation, Status
from hub.registry import Registry

pytestmark = [pytest.mark.binaries, pytest.mark.slow]


def exposition(fleet: Topology, machine: str) -> str:
    reg = Registry(fleet, machine, LivenessPolicy())
    for i, agent in enumerate(fleet.agents_on(machine)[:6]):
        status = Status.DEGRADED if i == 0 else Status.OK
        reg.record(Observation(agent=agent.name, machine=machine, status=status,
                               reason="health_checks.ready_signal=false" if i == 0 else None), 0.0, 0.0)
    reg.judge_all(1.0, 1.0)
    # a family without a machine label, like the log shipper's
    return render_agents(reg.snapshot(), machine, 1.0) + "fleet_log_lines_sent_total 5\n"


class _Hubs:
    """One loopback HTTP server per machine: /metrics and an empty /v1/sd/prometheus."""

    def __init__(self, texts: dict[str, str]) -> None:
        self.servers: dict[str, http.server.ThreadingHTTPServer] = {}
        for machine, text in texts.items():
            class Handler(http.server.BaseHTTPRequestHandler):
                body = text.encode()  # bound now, not when the loop is over

                def do_GET(self) -> None:
                    out, kind = (self.body, "text/plain; version=0.0.4") if self.path == "/metrics" else \
                        (b"[]", "application/json")
                    self.send_response(200)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)

                def log_message(self, *args: object) -> None:
                    pass

            srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            self.servers[machine] = srv

    def address(self, machine: str) -> str:
        return f"127.0.0.1:{self.servers[machine].server_address[1]}"

    def close(self) -> None:
        for srv in self.servers.values():
            srv.shutdown()
            srv.server_close()


@pytest.fixture(scope="module")
def fleet() -> Topology:
    return load_topology(None)


@pytest.fixture
def hubs(fleet: Topology) -> Iterator[_Hubs]:
    h = _Hubs({m.name: exposition(fleet, m.name) for m in fleet.machines})
    try:
        yield h
    finally:
        h.close()


def _series(prom: PrometheusProcess, expr: str) -> set[tuple[tuple[str, str], ...]]:
    return {tuple(sorted(r["metric"].items())) for r in prom.query(expr)}


def test_both_prometheus_hold_identical_hub_series(tmp_path: Path, fleet: Topology, hubs: _Hubs) -> None:
    fast = fleet.alerting.fast(interval="1s")
    hosts = {f"{m.name}/hub": hubs.address(m.name) for m in fleet.machines}
    # nothing listens on port 9: the exporter, Prometheus and Alertmanager targets are down
    hosts |= {f"{m.name}/{s}": "127.0.0.1:9" for m in fleet.machines for s in ("gpu-exporter", "alertmanager")}
    rules = {f"rules/{k}": v for k, v in rule_files(fleet, fast).items()}
    configs = {m.name: prometheus_config(fleet, m.name, config=fast, hosts=hosts, alertmanagers=["127.0.0.1:9"],
                                         rule_files=sorted(rules)) for m in fleet.machines}
    with PrometheusProcess(configs["mainpc"], rules, tmp_path / "mainpc") as main, \
            PrometheusProcess(configs["pc2"], rules, tmp_path / "pc2") as pc2:
        for prom in (main, pc2):
            prom.wait_for('count(up{job=~"fleet-hub|fleet-hub-peer"} == 1) == 2', 30)
        hub_series = '{__name__=~"fleet_agent_.*|fleet_group_agents|fleet_log_lines_sent_total"}'
        a, b = _series(main, hub_series), _series(pc2, hub_series)
        assert a == b
        labels = {dict(s)["machine"] for s in a}
        assert labels == {"mainpc", "pc2"}
        assert {dict(s)["job"] for s in a} == {"fleet-hub"}
        assert {(dict(s)["machine"], dict(s)["instance"]) for s in a} == {
            ("mainpc", "mainpc:9000"), ("pc2", "pc2:9100")}
        # the shipper's series without a machine label get the hub's machine, not "exported_"
        assert {dict(s)["machine"] for s in a if dict(s)["__name__"] == "fleet_log_lines_sent_total"} == \
            {"mainpc", "pc2"}
        assert not any(k.startswith("exported_") for s in a for k, _ in s)
        # the degraded agent's reason, the same on both sides
        reason = 'fleet_agent_degraded_reason{reason="health_checks.ready_signal=false"}'
        assert len(_series(main, reason)) == 2 and _series(main, reason) == _series(pc2, reason)
        # only `up` tells the local hub from the peer's
        assert _series(main, 'up{job="fleet-hub-peer"}') == {(
            ("__name__", "up"), ("instance", "pc2:9100"), ("job", "fleet-hub-peer"), ("machine", "pc2"))}
        assert _series(main, 'up{job="fleet-hub"}') == {(
            ("__name__", "up"), ("instance", "mainpc:9000"), ("job", "fleet-hub"), ("machine", "mainpc"))}
        # and so both raise the same alerts (the agents nobody observed are missing; the
        # degraded one is degraded): Alertmanager gets two identical copies of each
        agent_alerts = 'ALERTS{alertstate="firing", alertname=~"Agent.*|Group.*"}'
        main.wait_for('count(ALERTS{alertstate="firing", alertname="AgentDegraded"}) == 2', 30)
        pc2.wait_for('count(ALERTS{alertstate="firing", alertname="AgentDegraded"}) == 2', 30)
        time.sleep(3)  # a few more evaluations: every AgentMissing is firing by now
        fired = _series(main, agent_alerts)
        assert fired == _series(pc2, agent_alerts)
        names = {dict(s)["alertname"] for s in fired}
        assert {"AgentDegraded", "AgentMissing"} <= names
