"""``fleetobs demo``: a living two-machine fleet on this machine, in one command.

Starts (fleetobs.demo.plan) both machines' hubs on 127.0.0.1 and 127.0.0.2, syncing,
the simulated 77-agent fleet on real sockets with a few agents failing, and the GPU
exporter on a fake NVML per machine, then (when Debian's packages are installed) each
machine's Alertmanager and Prometheus on ``fleetobs build``'s configuration; prints what
runs where, shows a live summary (rich: the hubs' verdicts, firing alerts, the pages and
tickets Alertmanager sent) and stops everything on Ctrl-C within about two seconds.
Everything simulated says so. ``<data-dir>/demo.json`` lists the processes (name, pid,
URL, log); ``<data-dir>/notifications.jsonl`` holds every notification sent.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from fleetobs.cli.errors import fail


def _status(url: str) -> dict[str, Any] | None:
    import httpx

    try:
        r = httpx.get(url.rstrip("/") + "/v1/status", timeout=1.0)
        body = r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def _firing(prometheus: str) -> list[str] | None:
    """Names (with machine/agent) of the alerts Prometheus has firing; None: unreachable."""
    import httpx

    try:
        body = httpx.get(prometheus + "/api/v1/alerts", timeout=1.0).json()
        alerts = body["data"]["alerts"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
    out = []
    for a in alerts:
        if isinstance(a, dict) and a.get("state") == "firing":
            labels = a.get("labels") or {}
            where = "/".join(str(labels[k]) for k in ("machine", "agent") if labels.get(k))
            out.append(f"{labels.get('alertname', '?')} {where}".strip())
    return sorted(out)


def _poll(hubs: dict[str, str], latest: dict[str, Any], stop: threading.Event,
          every: float, prometheus: str | None) -> None:
    """Fetch each hub's status (and Prometheus' alerts) in the background: Ctrl-C never
    waits for a request."""
    while True:
        for machine, url in hubs.items():
            latest[machine] = _status(url)
        if prometheus:
            latest[_FIRING] = _firing(prometheus)
        if stop.wait(every):
            return


_FIRING = "firing alerts"


def _alerts_line(latest: dict[str, Any], alerts: dict[str, Any]) -> str:
    if not alerts:
        return ""
    firing = latest.get(_FIRING)
    got = alerts["receiver"].snapshot()
    sent = ", ".join(f"{n} {r}" for r, n in sorted(got.counts.items())) or "none yet"
    shown = "Prometheus unreachable" if firing is None else \
        (f"{len(firing)} firing: {'; '.join(firing[:4])}" + (f" (+{len(firing) - 4})" if len(firing) > 4 else ""))
    return f"alerts ({alerts['prometheus']}): {shown}\nnotifications: {sent}" + \
        (f"; last: {got.last}" if got.last else "")


def _summary(hubs: dict[str, str], latest: dict[str, Any], alerts: dict[str, Any]) -> Any:
    from rich.table import Table
    from rich.text import Text

    t = Table(title=f"fleetobs demo (SIMULATED fleet) - {time.strftime('%H:%M:%S')} - Ctrl-C stops",
              caption=_alerts_line(latest, alerts) or None, caption_justify="left")
    for col in ("hub", "verdict", "agents by state", "peer link", "needs attention (worst first)"):
        t.add_column(col, overflow="fold")
    for machine, url in hubs.items():
        ov = latest.get(machine)
        if ov is None:
            t.add_row(machine, Text("unreachable", "bold red"), "", "", "")
            continue
        counts = " ".join(f"{n} {s}" for s, n in ov["summary"]["counts"].items())
        peers = ", ".join(f"{p['machine']} {'up' if p['up'] else 'DOWN'}" for p in ov["peers"]) or "-"
        worst = "; ".join(f"{a['machine']}/{a['name']} {a['state']}" for a in ov["attention"][:5])
        more = len(ov["attention"]) - 5
        verdict = Text("healthy", "green") if ov["healthy"] else Text("NOT healthy", "bold red")
        t.add_row(f"{machine}\n{url}", verdict, counts, peers, worst + (f" (+{more} more)" if more > 0 else ""))
    return t


def demo(
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Keep state and logs here (default: a temporary directory, removed after)."),
    ephemeral: bool = typer.Option(
        False, "--ephemeral", help="Free ports for everything instead of the real fleet's ports "
                                   "(hubs 9000 and 9100, exporters 9400, agents' own)."),
    refresh: float = typer.Option(2.0, "--refresh", min=0.2, max=60, help="Seconds between summaries."),
) -> None:
    """Run a simulated two-machine fleet locally (hubs, agents, GPU exporters) until Ctrl-C."""
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from fleetobs.demo import plan
    from fleetobs.demo.notifications import NotificationReceiver
    from fleetobs.demo.stack import ProcessSpec, Stack, StackError
    from fleetobs.settings import load_settings
    from fleetobs.topology.load import load_topology

    settings = load_settings(os.environ)
    base = load_topology(settings.topology)
    missing = [m for m in plan.HOSTS if m not in base.machine_by_name]
    if missing:
        fail(f"the demo needs machines {', '.join(plan.HOSTS)} in the topology; missing {', '.join(missing)}")
    ports = plan.choose_ports(base, ephemeral)
    for host, port, what in plan.fixed_ports(ports):
        if not plan.port_free(host, port):
            fail(f"{host}:{port} ({what}) is taken (a hub or demo already running?): "
                 "stop it, or run fleetobs demo --ephemeral")
    temporary = data_dir is None
    work = Path(tempfile.mkdtemp(prefix="fleetobs-demo-")) if data_dir is None else data_dir
    work.mkdir(parents=True, exist_ok=True)
    console = Console()
    # Ctrl-C and SIGTERM only set a flag: the runner stops the children itself, in order.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLEET_") and k not in ("MACHINE_TYPE", "BIND_ADDRESS", "SERVICE_DISCOVERY_MODE")}
    stack = Stack(work, environ=env)
    stop = stack.interrupted
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    specs: list[ProcessSpec] = []
    stops: list[Callable[[], None]] = []
    alerts: dict[str, Any] = {}
    code = 0
    try:
        sims = {}
        for machine in plan.HOSTS:
            spec = plan.simulator(machine, settings.topology, work, ephemeral)
            specs.append(spec)
            stack.start(spec)
            sims[machine] = work / f"sim-{machine}.yaml"
        topo_path = work / "demo-topology.yaml"
        import yaml

        topo_path.write_text(yaml.safe_dump(plan.demo_topology(base, sims, ports), sort_keys=False),
                             encoding="utf-8")
        for machine in plan.HOSTS:
            spec = plan.gpu(machine, topo_path, work, ports)
            specs.append(spec)
            stack.start(spec)
        receiver = NotificationReceiver(plan.HOSTS["mainpc"], ports.notify, work / "notifications.jsonl").start()
        stops.append(receiver.stop)
        monitors, skipped = plan.monitoring(load_topology(topo_path), work, ports, receiver.url)
        for machine in plan.HOSTS:
            links = {"FLEET_PROMETHEUS_URL": plan.prometheus_url(machine, ports)} if monitors else {}
            spec = plan.hub(machine, topo_path, work, ports, links)
            specs.append(spec)
            stack.start(spec)
        for spec in monitors:  # Alertmanagers first: Prometheus alerts to them from its start
            specs.append(spec)
            stack.start(spec)
        if monitors:
            alerts = {"receiver": receiver, "prometheus": plan.prometheus_url("mainpc", ports)}
        manifest = {"work": str(work), "topology": str(topo_path),
                    "processes": [{"name": r.spec.name, "pid": r.proc.pid, "url": r.spec.url,
                                   "what": r.spec.what, "simulated": r.spec.simulated, "log": str(r.log)}
                                  for r in stack.running],
                    "skipped": [{"name": s.name, "why": s.why} for s in skipped],
                    "notifications": {"url": receiver.url, "log": str(receiver.log)}}
        (work / "demo.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        table = Table(title="fleetobs demo: what runs where (loopback only)")
        for col in ("process", "what", "where", "pid"):
            table.add_column(col, overflow="fold")
        for r in stack.running:
            label = f"{r.spec.what} [SIMULATED]" if r.spec.simulated else r.spec.what
            table.add_row(r.spec.name, label, r.spec.url or "-", str(r.proc.pid))
        for s in skipped:
            table.add_row(s.name, s.what, f"not running: {s.why}", "-")
        from fleetobs.cli.tables import print_tables

        print_tables([table])
        hubs = {m: f"http://{plan.HOSTS[m]}:{ports.hub[m]}" for m in plan.HOSTS}
        console.print(f"logs and state: {work}{' (removed on exit)' if temporary else ''}")
        console.print(f"status pages: {hubs['mainpc']}/ and {hubs['pc2']}/ ; "
                      f"try: fleetobs status --hub {hubs['mainpc']}")
        # One parseable line (tests, scripts), then the live view.
        sys.stdout.write(f"fleetobs demo: ready: {' '.join(hubs.values())}\n")
        sys.stdout.flush()
        latest: dict[str, Any] = {}
        threading.Thread(target=_poll, args=(hubs, latest, stop, refresh, alerts.get("prometheus")), daemon=True,
                         name="demo-status").start()
        if console.is_terminal:
            with Live(_summary(hubs, latest, alerts), console=console, refresh_per_second=4, transient=False) as live:
                while not stop.wait(refresh):
                    live.update(_summary(hubs, latest, alerts))
        else:
            while not stop.wait(refresh):
                console.print(_summary(hubs, latest, alerts))
    except StackError as exc:
        if not stop.is_set():
            console.print(f"fleetobs demo: {exc}", style="red", markup=False)
            code = 1
    finally:
        took = stack.stop()
        for undo in stops:
            undo()
        sys.stderr.write(f"fleetobs demo: stopped {len(stack.running)} processes in {took:.1f} s\n")
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
    if code:
        raise typer.Exit(code)
