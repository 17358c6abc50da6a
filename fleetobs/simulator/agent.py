"""One simulated agent: the sockets and answers of the real BaseAgent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import zmq
import zmq.asyncio

from fleetobs.simulator.behaviour import GARBAGE_REPLY, Behaviour, encode, health_object
from fleetobs.simulator.http_server import HttpServer, Response

HEALTH_ACTIONS = frozenset({"ping", "health", "health_check"})


@dataclass
class SimAgentSpec:
    name: str
    machine: str
    group: str | None
    port: int  # 0: any free port
    health_check_port: int  # 0: any free port whose +1 is free too (for HTTP)
    behaviour: Behaviour = Behaviour.OK
    failing_check: str = "ready_signal"  # the health check a degraded agent fails
    slow_seconds: float = 0.5


async def close_endpoints(tasks: list[asyncio.Task[None]], sockets: list[zmq.asyncio.Socket],
                          http: HttpServer | None) -> None:
    """Cancel an agent's serving tasks, close its sockets and HTTP server; empties the lists."""
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await t
    tasks.clear()
    for sock in sockets:
        sock.close(linger=0)
    sockets.clear()
    if http is not None:
        await http.close()


def metrics_text(name: str, uptime_seconds: float, healthy: bool, requests: int) -> str:
    """What BaseAgent's ``GET /metrics`` serves: ``agent_*`` metrics labelled ``agent``."""
    return (
        "# HELP agent_uptime_seconds Seconds since the agent started.\n"
        "# TYPE agent_uptime_seconds gauge\n"
        f'agent_uptime_seconds{{agent="{name}"}} {uptime_seconds:.3f}\n'
        "# HELP agent_health_status 1 when the agent reports itself healthy.\n"
        "# TYPE agent_health_status gauge\n"
        f'agent_health_status{{agent="{name}"}} {1 if healthy else 0}\n'
        "# HELP agent_requests_total Health requests answered.\n"
        "# TYPE agent_requests_total counter\n"
        f'agent_requests_total{{agent="{name}"}} {requests}\n'
    )


class SimulatedAgent:
    """Opens REP on ``port`` and ``health_check_port`` and HTTP on ``health_check_port + 1``.

    ``behaviour`` may be changed while running. Ports actually bound are in
    ``port``/``health_check_port`` after :meth:`start` (they differ from the spec
    when the spec asked for 0).
    """

    def __init__(self, spec: SimAgentSpec, context: zmq.asyncio.Context, host: str = "127.0.0.1",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.behaviour = spec.behaviour
        self.host = host
        self.port = spec.port
        self.health_check_port = spec.health_check_port
        self.http_served = False  # False when health_check_port + 1 was taken
        self.requests = 0  # health requests received over any protocol
        #: When set, every health request (ZeroMQ and HTTP) is answered with these bytes
        #: as they are, whatever the behaviour: hostile replies for hardening tests.
        self.raw_reply: bytes | None = None
        self._context = context
        self._clock = clock
        self._started_at = clock()
        self._sockets: list[zmq.asyncio.Socket] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._http: HttpServer | None = None

    @property
    def http_port(self) -> int:
        return self.health_check_port + 1

    async def start(self, http: bool = True) -> None:
        """Bind and serve; raises OSError when a ZeroMQ port is taken."""
        if self.behaviour is Behaviour.DOWN or self._sockets:
            return
        health = await self._bind_health(http)
        main, self.port = self._bind(self.spec.port, main=True)
        self._serve(main, main=True)
        self._serve(health, main=False)

    async def _bind_health(self, http: bool) -> zmq.asyncio.Socket:
        if self.spec.health_check_port:
            sock, self.health_check_port = self._bind(self.spec.health_check_port, main=False)
            if http:
                await self.serve_http()
            return sock
        for _ in range(100):  # any free port whose +1 is free too
            sock, port = self._bind(0, main=False)
            if not http or await self._start_http(port + 1):
                self.health_check_port = port
                self.http_served = http
                return sock
            self._sockets.remove(sock)
            sock.close(linger=0)
        raise OSError(f"{self.spec.name}: no free port pair for health_check_port and its HTTP port")

    async def serve_http(self) -> bool:
        """Open HTTP on health_check_port + 1 (after :meth:`start` with ``http=False``).
        False when the port is taken: the real fleet's +1 collisions, reported, not fatal."""
        if self._http is None and self._sockets:
            self.http_served = await self._start_http(self.health_check_port + 1)
        return self.http_served

    async def _start_http(self, port: int) -> bool:
        if port > 65535:
            return False
        server = HttpServer(self._on_http)
        try:
            await server.start(self.host, port)
        except OSError:
            return False
        self._http = server
        return True

    def _bind(self, port: int, main: bool) -> tuple[zmq.asyncio.Socket, int]:
        sock = self._context.socket(zmq.REP)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            if port:
                sock.bind(f"tcp://{self.host}:{port}")
                bound = port
            else:
                bound = sock.bind_to_random_port(f"tcp://{self.host}")
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            what = "port" if main else "health_check_port"
            raise OSError(f"{self.spec.name}: cannot bind {what} {port}: {exc.strerror}") from None
        self._sockets.append(sock)
        return sock, bound

    def _serve(self, sock: zmq.asyncio.Socket, main: bool) -> None:
        self._tasks.append(asyncio.create_task(self._rep_loop(sock, main), name=f"sim-{self.spec.name}"))

    async def _rep_loop(self, sock: zmq.asyncio.Socket, main: bool) -> None:
        with contextlib.suppress(zmq.ZMQError, asyncio.CancelledError):
            while True:
                raw = await sock.recv()
                if main and not _is_health_request(raw):
                    await sock.send(encode({"status": "error", "message": "unknown action"}))
                    continue
                self.requests += 1
                reply = await self._reply()
                if reply is None:
                    await asyncio.Event().wait()  # silent: the REP socket stays stuck, as a hung agent's would
                await sock.send(reply or b"")

    async def _reply(self) -> bytes | None:
        if self.raw_reply is not None:
            return self.raw_reply
        b = self.behaviour
        if b is Behaviour.SILENT:
            return None
        if b is Behaviour.SLOW:
            await asyncio.sleep(self.spec.slow_seconds)
        if b is Behaviour.GARBAGE:
            return GARBAGE_REPLY
        return encode(self._health())

    def _health(self) -> dict[str, object]:
        return health_object(self.behaviour, uptime=self._clock() - self._started_at,
                             failing_check=self.spec.failing_check)

    async def _on_http(self, method: str, path: str) -> Response:
        if method != "GET":
            return 405, "text/plain", b"method not allowed\n"
        if path == "/health":
            self.requests += 1
            reply = await self._reply()
            if reply is None:
                return None
            return 200, "application/json", reply  # 200 even when degraded: the real agents do
        if path == "/metrics":
            return 200, "text/plain; version=0.0.4", self._metrics().encode()
        return 404, "text/plain", b"not found\n"

    def _metrics(self) -> str:
        up = self.behaviour not in (Behaviour.ERROR, Behaviour.GARBAGE)
        return metrics_text(self.spec.name, self._clock() - self._started_at, up, self.requests)

    async def stop(self) -> None:
        """Close sockets and the HTTP server. Idempotent."""
        await close_endpoints(self._tasks, self._sockets, self._http)
        self._http = None


def _is_health_request(raw: bytes) -> bool:
    try:
        msg = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(msg, dict) and msg.get("action") in HEALTH_ACTIONS

