"""The whole alerting path on loopback, real processes, short intervals: for the
end-to-end tests (tests/e2e) and the alerting benchmarks (bench/alert_*.py).

    simulated agents -> hub (one per machine, probing them) -> Prometheus (one per
    machine, the generated config and rules) -> a two-node Alertmanager cluster
    (the generated config) -> a webhook receiver in the test

Machines: ``mainpc`` on 127.0.0.1 and ``pc2`` on 127.0.0.2, with the real fleet's
agents and groups (ports replaced by free ones). Everything that crosses between
the machines goes through a :class:`hub.sync.faultproxy.FaultProxy`: the hubs' sync,
each Prometheus scraping the other machine's hub and sending alerts to the other
machine's Alertmanager. :meth:`AlertingStack.partition` blackholes them all (the
Alertmanagers' own gossip stays connected: it is UDP+TCP, which the proxy cannot
carry).

Simulated agents run in this process (on a :class:`LoopThread`, so their behaviour
can change at once, e.g. the real fleet's ready-key expiry) except the *units*:
named sets of agents in their own ``fleetobs simulate`` process, so killing one is a
real SIGKILL of the agents' process.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fleetobs.generate.prometheus.alertmanager import alertmanager_config
from fleetobs.generate.prometheus.common import AGENTS_JOB
from fleetobs.generate.prometheus.rules import rule_files
from fleetobs.generate.prometheus.scrape import prometheus_config
from fleetobs.simulator.behaviour import Behaviour
from fleetobs.testing.alerting_parts import (
    HOSTS,
    Cross,
    StackHub,
    Timings,
    Unit,
    stack_topology,
)
from fleetobs.testing.alertmanager import PEER_TIMEOUT_SECONDS, AlertmanagerCluster
from fleetobs.testing.loop_thread import LoopThread
from fleetobs.testing.procs import fixed_port, free_port, http_json, wait_until
from fleetobs.testing.prometheus import PrometheusProcess
from fleetobs.testing.sim_control import SimControl
from fleetobs.testing.victoriametrics import VictoriaMetricsProcess
from fleetobs.testing.webhook import Notification, WebhookReceiver
from fleetobs.topology.alerting import Alerting, RemoteWrite, duration
from fleetobs.topology.load import load_topology
from fleetobs.topology.model import Topology
from hub.registry import HUB_AGENT
from hub.sync.faultproxy import FaultProxy

if TYPE_CHECKING:
    from exporters.app import GpuExporter

#: Pending alerts with a longer ``for`` cannot fire within a test.
LONG_FOR_SECONDS = 120.0
#: A loaded 2-core box can take long to start a Python process.
HUB_START_TIMEOUT = 60.0
#: Alerts true from a Prometheus' first evaluation (see Timings.startup_for_seconds).
STARTUP_ALERTS = ("HubAbsent", "PrometheusAlertmanagerMissing", "Watchdog")
#: Webhook paths: pages and tickets, and the Watchdog (the dead man's switch).
NOTIFY_PATH = "/notify"
WATCHDOG_PATH = "/watchdog"
TOKEN = "e2e-alerting-token"  # noqa: S105 - a test fleet's sync token


@dataclass
class StackOptions:
    #: Unit name -> agents (names; unique across the fleet) run in their own process.
    units: Mapping[str, Sequence[str]] = field(default_factory=dict)
    timings: Timings = field(default_factory=Timings)
    #: Send mainpc's samples to a real VictoriaMetrics (remote_write).
    remote_write: bool = False
    #: The topology (default: the real fleet).
    topology: Topology | None = None


class AlertingStack:
    def __init__(self, workdir: Path, options: StackOptions | None = None) -> None:
        self.workdir = Path(workdir)
        self.options = options or StackOptions()
        self.timings = self.options.timings
        self.loop: LoopThread | None = None
        self.hook = WebhookReceiver()
        self.hubs: dict[str, StackHub] = {}
        self.cross: dict[tuple[str, str], Cross] = {}
        #: The simulated agents not in a unit: one child process per machine, on its address.
        self.sims: dict[str, SimControl] = {}
        self.units: dict[str, Unit] = {}
        self.am: AlertmanagerCluster | None = None
        self.prom: dict[str, PrometheusProcess] = {}
        self.vm: VictoriaMetricsProcess | None = None
        self.gpu: dict[str, GpuExporter] = {}
        self.config: Alerting | None = None
        self.topology: Topology | None = None
        self.topology_path = self.workdir / "topology.yaml"
        self.started_at = 0.0
        #: Seconds each start-up phase took.
        self.phases: dict[str, float] = {}
        self._phase_t = 0.0
        self._given_up: set[tuple[tuple[str, str], ...]] = set()

    @property
    def machines(self) -> list[str]:
        return list(HOSTS)

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> AlertingStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        t0 = self._phase_t = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.loop = LoopThread("alerting-stack")
        self.hook.start()
        base = self.options.topology or load_topology(None)
        hub_ports = {m: fixed_port(h) for m, h in HOSTS.items()}
        doc = stack_topology(base, self.timings, hub_ports)
        unit_of = {a: u for u, names in self.options.units.items() for a in names}
        known = {a["name"] for a in doc["agents"]}
        if set(unit_of) - known:
            raise ValueError(f"units name agents not in the topology: {sorted(set(unit_of) - known)}")
        self.topology_path.write_text(yaml.safe_dump(doc, sort_keys=False))
        for m in self.machines:
            self.sims[m] = SimControl(self.topology_path, m, HOSTS[m], unit_of, self.workdir / f"sim-{m}.log")
        for sim in self.sims.values():
            sim.wait_ready()
        self.topology = Topology.model_validate(doc)
        self.topology_path.write_text(yaml.safe_dump(self.topology.model_dump(mode="json"), sort_keys=False))
        for name, names in self.options.units.items():
            self._make_unit(name, names).spawn()
        self._phase("simulated agents")

        # fault proxies: listen on the target machine's address
        for a in self.machines:
            for b in self.machines:
                if a != b:
                    self.cross[(a, b)] = Cross(*(self.loop.run(FaultProxy(HOSTS[b], HOSTS[b], 0).start())
                                                 for _ in range(3)))
        t = self.timings
        for m in self.machines:
            env = {"FLEET_TOKEN": TOKEN, "FLEET_PROBE_ENABLED": "true",
                   "FLEET_PROBE_INTERVAL": str(t.probe_interval_seconds),
                   "FLEET_PROBE_TIMEOUT": str(t.probe_timeout_seconds),
                   "FLEET_SYNC_STALE_AFTER": str(t.sync_stale_seconds),
                   "FLEET_GPU_EXPORTER_URL": "off", "FLEET_LOG_LEVEL": "WARNING",
                   # agents at their machine's address (pc2's on 127.0.0.2), as on two hosts
                   "SERVICE_DISCOVERY_MODE": "static"}
            peers = [self.cross[(m, b)].sync.url for b in self.machines if b != m]
            self.hubs[m] = StackHub(m, HOSTS[m], self.topology_path, self.workdir / f"hub-{m}",
                                    peers=peers, env=env, fixed_port=hub_ports[m])
        # Ports are all known before anything starts, so everything starts at once.
        if self.options.remote_write:
            self.vm = VictoriaMetricsProcess(self.workdir / "victoria-metrics")
        self._start_gpu_exporters()
        self.config = self.alerting_config()
        self.am = AlertmanagerCluster(
            alertmanager_config(self.topology, config=self.config, webhook_url=self.hook.url_for(NOTIFY_PATH),
                                watchdog_url=self.hook.url_for(WATCHDOG_PATH)),
            self.workdir / "alertmanager", hosts=[HOSTS[m] for m in self.machines])
        for (_a, b), c in self.cross.items():
            c.sync.target_port = c.scrape.target_port = self.hubs[b].fixed_port
            c.alerts.target_port = self.am.nodes[self.machines.index(b)].port
        rules = rule_files(self.topology, self.config)
        for m in self.machines:
            port = free_port()
            config = self.config
            if self.vm is not None and m == "mainpc":
                config = config.model_copy(update={"remote_write": (RemoteWrite(url=self.vm.write_url),)})
            text = prometheus_config(self.topology, m, config=config, hosts=self.hosts_for(m, port),
                                     alertmanagers=self.alertmanagers_for(m), rule_files=sorted(rules))
            self.prom[m] = PrometheusProcess(text, rules, self.workdir / f"prometheus-{m}",
                                             extra_args=[f"--web.listen-address=127.0.0.1:{port}"])
        starters: list[Callable[[], object]] = [self.am.start, *(u.wait_started for u in self.units.values())]
        if self.vm is not None:
            starters.append(self.vm.start)
        with ThreadPoolExecutor(len(starters) + len(self.prom) + 1) as pool:
            hubs = pool.submit(self.loop.run, self._start_hubs())
            for f in [pool.submit(s) for s in starters]:
                f.result()
            hubs.result()
            # after the hubs: Prometheus' first HTTP SD request must find its hub up
            for started in [pool.submit(p.start) for p in self.prom.values()]:
                started.result()
        self._phase("processes")
        self.wait_scraped()
        self._phase("first scrapes")
        self.started_at = time.monotonic() - t0

    async def _start_hubs(self) -> None:
        await asyncio.gather(*(h.start(HUB_START_TIMEOUT) for h in self.hubs.values()))

    def _phase(self, name: str) -> None:
        now = time.monotonic()
        self.phases[name] = now - self._phase_t
        self._phase_t = now

    def wait_scraped(self, timeout: float = 40.0) -> None:
        """Until every Prometheus scrapes every target of its config successfully."""
        assert self.topology is not None
        # the hub agent is the fleet-hub job's (the generated config drops its SD target)
        agents = {m: sum(a.name != HUB_AGENT for a in self.topology.agents_on(m)) for m in self.machines}

        def healthy() -> bool:
            for m, prom in self.prom.items():
                targets = prom.targets()
                if any(t["health"] != "up" for t in targets):
                    return False
                if sum(t["labels"].get("job") == AGENTS_JOB for t in targets) != agents[m]:
                    return False  # HTTP SD has not delivered every agent yet
            return True

        try:
            wait_until(healthy, timeout, "every scrape target up", interval=0.25)
        except TimeoutError:
            bad = {m: [(t["scrapeUrl"], t["health"], t.get("lastError")) for t in p.targets()
                       if t["health"] != "up"] for m, p in self.prom.items()}
            raise TimeoutError(f"scrape targets not up after {timeout} s: {bad}") from None

    def alerting_config(self) -> Alerting:
        """The topology's ``alerting`` section with this stack's short intervals."""
        assert self.topology is not None
        t = self.timings
        fast = self.topology.alerting.fast(interval=duration(t.scrape_seconds), for_=duration(t.for_seconds),
                                           group_wait=duration(t.group_wait_seconds),
                                           group_interval=duration(t.group_interval_seconds))
        am = fast.alertmanager.model_copy(update={"repeat_interval": duration(t.repeat_interval_seconds)})
        fors = {**fast.for_, **dict.fromkeys(STARTUP_ALERTS, duration(t.startup_for_seconds))}
        return fast.model_copy(update={"evaluation_interval": duration(t.eval_seconds), "alertmanager": am,
                                       "for_": fors})

    def hosts_for(self, machine: str, prometheus_port: int) -> dict[str, str]:
        """Where ``machine``'s Prometheus dials each service (the far machine's through
        the fault proxies)."""
        assert self.am is not None
        out = {f"{machine}/prometheus": f"127.0.0.1:{prometheus_port}"}
        for i, m in enumerate(self.machines):
            if m == machine:
                out[f"{m}/hub"] = f"{HOSTS[m]}:{self.hubs[m].fixed_port}"
                out[f"{m}/alertmanager"] = f"{HOSTS[m]}:{self.am.nodes[i].port}"
                out[f"{m}/gpu-exporter"] = f"{HOSTS[m]}:{self.gpu[m].server.address[1]}"
            else:
                c = self.cross[(machine, m)]
                out[f"{m}/hub"] = f"{HOSTS[m]}:{c.scrape.port}"
                out[f"{m}/alertmanager"] = f"{HOSTS[m]}:{c.alerts.port}"
        return out

    def alertmanagers_for(self, machine: str) -> list[str]:
        hosts = self.hosts_for(machine, 0)
        return [hosts[f"{m}/alertmanager"] for m in self.machines]

    def _start_gpu_exporters(self) -> None:
        """Each machine's real GPU exporter, in this process, over the fake NVML library."""
        from exporters.app import ExporterConfig, GpuExporter
        from exporters.testing.fake_nvml import FakeNvmlLibrary, rtx_3060, rtx_4090

        assert self.topology is not None
        devices = {"mainpc": rtx_4090, "pc2": rtx_3060}
        for m in self.machines:
            proc = self.workdir / f"proc-{m}"  # an empty /proc: no GPU processes to attribute
            proc.mkdir(parents=True, exist_ok=True)
            cfg = ExporterConfig(m, host=HOSTS[m], proc_root=proc, interval_seconds=1.0)
            self.gpu[m] = GpuExporter(cfg, self.topology, library=FakeNvmlLibrary([devices[m]()])).start()

    def _make_unit(self, name: str, names: Iterable[str]) -> Unit:
        assert self.topology is not None
        wanted = set(names)
        doc = self.topology.model_dump(mode="json")
        doc["agents"] = [{**a, "dependencies": []} for a in doc["agents"] if a["name"] in wanted]
        path = self.workdir / f"unit-{name}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        machines = sorted({a["machine"] for a in doc["agents"]})
        if len(machines) != 1:
            raise ValueError(f"unit {name}: its agents must share one machine, not {machines}")
        unit = Unit(name, path, machines[0], self.workdir / f"unit-{name}.log")
        self.units[name] = unit
        return unit

    def stop(self) -> None:
        """Stop everything this stack started, whatever state it is in. Idempotent."""
        for p in self.prom.values():
            p.stop()
        if self.am is not None:
            self.am.stop()
        if self.vm is not None:
            self.vm.stop()
        for h in self.hubs.values():
            h.stop()
        for g in self.gpu.values():
            g.stop()
        for u in self.units.values():
            u.stop()
        for sim in self.sims.values():
            sim.stop()
        if self.loop is not None:
            loop = self.loop
            for c in self.cross.values():
                for proxy in c.all():
                    with contextlib.suppress(Exception):
                        loop.run(proxy.stop(), 10)
            loop.close()
            self.loop = None
        self.hook.close()

    def __enter__(self) -> AlertingStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- faults ----------------------------------------------------------------------
    def partition(self) -> None:
        """Cut every link between the machines (both ways, all three kinds)."""
        for c in self.cross.values():
            for p in c.all():
                p.blackhole = True
            for p in c.all():
                p.reset()  # kept-alive connections would otherwise carry on

    def heal(self) -> None:
        for c in self.cross.values():
            for p in c.all():
                p.heal()

    def kill_unit(self, name: str) -> None:
        self.units[name].kill()

    def start_unit(self, name: str) -> None:
        self.units[name].start()

    def set_behaviour(self, behaviour: Behaviour, agents: Sequence[str] | None = None,
                      failing_check: str | None = None) -> list[str]:
        """Change how the simulated agents (not the units) answer, all by default; their names."""
        extra = {"behaviour": str(behaviour)}
        if failing_check is not None:
            extra["failing_check"] = failing_check
        return [n for sim in self.sims.values() for n in sim.command("behaviour", agents, **extra)]

    def stop_agents(self, agents: Sequence[str] | None = None) -> list[str]:
        """Close simulated agents' sockets (all by default): not started yet, or gone."""
        return [n for sim in self.sims.values() for n in sim.command("stop", agents)]

    def start_agents(self, agents: Sequence[str] | None = None) -> list[str]:
        """Open them again, on the same ports."""
        return [n for sim in self.sims.values() for n in sim.command("start", agents)]

    def kill_hub(self, machine: str) -> None:
        self.hubs[machine].kill()

    def start_hub(self, machine: str, wipe: bool = False) -> None:
        """Start a killed hub again (``wipe``: with an empty data dir, a new container)."""
        hub = self.hubs[machine]
        if wipe:
            for p in hub.data_dir.glob("*"):
                if p != hub.log:
                    (shutil.rmtree if p.is_dir() else Path.unlink)(p)
        assert self.loop is not None
        self.loop.run(hub.start(HUB_START_TIMEOUT), HUB_START_TIMEOUT + 5)

    # --- reading ---------------------------------------------------------------------
    def pages(self, since: int = 0) -> list[Notification]:
        """Notifications of pages and tickets (not the Watchdog) from position ``since``."""
        return self.hook.notifications(since, path=NOTIFY_PATH)

    def prometheus_alerts(self, machine: str) -> list[dict[str, Any]]:
        """Alerts (pending or firing) of ``machine``'s Prometheus, the Watchdog left out."""
        alerts: list[dict[str, Any]] = http_json(f"{self.prom[machine].url}/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"].get("alertname") != "Watchdog"]

    def alertmanager_alerts(self, node: int, active: bool = False) -> list[dict[str, Any]]:
        """Alerts a node holds (``active``: only those neither silenced nor inhibited)."""
        assert self.am is not None
        return [a for a in self.am.nodes[node].alerts(active=active)
                if a["labels"].get("alertname") != "Watchdog"]

    def wait_calm(self, timeout: float = 60.0) -> None:
        """Until no alert is pending or firing anywhere (the Watchdog aside) and no page has
        arrived for a while: every alert notified firing has been notified resolved (or the
        resolution is given up on after a while: an alert that was inhibited when it resolved
        is never notified resolved)."""
        t = self.timings
        # a resolution may still be on its way: the next group flush, then the second node's
        # wait before it checks whether the first one sent it
        flush = t.group_wait_seconds + t.group_interval_seconds + PEER_TIMEOUT_SECONDS
        quiet = PEER_TIMEOUT_SECONDS + 2.0  # a duplicate's, after the resolutions are in
        calm_since: list[float] = []

        def calm() -> bool:
            assert self.am is not None
            if any(self.live_alerts(m) for m in self.machines) or \
                    any(self.alertmanager_alerts(i) for i in range(len(self.am.nodes))):
                calm_since.clear()
                return False
            now = time.monotonic()
            calm_since[:] = calm_since or [now]
            open_ = self.unresolved() - self._given_up
            if open_ and now - calm_since[0] < 2 * flush + 5:
                return False
            self._given_up |= open_
            last = self.pages()[-1:]
            return not last or now - last[0].at > quiet

        try:
            wait_until(calm, timeout, "no alert anywhere", interval=0.25)
        except TimeoutError:
            left = {m: [a["labels"] for a in self.live_alerts(m)] for m in self.machines}
            held = [a["labels"] for a in self.alertmanager_alerts(0)]
            raise TimeoutError(f"alerts still active after {timeout} s: {left}; Alertmanager: {held}") from None

    def unresolved(self) -> set[tuple[tuple[str, str], ...]]:
        """Alerts (label sets) whose last notification says firing."""
        last: dict[tuple[tuple[str, str], ...], str] = {}
        for n in self.pages():
            for a in n.alerts:
                last[tuple(sorted(a["labels"].items()))] = a["status"]
        return {k for k, status in last.items() if status == "firing"}

    def live_alerts(self, machine: str) -> list[dict[str, Any]]:
        """Alerts of ``machine``'s Prometheus that are firing, or pending with a ``for`` this
        stack can live to see (the SLO burn-rate alerts keep their hours-long ``for``: in a
        minutes-old Prometheus they may stay pending forever). The Watchdog left out."""
        rules = http_json(f"{self.prom[machine].url}/api/v1/rules?type=alert")["data"]["groups"]
        return [a for g in rules for r in g["rules"] for a in r["alerts"]
                if r["name"] != "Watchdog" and (a["state"] == "firing" or float(r["duration"]) < LONG_FOR_SECONDS)]

    def agents_of(self, machine: str, group: str | None = None) -> list[str]:
        assert self.topology is not None
        return [a.name for a in self.topology.agents_on(machine)
                if a.name != HUB_AGENT and (group is None or a.group == group)]

    def unit_agents(self, name: str) -> list[str]:
        return list(self.options.units[name])

    def logs(self) -> str:
        """The tails of every process log (for a failing test's message)."""
        paths = [p.log for p in self.prom.values()] + [h.log for h in self.hubs.values()]
        paths += [u.log for u in self.units.values()]
        if self.am is not None:
            paths += [n.log for n in self.am.nodes]
        out = []
        for p in paths:
            if p.exists():
                out.append(f"--- {p.name} ---\n{p.read_text(errors='replace')[-1500:]}")
        return "\n".join(out)
