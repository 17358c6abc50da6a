"""The pieces of fleetobs.testing.alerting_stack: its timings, the loopback topology, a hub
on a fixed port and *units* (agents in their own killable ``fleetobs simulate``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetobs.testing.procs import fixed_port, kill_process, wait_until
from fleetobs.topology.model import Topology
from hub.registry import HUB_AGENT
from hub.sync.faultproxy import FaultProxy
from hub.sync.testing import HubProcess

HOSTS: dict[str, str] = {"mainpc": "127.0.0.1", "pc2": "127.0.0.2"}


@dataclass(frozen=True)
class Timings:
    """Every interval of the path, shortened for tests (production: docs/alerting.md)."""

    heartbeat_seconds: float = 2.0  # the agents' interval: down after 3x silence
    probe_interval_seconds: float = 2.0
    probe_timeout_seconds: float = 1.0
    sync_stale_seconds: float = 4.0
    #: Scrape timeout = interval: 2 s keeps a busy hub's scrape from timing out (a failed
    #: scrape makes every series of the hub stale, resolving alerts for a moment).
    scrape_seconds: float = 2.0
    eval_seconds: float = 2.0
    for_seconds: float = 2.0  # every alert's ``for`` (non-zero ones), shortened
    #: Production waits 30 s with 15 s intervals: a burst that the probe cycle, a scrape and
    #: an evaluation spread out still lands in one notification. Kept at that proportion.
    group_wait_seconds: float = 3.0
    #: Well above the cluster's peer timeout (alertmanager.PEER_TIMEOUT_SECONDS), as in
    #: production (5 m vs 15 s).
    group_interval_seconds: float = 5.0
    repeat_interval_seconds: float = 3600.0
    #: Alerts true from a Prometheus' first evaluation keep a ``for`` longer than its first
    #: target discovery (throttled to 5 s), as production's are: HubAbsent and
    #: PrometheusAlertmanagerMissing would page at every start (no hub target, no
    #: Alertmanager yet), and Prometheus drops alerts it has no Alertmanager for, sending
    #: them again only after its resend delay (1 m; kept: a shorter one makes Alertmanager
    #: time alerts out between the sends of a Prometheus that waits on an unreachable peer
    #: Alertmanager, and lets a lagging Prometheus re-fire an alert the other just resolved).
    startup_for_seconds: float = 12.0
    #: The hub's start-up grace (hub.service.HubConfig, not configurable: production's).
    startup_grace_seconds: float = 30.0


class StackHub(HubProcess):
    """A hub on a fixed port, so Prometheus' config stays right across restarts."""

    def __init__(self, *args: Any, fixed_port: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fixed_port = fixed_port

    def argv(self) -> list[str]:
        argv = super().argv()
        argv[argv.index("--port") + 1] = str(self.fixed_port)
        return argv


class Unit:
    """Some agents in their own ``fleetobs simulate`` process (killable for real)."""

    def __init__(self, name: str, topology: Path, machine: str, log: Path) -> None:
        self.name = name
        self.topology = topology
        self.machine = machine
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._offset = 0

    def start(self, timeout: float = 30.0) -> None:
        self.spawn()
        self.wait_started(timeout)

    def spawn(self) -> None:
        argv = [sys.executable, "-m", "fleetobs.cli.main", "simulate", "-t", str(self.topology),
                "--host", HOSTS[self.machine], "-m", self.machine]
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log,
                                         env={**env, "PYTHONUNBUFFERED": "1"})

    def wait_started(self, timeout: float = 30.0) -> None:
        proc, offset = self.proc, self._offset
        assert proc is not None

        def started() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"unit {self.name} exited: {self.log.read_text()[-2000:]}")
            return b"simulating " in self.log.read_bytes()[offset:]

        wait_until(started, timeout, f"unit {self.name} starting")

    def kill(self) -> None:
        """SIGKILL: the agents vanish at once (connection refused from now on)."""
        kill_process(self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                kill_process(self.proc)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Cross:
    """The fault proxies on the way from machine ``a`` to machine ``b``."""

    sync: FaultProxy  # a's hub -> b's hub
    scrape: FaultProxy  # a's Prometheus -> b's hub
    alerts: FaultProxy  # a's Prometheus -> b's Alertmanager

    def all(self) -> tuple[FaultProxy, ...]:
        return (self.sync, self.scrape, self.alerts)


def stack_topology(base: Topology, timings: Timings, hub_ports: Mapping[str, int]) -> dict[str, Any]:
    """``base`` for loopback: machine addresses 127.0.0.x, the given hub ports, every
    agent but the hub's own beating at ``timings.heartbeat_seconds`` on free ports of
    :data:`~fleetobs.testing.procs.RESTART_PORTS` (agents stop and start again on them);
    the hub agent on its hub's port (where its /metrics is)."""
    doc = base.model_dump(mode="json")
    taken = set(hub_ports.values())
    doc["machines"] = [{**m, "address": HOSTS[m["name"]], "hub_port": hub_ports[m["name"]]}
                       for m in doc["machines"] if m["name"] in HOSTS]
    agents = []
    for a in doc["agents"]:
        if a["machine"] not in HOSTS:
            continue
        if a["name"] == HUB_AGENT:  # keeps its interval: it beats from the hub's own judge loop
            port = hub_ports[a["machine"]]
            agents.append({**a, "port": port, "health_check_port": port})
        else:
            host = HOSTS[a["machine"]]
            agents.append({**a, "heartbeat_interval_seconds": timings.heartbeat_seconds,
                           "port": fixed_port(host, taken), "health_check_port": fixed_port(host, taken, span=2)})
    doc["agents"] = agents
    doc["groups"] = [g for g in doc["groups"] if g["machine"] in HOSTS]
    return doc
