"""Rule evaluation cost at 10,000 agents, and the series the stack produces per agent.

Run: ``python bench/rule_cost.py [--agents 10000] [--minutes 3]``

1. A real hub (``fleetobs hub``, probing off) on a generated topology of N push agents
   on mainpc in 100 groups (and a pc2 without agents, so the peer jobs exist), fed by a
   load generator with batched heartbeats (1,000 a POST, every agent every 10 s): 94%
   ok, 3% degraded (two reasons), 3% never beating (missing, then the start-up grace
   ends). One real Prometheus with the generated config and every generated rule file,
   production intervals (15 s), scrapes it. The ``fleet-agents`` job is left out of the
   config for this part: N agents' own /metrics endpoints do not exist here, and rules
   never read them. After ``--minutes`` Prometheus' own metrics give, per rule group,
   ``prometheus_rule_group_last_duration_seconds`` (now, and the max over the run), the
   sum over groups against the evaluation interval (the share of its budget rules use),
   next to the anchor: the scrape of the hub that feeds them (``scrape_duration_seconds``).
2. Series per agent at N: the hub's per-agent series (by metric), and Prometheus' head
   series (every series it holds, rules included) divided by N.
3. Series per agent on the real stack (fleetobs.testing.alerting_stack: 77 simulated
   agents, their /metrics scraped through the hub's HTTP SD): every series carrying one
   agent's ``agent`` label, by job and metric, in one Prometheus.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import yaml

from fleetobs import catalog
from fleetobs.generate.prometheus.common import AGENTS_JOB
from fleetobs.generate.prometheus.rules import rule_files
from fleetobs.generate.prometheus.scrape import prometheus_config
from fleetobs.testing.procs import free_port, http_json, http_ok, wait_until
from fleetobs.testing.prometheus import PrometheusProcess
from fleetobs.topology.model import Topology

GROUPS = 100
REASONS = ("health_checks.ready_signal=false", "health_checks.redis_connected=false")


def bench_topology(n: int) -> Topology:
    doc = {"version": 1,
           "machines": [{"name": "mainpc", "hub_port": 9000, "address": "127.0.0.1"},
                        {"name": "pc2", "hub_port": 9100, "address": "127.0.0.2"}],
           "groups": [{"name": f"g{g:03d}", "machine": "mainpc"} for g in range(GROUPS)],
           "agents": [{"name": f"sim-{i:05d}", "machine": "mainpc", "group": f"g{i % GROUPS:03d}",
                       "port": 20000 + i % 20000, "health_check_port": 40000 + i % 20000,
                       "probe": "push", "heartbeat_interval_seconds": 30} for i in range(n)]}
    return Topology.model_validate(doc)


def beats(n: int) -> list[bytes]:
    """Batched heartbeat bodies: 94% ok, 3% degraded, 3% silent (never sent)."""
    rows = []
    for i in range(n):
        kind = i % 100
        if kind >= 97:
            continue
        row: dict[str, object] = {"agent": f"sim-{i:05d}", "interval_seconds": 30}
        if kind >= 94:
            row.update(status="degraded", reason=REASONS[i % 2])
        rows.append(row)
    return [json.dumps(rows[j:j + 1000]).encode() for j in range(0, len(rows), 1000)]


def feed(url: str, bodies: list[bytes], stop: threading.Event) -> None:
    with httpx.Client(timeout=30) as c:
        while not stop.is_set():
            t0 = time.monotonic()
            for b in bodies:
                c.post(f"{url}/v1/heartbeats", content=b, headers={"content-type": "application/json"})
            stop.wait(max(0.0, 10 - (time.monotonic() - t0)))


def without_agents_job(text: str) -> str:
    doc = yaml.safe_load(text)
    doc["scrape_configs"] = [j for j in doc["scrape_configs"] if j["job_name"] != AGENTS_JOB]
    return yaml.safe_dump(doc, sort_keys=False)


def part1(n: int, minutes: float, work: Path) -> None:
    topo = bench_topology(n)
    topo_file = work / "topology.yaml"
    topo_file.write_text(yaml.safe_dump(topo.model_dump(mode="json"), sort_keys=False))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    env.update({"FLEET_PROBE_ENABLED": "false", "FLEET_LOG_LEVEL": "WARNING", "FLEET_GPU_EXPORTER_URL": "off",
                "FLEET_MAX_BODY_BYTES": str(8 * 1024 * 1024)})
    hub = subprocess.Popen([sys.executable, "-m", "fleetobs.cli.main", "hub", "--machine", "mainpc",
                            "--port", str(port), "--topology", str(topo_file), "--data-dir", str(work / "hub")],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop = threading.Event()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_ok(f"{url}/ready"), 120, "hub ready")
        feeder = threading.Thread(target=feed, args=(url, beats(n), stop), daemon=True)
        feeder.start()
        rules = rule_files(topo)
        prom_port = free_port()
        hosts = {"mainpc/hub": f"127.0.0.1:{port}", "mainpc/prometheus": f"127.0.0.1:{prom_port}",
                 "pc2/hub": f"127.0.0.2:{free_port('127.0.0.2')}"}
        config = without_agents_job(prometheus_config(topo, "mainpc", hosts=hosts, rule_files=sorted(rules)))
        interval = topo.alerting.evaluation_interval
        with PrometheusProcess(config, rules, work / "prometheus",
                               extra_args=[f"--web.listen-address=127.0.0.1:{prom_port}"]) as prom:
            print(f"# {n} agents in {GROUPS} groups; generated rules: {len(rules)} files; "
                  f"scrape/evaluation every {interval}; running {minutes:g} min")
            time.sleep(minutes * 60)
            report_part1(prom, n, minutes)
    finally:
        stop.set()
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(15)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait()


def query(prom: PrometheusProcess, expr: str) -> list[dict[str, Any]]:
    """An instant query with a long timeout (a loaded box, 10,000 agents' series)."""
    body = http_json(f"{prom.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}), timeout=120)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def value(prom: PrometheusProcess, expr: str) -> float:
    res = query(prom, expr)
    return float(res[0]["value"][1]) if res else float("nan")


def plain_aggregation_seconds(prom: PrometheusProcess) -> float:
    """Prometheus' own evaluation time of one aggregation over every agent's series."""
    times = []
    for _ in range(5):
        body = http_json(f"{prom.url}/api/v1/query?" + urllib.parse.urlencode(
            {"query": "count by (machine, group) (fleet_agent_up)", "stats": "all"}), timeout=120)
        times.append(float(body["data"]["stats"]["timings"]["evalTotalTime"]))
    return sorted(times)[2]


def report_part1(prom: PrometheusProcess, n: int, minutes: float) -> None:
    window = f"{int(minutes * 60)}s"
    rows = query(prom, "prometheus_rule_group_last_duration_seconds")
    peaks = {r["metric"]["rule_group"]: float(r["value"][1]) for r in query(prom,
        f"max_over_time(prometheus_rule_group_last_duration_seconds[{window}])")}
    rules_in = {r["metric"]["rule_group"]: float(r["value"][1]) for r in query(prom,
        "prometheus_rule_group_rules")}
    interval = {r["metric"]["rule_group"]: float(r["value"][1]) for r in query(prom,
        "prometheus_rule_group_interval_seconds")}
    print("\n## 1. rule evaluation cost (prometheus_rule_group_last_duration_seconds)")
    print(f"{'rule group':52s} {'rules':>5s} {'interval':>8s} {'last ms':>9s} {'max ms':>9s}")
    total = peak_total = 0.0
    for r in sorted(rows, key=lambda r: -float(r["value"][1])):
        g = r["metric"]["rule_group"]
        last = float(r["value"][1])
        # per-15s-round cost: a group evaluated every 1m costs a quarter per round
        share = 15 / interval.get(g, 15)
        total += last * share
        peak_total += peaks.get(g, last) * share
        print(f"{g.split(';')[-1]:52s} {int(rules_in.get(g, 0)):5d} {interval.get(g, 0):7.0f}s "
              f"{last * 1000:9.2f} {peaks.get(g, last) * 1000:9.2f}")
    rules = http_json(f"{prom.url}/api/v1/rules", timeout=120)["data"]["groups"]
    slow = sorted(((float(r.get("evaluationTime", 0)), g["name"], r.get("name", "")) for g in rules
                   for r in g["rules"]), reverse=True)[:5]
    print("slowest rules (last evaluation): " + "; ".join(
        f"{name} in {group} {secs * 1000:.1f} ms" for secs, group, name in slow))
    scrape = value(prom, 'max_over_time(scrape_duration_seconds{job="fleet-hub"}[' + window + "])")
    failures = value(prom, "sum(prometheus_rule_evaluation_failures_total)")
    print(f"all groups, per 15 s round: {total * 1000:.1f} ms now, {peak_total * 1000:.1f} ms at worst "
          f"= {100 * peak_total / 15:.2f}% of the evaluation interval; rule evaluation failures: {failures:g}")
    print(f"anchor, the hub scrape feeding them (max): {scrape * 1000:.1f} ms; "
          f"rules / scrape = {peak_total / scrape:.2f}x")
    anchor = plain_aggregation_seconds(prom)
    print(f"anchor, one plain aggregation of {n} series (count by (machine, group) (fleet_agent_up), "
          f"median of 5 via the API): {anchor * 1000:.1f} ms; all rules per round = {total / anchor:.0f} such "
          f"aggregations (the box's load inflates both alike)")
    print("\n## 2. series per agent at", n)
    per = {}
    for spec in catalog.HUB:  # the hub's per-agent families
        if "agent" in spec.labels:
            for name in sorted(spec.exposed_names()):
                per[name] = value(prom, f'count({name}{{job="fleet-hub", agent=~"sim-.*"}})')
    per = {k: v for k, v in per.items() if not math.isnan(v)}  # nan: no series
    for name, c in sorted(per.items()):
        print(f"  {name:42s} {c / n:6.2f}")
    head = value(prom, "prometheus_tsdb_head_series")
    print(f"  hub series carrying an agent label: {sum(per.values()) / n:.2f} per agent")
    print(f"  Prometheus head series, all jobs and rules: {head:.0f} = {head / n:.2f} per agent")


def part3(work: Path) -> None:
    from fleetobs.testing.alerting_stack import AlertingStack

    with AlertingStack(work / "stack") as stack:
        prom = stack.prom["mainpc"]
        assert stack.topology is not None
        agent = stack.agents_of("mainpc")[0]
        time.sleep(5)
        rows = query(prom, f'count by (job, __name__) ({{agent="{agent}"}})')
        counts = Counter({(r["metric"].get("job", ""), r["metric"]["__name__"]): int(r["value"][1]) for r in rows})
        n_agents = len(stack.agents_of("mainpc")) + len(stack.agents_of("pc2"))
        head = value(prom, "prometheus_tsdb_head_series")
        print(f"\n## 3. series per agent on the real stack ({n_agents} agents, one Prometheus), agent {agent}")
        for (job, name), c in sorted(counts.items()):
            print(f"  {job:14s} {name:42s} {c}")
        print(f"  total: {sum(counts.values())} series carry agent={agent}; head series {head:.0f} "
              f"= {head / n_agents:.1f} per agent (both machines' agents, all jobs and rules)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--agents", type=int, default=10_000)
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--skip-stack", action="store_true", help="leave out part 3")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fleetobs-rule-cost-"))
    try:
        part1(args.agents, args.minutes, work)
        if not args.skip_stack:
            part3(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
