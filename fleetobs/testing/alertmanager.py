"""Real Alertmanagers (Debian's ``prometheus-alertmanager``) for tests, alone or as a
two-node gossip cluster on loopback.

Everything goes over Alertmanager's HTTP API v2 (no amtool): ``GET /api/v2/status``
(cluster state and peers), ``GET/POST /api/v2/alerts``, ``POST /api/v2/silences``.

A cluster deduplicates notifications through its gossiped notification log: the
node at position N of the sorted peer list waits N x ``--cluster.peer-timeout``
before it sends, and skips what a peer already sent. Tests shorten the gossip and
the peer timeout (defaults 200 ms and 15 s) so a notification is both deduplicated
and quick.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleetobs.testing.binaries import require_binary
from fleetobs.testing.procs import free_port, http_json, http_ok, kill_process

#: How long the second node waits for the first one's notification to show in the
#: gossiped log before it sends itself (production default: 15 s). It must stay well below
#: the group_interval (production 5 m), as in production: a node's group flush blocks
#: for this wait, and a wait longer than the interval shifts its flushes away from the
#: other node's, which then makes it send stale snapshots (a "firing" notification right
#: after the other node sent the resolution).
PEER_TIMEOUT_SECONDS = 2.0
#: Gossip settings for tests: settles in ~1.5 s (3 checks x 10 gossip intervals).
TEST_CLUSTER_ARGS: tuple[str, ...] = (
    "--cluster.gossip-interval=50ms",
    "--cluster.pushpull-interval=2s",
    f"--cluster.peer-timeout={PEER_TIMEOUT_SECONDS:g}s",
    "--cluster.settle-timeout=10s",
)


class AlertmanagerProcess:
    """One Alertmanager on ``host``; with ``cluster=True`` it gossips on ``cluster_port``
    (TCP and UDP) with ``peers`` (``host:port`` of the other nodes' gossip)."""

    def __init__(self, config_yaml: str, workdir: Path, *, host: str = "127.0.0.1",
                 port: int | None = None, cluster: bool = False, cluster_port: int | None = None,
                 peers: Sequence[str] = (), extra_args: Sequence[str] = ()) -> None:
        self.config_yaml = config_yaml
        self.workdir = Path(workdir)
        self.host = host
        self.port = port or free_port(host)
        self.cluster = cluster
        self.cluster_port = (cluster_port or free_port(host, udp_too=True)) if cluster else 0
        self.peers = list(peers)
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.workdir / "alertmanager.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def cluster_address(self) -> str:
        return f"{self.host}:{self.cluster_port}"

    def argv(self, binary: str) -> list[str]:
        argv = [binary, f"--config.file={self.workdir / 'alertmanager.yml'}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address={self.host}:{self.port}",
                f"--web.external-url={self.url}", "--log.level=info"]
        if self.cluster:
            argv += [f"--cluster.listen-address={self.cluster_address}",
                     f"--cluster.advertise-address={self.cluster_address}",
                     *TEST_CLUSTER_ARGS, *(f"--cluster.peer={p}" for p in self.peers)]
        else:
            argv.append("--cluster.listen-address=")  # "" disables clustering
        return argv + self.extra_args

    def start(self, timeout: float = 30.0) -> AlertmanagerProcess:
        binary = require_binary("prometheus-alertmanager", "alertmanager")
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "alertmanager.yml").write_text(self.config_yaml, encoding="utf-8")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.argv(binary), stdout=log, stderr=log, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if http_ok(f"{self.url}/-/ready"):
                return self
            time.sleep(0.1)
        tail = self.log.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"alertmanager on {self.url} did not become ready:\n{tail}")

    def stop(self) -> None:
        kill_process(self.proc)

    def __enter__(self) -> AlertmanagerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- HTTP API v2 -----------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = http_json(f"{self.url}/api/v2/status")
        return body

    def alerts(self, active: bool = True) -> list[dict[str, Any]]:
        """Alerts this node holds (``active``: not silenced nor inhibited)."""
        flags = "active=true&silenced=false&inhibited=false" if active else ""
        body: list[dict[str, Any]] = http_json(f"{self.url}/api/v2/alerts?{flags}")
        return body

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """What Prometheus does: ``[{"labels": {...}, "annotations": {...}, "startsAt": ...}]``."""
        http_json(f"{self.url}/api/v2/alerts", data=json.dumps(alerts).encode(),
                  headers={"Content-Type": "application/json"})

    def silence(self, matchers: dict[str, str], seconds: float, comment: str = "test") -> str:
        now = time.time()
        body = {"matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True}
                             for k, v in matchers.items()],
                "startsAt": _rfc3339(now), "endsAt": _rfc3339(now + seconds),
                "createdBy": "fleetobs-tests", "comment": comment}
        reply = http_json(f"{self.url}/api/v2/silences", data=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json"})
        return str(reply["silenceID"])

    def cluster_peers(self) -> list[str]:
        """Gossip addresses of the peers this node sees (itself included), when ready."""
        cl = self.status().get("cluster") or {}
        if cl.get("status") != "ready":
            return []
        return sorted(str(p["address"]) for p in cl.get("peers") or [])


class AlertmanagerCluster:
    """Two (or more) clustered Alertmanagers, one per host (one per machine in production),
    each peered with the others, started together and waited on until every node sees
    every other one."""

    def __init__(self, config_yaml: str, workdir: Path, hosts: Sequence[str] = ("127.0.0.1", "127.0.0.2"),
                 extra_args: Sequence[str] = ()) -> None:
        self.nodes: list[AlertmanagerProcess] = []
        for i, host in enumerate(hosts):
            self.nodes.append(AlertmanagerProcess(config_yaml, Path(workdir) / f"am{i}", host=host,
                                                  cluster=True, extra_args=extra_args))
        for node in self.nodes:
            node.peers = [n.cluster_address for n in self.nodes if n is not node]

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def start(self, timeout: float = 30.0) -> AlertmanagerCluster:
        try:
            for node in self.nodes:
                node.start(timeout)
            want = sorted(n.cluster_address for n in self.nodes)
            deadline = time.monotonic() + timeout
            while any(n.cluster_peers() != want for n in self.nodes):
                if time.monotonic() > deadline:
                    seen = {n.url: n.cluster_peers() for n in self.nodes}
                    raise RuntimeError(f"alertmanager cluster did not form: want {want}, saw {seen}")
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> AlertmanagerCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"
