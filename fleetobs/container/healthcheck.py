"""A compose healthcheck for a container group, and for HTTP services: exit 0 healthy, 1 not.

Docker's contract: 0 healthy, 1 unhealthy, 2 reserved. Every path out of this script,
including a crash or a missing pyzmq, ends in 0 or 1.

Runs with the standard library and pyzmq only, because the agents' image has Python 3 and
pyzmq (BaseAgent needs them) but neither fleetobs nor curl. ``fleetobs build`` copies this
file into each bundle (``group/healthcheck.py``), which mounts it read-only next to the
group's manifest (``group/<group>.json``: its agents and ports).

``group MANIFEST``: every agent of the group is asked over ZeroMQ on its
``health_check_port`` (never HTTP: an agent whose ``health_check_port + 1`` belongs to
another agent has no ``/health``, and curl against a ZeroMQ port never succeeds), and its
main port must accept connections (BaseAgent binds it only when its ~20 s constructor has
finished). An agent is healthy when both hold, its health object does not say
``initialized: false`` and its ``status`` is not ``error``. ``degraded`` counts as
answering unless ``--strict``: the real fleet's 300 s readiness key expiry turns every
agent degraded, which is the hub's to explain, not a reason to mark every container
unhealthy. Agents with ``"required": false`` are reported
but never fail the container.

``http URL``: healthy when a GET answers 2xx (the hub's ``/ready``).

``relay ROUTE...``: the group relay (fleetobs/container/relay.py) answers on each listen
address with a byte from its upstream.

Kept quick to start (no asyncio, urllib only for ``http``): under load a healthcheck that
spends seconds importing misses Docker's timeout.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from typing import Any

HEALTHY, UNHEALTHY = 0, 1
REQUEST = json.dumps({"action": "health_check"}).encode()


def tcp_open(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ask_all(host: str, ports: list[int], timeout: float) -> dict[int, Any]:
    """ZeroMQ REQ to every port at once; port -> decoded reply (None: no answer in time).

    One socket per port, closed after use: a REQ that timed out cannot send again."""
    import zmq  # here, so a missing pyzmq is an unhealthy verdict, not exit code 1 from a traceback

    context = zmq.Context()
    sockets: dict[Any, int] = {}
    replies: dict[int, Any] = dict.fromkeys(ports)
    try:
        poller = zmq.Poller()
        for port in ports:
            sock = context.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(f"tcp://{host}:{port}")
            sock.send(REQUEST, zmq.NOBLOCK)
            poller.register(sock, zmq.POLLIN)
            sockets[sock] = port
        deadline = time.monotonic() + timeout
        while len(sockets) > sum(r is not None for r in replies.values()):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for sock, _ in poller.poll(max(1, int(left * 1000))):
                raw = sock.recv()
                poller.unregister(sock)
                try:
                    replies[sockets[sock]] = json.loads(raw)
                except ValueError:
                    replies[sockets[sock]] = "not JSON"  # verdict: not a health object
    finally:
        for sock in sockets:
            sock.close(linger=0)
        context.term()
    return replies


def verdict(reply: Any, main_open: bool, strict: bool) -> str | None:
    """Why an agent is unhealthy, or None when it is healthy."""
    if reply is None:
        return "no answer on its health port"
    if not isinstance(reply, dict) or not isinstance(reply.get("status"), str):
        return "reply is not a health object"
    status = reply["status"].strip().lower()
    if status not in ("ok", "degraded"):
        return f"status {status}"
    if strict and status == "degraded":
        return "status degraded"
    if reply.get("initialized") is False:
        return "still initializing (constructor not finished)"
    if not main_open:
        return "main port not serving (constructor not finished, or the port is taken)"
    return None


def check_group(manifest_path: str, host: str, timeout: float, strict: bool) -> tuple[int, str]:
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    agents = manifest["agents"]
    if not agents:
        return HEALTHY, f"group {manifest.get('group')}: no agents to check"
    connect_timeout = min(1.0, timeout / 2)
    health_open = {a["health_check_port"]: tcp_open(host, a["health_check_port"], connect_timeout)
                   for a in agents}
    replies = ask_all(host, [p for p, is_open in health_open.items() if is_open], timeout)
    failed: list[str] = []
    optional: list[str] = []
    for a in agents:
        why = verdict(replies.get(a["health_check_port"]), tcp_open(host, a["port"], connect_timeout), strict)
        if why is not None:
            (failed if a.get("required", True) else optional).append(f"{a['name']}: {why}")
    parts = [f"group {manifest.get('group')}: {len(agents) - len(failed) - len(optional)}/{len(agents)} healthy"]
    if failed:
        parts.append("unhealthy: " + "; ".join(failed))
    if optional:
        parts.append("not required, not healthy: " + "; ".join(optional))
    return (UNHEALTHY if failed else HEALTHY), " | ".join(parts)


def check_http(url: str, timeout: float) -> tuple[int, str]:
    if not url.startswith(("http://", "https://")):
        return UNHEALTHY, f"{url}: not an http(s) URL"
    import urllib.request  # here: half of this script's start-up time, needed by this mode only

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - scheme checked above
            code = int(response.status)
    except OSError as exc:  # URLError and HTTPError are OSErrors
        return UNHEALTHY, f"{url}: {exc}"
    return (HEALTHY if 200 <= code < 300 else UNHEALTHY), f"{url}: HTTP {code}"


def check_relay(routes: list[str], timeout: float) -> tuple[int, str]:
    """Each ``LISTEN_HOST:PORT=UPSTREAM`` listener must relay a byte back from its upstream
    (Redis answers an inline PING, NATS greets with INFO): the relay and what is behind it."""
    bad: list[str] = []
    for route in routes:
        listen = route.split("=", 1)[0]
        host, _, port = listen.rpartition(":")
        if "=" not in route or not host or not port.isdigit():
            return UNHEALTHY, f"{route!r}: expected LISTEN_HOST:PORT=UPSTREAM_HOST:PORT"
        try:
            with socket.create_connection((host, int(port)), timeout=timeout) as s:
                s.sendall(b"PING\r\n")
                if not s.recv(1):
                    bad.append(f"{route}: upstream closed the connection")
        except OSError as exc:
            bad.append(f"{route}: {exc}")
    if bad:
        return UNHEALTHY, "relay unhealthy: " + "; ".join(bad)
    return HEALTHY, f"relay ok: {len(routes)} routes"


USAGE = ("usage: healthcheck.py group MANIFEST [--timeout S] [--host H] [--strict]\n"
         "       healthcheck.py http URL [--timeout S]\n"
         "       healthcheck.py relay LISTEN_HOST:PORT=UPSTREAM_HOST:PORT... [--timeout S]")


def run(argv: list[str]) -> tuple[int, str]:
    args = list(argv)
    timeout, host, strict = 3.0, "127.0.0.1", False
    positional: list[str] = []
    while args:
        arg = args.pop(0)
        if arg == "--timeout" and args:
            timeout = float(args.pop(0))
        elif arg == "--host" and args:
            host = args.pop(0)
        elif arg == "--strict":
            strict = True
        else:
            positional.append(arg)
    if not 0 < timeout <= 600:
        return UNHEALTHY, f"--timeout {timeout:g}: expected seconds in (0, 600]"
    if len(positional) == 2 and positional[0] == "group":
        return check_group(positional[1], host, timeout, strict)
    if len(positional) == 2 and positional[0] == "http":
        return check_http(positional[1], timeout)
    if len(positional) >= 2 and positional[0] == "relay":
        return check_relay(positional[1:], timeout)
    return UNHEALTHY, USAGE


def main(argv: list[str] | None = None) -> int:
    try:
        code, line = run(sys.argv[1:] if argv is None else argv)
    except Exception as exc:  # noqa: BLE001 - Docker's contract: any failure is "unhealthy" (1), never 2
        code, line = UNHEALTHY, f"healthcheck failed: {type(exc).__name__}: {exc}"
    print(line, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
