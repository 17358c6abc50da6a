"""One container group played inside one container, with the real BaseAgent's quirks.

What the unmodified BaseAgent does in a group container (tests/fixtures/real-fleet/README.md),
reproduced so the compose bundle is proven against it, not against a friendlier agent:

- Redis at ``localhost:6379`` and NATS at ``localhost:4222``, always (``redis``/``nats`` of
  :class:`GroupConfig` exist for tests on a shared host; the container uses the defaults);
  without Redis every agent reports ``degraded`` (``redis_connected`` false);
- the health port (ZeroMQ REP) and the HTTP server (``health_check_port + 1``) come up
  ``health_delay_seconds`` (~1 s) after start; the main port only when the constructor
  (``constructor_seconds``, ~20 s: registering with SystemDigitalTwin) has finished;
  until then the health object says ``initialized: false``;
- ports are bound as the agents come to them: whoever binds first wins. An agent whose own
  ZeroMQ port is taken hangs in its constructor for good (its health port, if it has one,
  keeps saying ``initialized: false``); one whose HTTP port is taken just has no ``/health``;
- readiness is the Redis key ``agent:ready:NAME``, set once with a 300 s expiry and never
  refreshed: when it expires the agent turns ``degraded`` (``ready_signal`` false);
- SIGINT: agents whose constructor finished delete their ready keys, then the process exits;
  SIGTERM is not handled at all (the process dies at once and the keys linger).

The launcher starts the agents in the manifest's order and, before each agent, waits until
the owners of its HTTP port have bound it (``start_after``), as the compose bundle's start
order requires. ``order="reverse"`` plays a launcher that gets it wrong (every agent at once,
last first), to show what the real fleet then does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import zmq
import zmq.asyncio

from fleetobs.simulator import resp
from fleetobs.simulator.agent import HEALTH_ACTIONS, close_endpoints, metrics_text
from fleetobs.simulator.behaviour import Behaviour, encode, health_object
from fleetobs.simulator.http_server import HttpServer, Response

READY_KEY = "agent:ready:{name}"
READY_TTL_SECONDS = 300


@dataclass(frozen=True)
class GroupConfig:
    constructor_seconds: float = 20.0
    health_delay_seconds: float = 1.0
    host: str = "127.0.0.1"  # where the agents bind (BIND_ADDRESS)
    redis: tuple[str, int] = ("127.0.0.1", 6379)  # BaseAgent: always localhost
    nats: tuple[str, int] = ("127.0.0.1", 4222)
    ready_ttl_seconds: int = READY_TTL_SECONDS
    order: Literal["manifest", "reverse"] = "manifest"
    reverse_gap_seconds: float = 0.05


@dataclass(frozen=True)
class MemberSpec:
    name: str
    port: int
    health_check_port: int
    required: bool = True
    start_after: tuple[tuple[str, int], ...] = ()  # (owner agent, port it must have bound)


def members_from_manifest(doc: dict[str, Any]) -> list[MemberSpec]:
    return [MemberSpec(a["name"], int(a["port"]), int(a["health_check_port"]), bool(a.get("required", True)),
                       tuple((w["agent"], int(w["port"])) for w in a.get("start_after", ())))
            for a in doc["agents"]]


@dataclass
class AgentState:
    started: bool = False
    health_bound: bool = False
    http_bound: bool = False
    main_bound: bool = False
    initialized: bool = False
    hung: str | None = None  # why it hangs in its constructor
    ready_key_set: bool = False
    bound: dict[int, asyncio.Event] = field(default_factory=dict)


class GroupAgent:
    """One BaseAgent: health socket and HTTP early, main socket after the constructor."""

    def __init__(self, spec: MemberSpec, config: GroupConfig, context: zmq.asyncio.Context,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.config = config
        self.state = AgentState()
        self.state.bound = {spec.port: asyncio.Event(), spec.health_check_port: asyncio.Event()}
        self.attempted = {spec.port: asyncio.Event(), spec.health_check_port: asyncio.Event()}
        self.requests = 0
        self._context = context
        self._clock = clock
        self._started_at = clock()
        self._sockets: list[zmq.asyncio.Socket] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._http: HttpServer | None = None
        self._redis = resp.Connection(*config.redis)

    @property
    def ready_key(self) -> str:
        return READY_KEY.format(name=self.spec.name)

    async def run(self) -> None:
        """Start, then construct; returns when constructed (or hung for good)."""
        self.state.started = True
        self._started_at = self._clock()
        await asyncio.sleep(self.config.health_delay_seconds)
        health = self._bind(self.spec.health_check_port)
        if health is None:
            self.state.hung = f"health_check_port {self.spec.health_check_port} is taken"
            self.attempted[self.spec.port].set()
            return
        self.state.health_bound = True
        self._serve(health, main=False)
        self.state.http_bound = await self._start_http()
        await asyncio.sleep(max(0.0, self.config.constructor_seconds - self.config.health_delay_seconds))
        main = self._bind(self.spec.port)
        if main is None:
            self.state.hung = f"port {self.spec.port} is taken"
            return
        self.state.main_bound = True
        self._serve(main, main=True)
        await self._set_ready_key()
        self.state.initialized = True

    def _bind(self, port: int) -> zmq.asyncio.Socket | None:
        sock = self._context.socket(zmq.REP)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.bind(f"tcp://{self.config.host}:{port}")
        except zmq.ZMQError:
            sock.close(linger=0)
            return None
        finally:
            self.attempted[port].set()
        self._sockets.append(sock)
        self.state.bound[port].set()
        return sock

    async def _start_http(self) -> bool:
        port = self.spec.health_check_port + 1
        if port > 65535:
            return False
        server = HttpServer(self._on_http)
        try:
            await server.start(self.config.host, port)
        except OSError:
            return False  # another agent's port: this one has no /health, and carries on
        self._http = server
        return True

    async def _set_ready_key(self) -> None:
        with contextlib.suppress(OSError, TimeoutError, resp.RedisError):
            await self._redis.command("SET", self.ready_key, "1", "EX", self.config.ready_ttl_seconds)
            self.state.ready_key_set = True

    async def clear_ready_key(self) -> bool:
        """SIGINT cleanup: only an agent whose constructor finished gets this far."""
        if not self.state.initialized:
            return False
        try:
            await self._redis.command("DEL", self.ready_key)
        except (OSError, TimeoutError, resp.RedisError):
            return False
        return True

    async def health(self) -> dict[str, Any]:
        body = health_object(Behaviour.OK, uptime=self._clock() - self._started_at)
        checks: dict[str, bool] = body["health_checks"]
        if not self.state.initialized:
            checks.update(port_accessible=False, ready_signal=False)
            body.update(status="degraded", ready=False, initialized=False, health_status="degraded",
                        message="initializing: registering with SystemDigitalTwin")
            return body
        try:
            ready = await self._redis.command("EXISTS", self.ready_key, timeout=1.0)
            checks["redis_connected"] = True
            checks["ready_signal"] = ready == 1
        except (OSError, TimeoutError, resp.RedisError):
            checks["redis_connected"] = False
            checks["ready_signal"] = False
        failed = [k for k, v in checks.items() if not v]
        if failed:
            body.update(status="degraded", ready=False, health_status="degraded",
                        message=", ".join(f"{k} check failed" for k in failed))
        return body

    def _serve(self, sock: zmq.asyncio.Socket, main: bool) -> None:
        self._tasks.append(asyncio.create_task(self._rep_loop(sock, main), name=f"group-{self.spec.name}"))

    async def _rep_loop(self, sock: zmq.asyncio.Socket, main: bool) -> None:
        with contextlib.suppress(zmq.ZMQError, asyncio.CancelledError):
            while True:
                raw = await sock.recv()
                if main and not _is_health_request(raw):
                    await sock.send(encode({"status": "error", "message": "unknown action"}))
                    continue
                self.requests += 1
                await sock.send(encode(await self.health()))

    async def _on_http(self, method: str, path: str) -> Response:
        if method != "GET":
            return 405, "text/plain", b"method not allowed\n"
        if path == "/health":
            self.requests += 1
            return 200, "application/json", encode(await self.health())  # 200 even when degraded
        if path == "/metrics":
            healthy = (await self.health()).get("status") == "ok"
            return 200, "text/plain; version=0.0.4", \
                metrics_text(self.spec.name, self._clock() - self._started_at, healthy, self.requests).encode()
        return 404, "text/plain", b"not found\n"

    async def stop(self) -> None:
        """Close every socket and the HTTP server. Idempotent."""
        await close_endpoints(self._tasks, self._sockets, self._http)
        self._http = None
        self._redis.close()


def _is_health_request(raw: bytes) -> bool:
    try:
        msg = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(msg, dict) and msg.get("action") in HEALTH_ACTIONS


class GroupSimulator:
    """Every agent of one group, launched in order, in one process (one network namespace)."""

    def __init__(self, members: list[MemberSpec], config: GroupConfig) -> None:
        self.members = members
        self.config = config
        self.agents: dict[str, GroupAgent] = {}
        self.nats_connected: bool | None = None
        self._context: zmq.asyncio.Context | None = None
        self._launch: asyncio.Task[None] | None = None
        self._runs: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._context = zmq.asyncio.Context()
        self._context.set(zmq.MAX_SOCKETS, max(1024, 2 * len(self.members) + 64))
        for spec in self.members:
            self.agents[spec.name] = GroupAgent(spec, self.config, self._context)
        self._launch = asyncio.create_task(self._launcher(), name="group-launcher")

    async def _launcher(self) -> None:
        with contextlib.suppress(OSError, TimeoutError):
            host, port = self.config.nats
            self.nats_connected = (await resp.tcp_greeting(host, port)).startswith(b"INFO")
        if self.config.order == "reverse":
            for spec in reversed(self.members):
                self._runs.append(asyncio.create_task(self.agents[spec.name].run()))
                await asyncio.sleep(self.config.reverse_gap_seconds)
            return
        for spec in self.members:
            for owner, port in spec.start_after:
                other = self.agents.get(owner)
                if other is not None and port in other.attempted:
                    await other.attempted[port].wait()  # bound, or gave up: either way it is settled
            self._runs.append(asyncio.create_task(self.agents[spec.name].run()))

    async def wait_constructed(self, timeout: float) -> bool:
        """True when every agent finished its constructor (hung ones never do)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.agents and all(a.state.initialized for a in self.agents.values()):
                return True
            await asyncio.sleep(0.05)
        return False

    async def interrupt(self) -> list[str]:
        """SIGINT: constructed agents delete their ready keys. Returns whose keys were deleted."""
        cleared = []
        for name, agent in self.agents.items():
            if await agent.clear_ready_key():
                cleared.append(name)
        return cleared

    async def stop(self) -> None:
        """Stop launching, close every agent and the context. Idempotent."""
        tasks = [t for t in [self._launch, *self._runs] if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._runs.clear()
        self._launch = None
        await asyncio.gather(*(a.stop() for a in self.agents.values()))
        if self._context is not None:
            self._context.destroy(linger=0)
            self._context = None
