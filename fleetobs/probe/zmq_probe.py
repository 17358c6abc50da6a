"""ZeroMQ health probe: REQ ``{"action": "health_check"}`` to an agent's health socket.

A REQ socket that timed out is stuck in its send/recv lockstep (the real fleet's
trap), so a socket that did not get its answer is closed and the next probe opens
a new one. Sockets that did answer are kept per endpoint and reused: reconnecting
every few seconds for each of dozens of agents costs CPU and TCP handshakes for
nothing. Host names are resolved here, not by libzmq (see :func:`resolve`), and a
new socket is preceded by a plain TCP connect so "nothing listens" is reported as
refused at once instead of waiting out the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import re
import socket
import time
from collections.abc import Callable

import zmq
import zmq.asyncio

from fleetobs.probe.health import decode_health
from fleetobs.probe.result import Outcome, ProbeResult, Protocol

REQUEST = json.dumps({"action": "health_check"}).encode()
MAX_SOCKETS = 65536


class ResolveError(Exception):
    pass


_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$")


async def resolve(host: str, port: int, timeout: float) -> str:
    """Host name -> IP address, off the event loop and bounded by ``timeout``.

    libzmq resolves names inside its single I/O thread, where a slow DNS answer (a
    stopped compose service) would stall every other probe; resolving here first
    keeps one agent's DNS trouble its own, and names it ("cannot resolve").
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    if not _HOSTNAME.match(host):
        raise ResolveError(f"invalid host name {host[:80]!r}")
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    except TimeoutError:
        raise ResolveError(f"cannot resolve {host!r} within {timeout:g} s") from None
    except OSError as exc:
        raise ResolveError(f"cannot resolve {host!r}: {exc.strerror or exc}") from None
    if not infos:
        raise ResolveError(f"cannot resolve {host!r}: no address")
    # IPv4 first: agents bind 0.0.0.0 / 127.0.0.1 far more often than [::].
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0])


def zmq_endpoint(host: str, port: int) -> str:
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


class ZmqProber:
    """Probes over ZeroMQ; one instance serves many agents concurrently."""

    def __init__(self, context: zmq.asyncio.Context | None = None,
                 clock: Callable[[], float] = time.perf_counter, max_idle: int = 512) -> None:
        self._own_context = context is None
        if context is None:
            context = zmq.asyncio.Context()
            # libzmq's default cap is 1023 sockets per context; the real bound is the
            # process's file descriptors, and running out is reported per probe.
            context.set(zmq.MAX_SOCKETS, MAX_SOCKETS)
        self._context = context
        self._max_idle = max_idle  # pooled sockets hold a TCP connection (and fds) each
        self._clock = clock
        self._idle: dict[str, zmq.asyncio.Socket] = {}  # endpoint -> socket that last answered
        self._closed = False

    async def probe(self, host: str, port: int, timeout: float) -> ProbeResult:
        endpoint = zmq_endpoint(host, port)
        if self._closed:
            return ProbeResult(Outcome.UNREACHABLE, Protocol.ZMQ, endpoint,
                               reason="prober is closed")
        # Taking the socket out of the pool makes concurrent probes of one endpoint
        # use separate sockets instead of breaking one socket's lockstep.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        sock = self._idle.pop(endpoint, None)
        if sock is None:
            try:
                address = await resolve(host, port, timeout)
            except ResolveError as exc:
                return ProbeResult(Outcome.UNREACHABLE, Protocol.ZMQ, endpoint, reason=str(exc))
            failed = await _not_listening(address, port, deadline, endpoint)
            if failed is not None:
                return failed
            try:
                sock = self._open(zmq_endpoint(address, port))
            except zmq.ZMQError as exc:
                return ProbeResult(Outcome.UNREACHABLE, Protocol.ZMQ, endpoint,
                                   reason=f"cannot connect: {exc.strerror}")
        started = self._clock()
        try:
            async with asyncio.timeout_at(deadline):
                await sock.send(REQUEST)
                raw = await sock.recv()
        except TimeoutError:
            sock.close(linger=0)  # stuck in lockstep: never reuse
            return ProbeResult(Outcome.TIMEOUT, Protocol.ZMQ, endpoint,
                               reason=f"no reply within {timeout:g} s")
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            return ProbeResult(Outcome.UNREACHABLE, Protocol.ZMQ, endpoint, reason=exc.strerror)
        except BaseException:
            sock.close(linger=0)  # cancelled mid-request: the socket is mid-lockstep
            raise
        latency = self._clock() - started
        self._keep(endpoint, sock)
        outcome, reason, health = decode_health(raw)
        return ProbeResult(outcome, Protocol.ZMQ, endpoint, latency, reason, health)

    def _keep(self, endpoint: str, sock: zmq.asyncio.Socket) -> None:
        if self._closed or len(self._idle) >= self._max_idle:  # closed meanwhile, or pool full
            sock.close(linger=0)
        else:
            self._idle[endpoint] = sock

    def _open(self, endpoint: str) -> zmq.asyncio.Socket:
        sock = self._context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        if endpoint.startswith("tcp://["):
            sock.setsockopt(zmq.IPV6, 1)
        # Bound the reconnect chatter against a dead agent.
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 5000)
        try:
            sock.connect(endpoint)
        except zmq.ZMQError:
            sock.close(linger=0)
            raise
        return sock

    def close(self) -> None:
        """Close every socket (and the context when this prober made it). Idempotent."""
        if self._closed:
            return
        self._closed = True
        for sock in self._idle.values():
            sock.close(linger=0)
        self._idle.clear()
        if self._own_context:
            self._context.destroy(linger=0)


async def _not_listening(address: str, port: int, deadline: float,
                         endpoint: str) -> ProbeResult | None:
    """Before a new REQ socket: is anything listening? ZeroMQ connects lazily and would
    turn "nothing there" (a stopped container) into a full timeout indistinguishable
    from a hung agent; one plain TCP connect tells them apart, quickly. ``None``: it is."""
    try:
        async with asyncio.timeout_at(deadline):
            _reader, writer = await asyncio.open_connection(address, port)
    except TimeoutError:
        return ProbeResult(Outcome.TIMEOUT, Protocol.ZMQ, endpoint,
                           reason="no TCP connection before the timeout")
    except ConnectionRefusedError:
        return ProbeResult(Outcome.REFUSED, Protocol.ZMQ, endpoint, reason="connection refused")
    except OSError as exc:
        return ProbeResult(Outcome.UNREACHABLE, Protocol.ZMQ, endpoint,
                           reason=f"cannot connect: {exc.strerror or exc}")
    writer.close()  # the agent's ZeroMQ socket drops a peer that never greets
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None
