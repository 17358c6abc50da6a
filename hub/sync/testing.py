"""An in-memory network of sync servers with fault injection (a fake, not a mock).

:class:`MemoryNetwork` delivers a POST straight to the target hub's
:meth:`hub.sync.server.SyncServer.handle`, through a :class:`Faults` policy per
direction ``(from_url_owner, to_url)``:

* ``cut``: the request never arrives (the sender sees a timeout);
* ``drop_request`` / ``drop_reply``: probability that the request is lost, or that it
  arrives and is applied but its reply is lost (one-way loss);
* ``duplicate``: probability that the request is applied twice;
* ``delay``: probability that the request is held back (the sender sees a timeout)
  and delivered later, after newer ones: :meth:`MemoryNetwork.deliver_held` releases
  held requests in a shuffled order (reordering).

Randomness comes from the ``random.Random`` given, so runs are reproducible.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from hub.sync.engine import SyncEngine
from hub.sync.peer import SyncConfig
from hub.sync.peers import Peer
from hub.sync.server import SyncServer
from hub.sync.transport import Reply, TransportError


@dataclass
class Faults:
    cut: bool = False
    drop_request: float = 0.0
    drop_reply: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0

    def heal(self) -> None:
        self.cut = False
        self.drop_request = self.drop_reply = self.duplicate = self.delay = 0.0


@dataclass(frozen=True)
class _Held:
    url: str
    path: str
    body: bytes
    authorization: str | None


class MemoryNetwork:
    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random(0)  # noqa: S311 - reproducible faults, not crypto
        self.servers: dict[str, SyncServer] = {}
        self.faults: dict[tuple[str, str], Faults] = {}
        self.held: list[_Held] = []
        self.delivered = 0

    def attach(self, url: str, server: SyncServer) -> None:
        """Serve ``url`` by ``server`` (re-attach after a restart)."""
        self.servers[url] = server

    def detach(self, url: str) -> None:
        """The hub at ``url`` is gone (requests to it fail to connect)."""
        self.servers.pop(url, None)

    def link(self, sender: str, url: str) -> Faults:
        """The fault policy of requests from ``sender`` (a name) to ``url``."""
        return self.faults.setdefault((sender, url), Faults())

    def heal(self) -> None:
        for f in self.faults.values():
            f.heal()

    def transport(self, sender: str) -> MemoryTransport:
        return MemoryTransport(self, sender)

    def deliver_held(self) -> int:
        """Apply every held-back request, in a shuffled order; returns how many."""
        held, self.held = self.held, []
        self.rng.shuffle(held)
        n = 0
        for h in held:
            server = self.servers.get(h.url)
            if server is not None:
                server.handle(h.path, h.body, h.authorization)
                n += 1
        return n


class MemoryTransport:
    def __init__(self, net: MemoryNetwork, sender: str) -> None:
        self.net = net
        self.sender = sender
        self.closed = False

    async def post(self, url: str, path: str, body: bytes,
                   headers: Mapping[str, str]) -> Reply:
        net = self.net
        f = net.link(self.sender, url)
        rng = net.rng
        auth = headers.get("authorization")
        if f.cut or (f.drop_request and rng.random() < f.drop_request):
            raise TransportError("timeout", "request lost")
        server = net.servers.get(url)
        if server is None:
            raise TransportError("connect", "nobody listens")
        if f.delay and rng.random() < f.delay:
            net.held.append(_Held(url, path, body, auth))
            raise TransportError("timeout", "request held back")
        status, reply = server.handle(path, body, auth)
        net.delivered += 1
        if f.duplicate and rng.random() < f.duplicate:
            status, reply = server.handle(path, body, auth)
        if f.drop_reply and rng.random() < f.drop_reply:
            raise TransportError("timeout", "reply lost")
        return Reply(status, reply)

    async def aclose(self) -> None:
        self.closed = True


class SteppedClock(Protocol):
    """What :class:`Cluster` needs of a clock (hub.testing.FakeClock has it)."""

    def monotonic(self) -> float: ...

    def advance(self, seconds: float) -> None: ...


class Cluster:
    """N hubs' sync engines on one :class:`MemoryNetwork`, driven by one fake clock.

    Nothing runs in the background: :meth:`run` advances the clock in small steps and
    lets every link take its step, so a test decides exactly what happens when.
    """

    def __init__(self, machines: list[str], clock: SteppedClock, *, rng: random.Random | None = None,
                 config: SyncConfig | None = None, token: str | None = None,
                 skew: dict[str, float] | None = None) -> None:
        self.clock = clock
        #: Per-machine offset of its monotonic clock (machines never share clocks).
        self.skew = skew or {}
        self.net = MemoryNetwork(rng)
        self.config = config or SyncConfig()
        self.token = token
        self.urls = {m: f"mem://{m}" for m in machines}
        self.engines: dict[str, SyncEngine] = {}
        for m in machines:
            self.start(m, epoch=1)

    def start(self, machine: str, epoch: int) -> SyncEngine:
        """(Re)start the hub of ``machine``: a new engine, empty of peer records."""
        peers = [Peer(m, u) for m, u in self.urls.items() if m != machine]
        offset = self.skew.get(machine, 0.0)
        eng = SyncEngine(machine, epoch, clock=lambda: self.clock.monotonic() + offset,
                         transport=self.net.transport(machine), peers=peers, token=self.token,
                         config=self.config, known_machines=list(self.urls))
        self.engines[machine] = eng
        self.net.attach(self.urls[machine], eng.server)
        return eng

    def stop(self, machine: str) -> None:
        self.net.detach(self.urls[machine])

    async def step(self) -> None:
        for m, eng in list(self.engines.items()):
            if self.urls[m] in self.net.servers:
                for link in eng.links:
                    await link.step()

    async def run(self, seconds: float, dt: float = 0.1) -> None:
        steps = max(round(seconds / dt), 1)
        for _ in range(steps):
            self.clock.advance(dt)
            await self.step()

    def diverging(self) -> list[str]:
        """What some hub holds wrong about another's records (empty: converged)."""
        problems: list[str] = []
        for owner, src in self.engines.items():
            truth = {r.name: r for r in src.owned.since(0, src.clock())}
            for m, eng in self.engines.items():
                if m == owner:
                    continue
                view = eng.fleet.owners.get(owner)
                held = {} if view is None else {n: h.record for n, h in view.records.items()}
                if set(held) != set(truth):
                    problems.append(f"{m} holds {len(held)} of {owner}'s {len(truth)} names")
                    continue
                for name, rec in truth.items():
                    h = held[name]
                    if (h.version, h.facts) != (rec.version, rec.facts):
                        problems.append(f"{m} holds {owner}/{name} at {h.version}, owner {rec.version}")
        return problems


class HubProcess:
    """A real ``fleetobs hub`` subprocess (for end-to-end sync tests and benchmarks).

    It listens on ``host`` at a free port (``--port 0``); the port is read from the
    one line the CLI prints. ``peers`` are ``--peer`` values: ``NAME=URL`` names the
    peer's machine (a proxy's URL matches no topology address). ``kill()`` is SIGKILL (no shutdown, no final flush);
    ``start()`` again reuses the data dir, as a restarted container would.
    """

    def __init__(self, machine: str, host: str, topology: Path, data_dir: Path,
                 peers: Sequence[str] = (), env: Mapping[str, str] | None = None) -> None:
        self.machine = machine
        self.host = host
        self.topology = topology
        self.data_dir = data_dir
        self.peers = list(peers)
        self.env = dict(env or {})
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / f"hub-{machine}.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "fleetobs.cli.main", "hub", "--machine", self.machine,
                "--host", self.host, "--port", "0", "--topology", str(self.topology),
                "--data-dir", str(self.data_dir)]
        for p in self.peers or ["none"]:  # none: no default peers off the loopback
            argv += ["--peer", p]
        return argv

    async def start(self, timeout: float = 60.0) -> HubProcess:  # a loaded CI box is slow
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
        env.update({"FLEET_PROBE_ENABLED": "false", "FLEET_LOG_LEVEL": "INFO", **self.env})
        self.data_dir.mkdir(parents=True, exist_ok=True)
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=log, env=env)
        pattern = re.compile(rf"machine {re.escape(self.machine)} listening on http://[^:]+:(\d+)")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = pattern.findall(self.log.read_bytes()[offset:].decode(errors="replace"))
            if found and self.proc.poll() is None:
                self.port = int(found[-1])
                if await self._ready():
                    return self
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        raise RuntimeError(f"hub {self.machine} did not start:\n{self.log.read_text()[-3000:]}")

    async def _ready(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=1.0) as c:
                return (await c.get(f"{self.url}/ready")).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: the hub gets no chance to flush or say goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        with self.log.open("a") as log:
            log.write("\n--- killed ---\n")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
