"""``fleetobs hub``: run one machine's ObservabilityHub (FastAPI + uvicorn).

With no configuration at all it runs the committed topology as machine ``mainpc`` on
127.0.0.1 at the machine's hub port (9000), keeping state in ``./.fleetobs``.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import typer

from fleetobs.cli.errors import fail


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket for uvicorn (bound here so errors are one clean line).

    IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when
    the socket's proto says TCP; with proto 0 every response waits ~40 ms for a delayed
    ACK (Nagle), which capped the hub at ~20 requests/s per connection.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def next_steps(url: str, machine: str, peers: list[str]) -> str:
    """What a newcomer does next, printed once after the listening line."""
    sync = ", ".join(peers) if peers else "none (FLEET_PEERS=none)"
    return (f"fleetobs hub: status page {url}/ , fleet at a glance {url}/v1/fleet , API docs {url}/docs\n"
            f"fleetobs hub: peers: {sync}\n"
            f"fleetobs hub: {machine}'s agents show 'missing' until they report: start them (or their "
            f"sidecar), or try `fleetobs demo` for a simulated fleet; `fleetobs status --hub {url}` "
            f"sums it up\n")


def hub(
    machine: str | None = typer.Option(
        None, "--machine", "-m",
        help="Topology machine this hub serves [env MACHINE_TYPE; default mainpc]."),
    host: str | None = typer.Option(None, "--host",
                                    help="Address to listen on [env BIND_ADDRESS; default 127.0.0.1]."),
    port: int | None = typer.Option(
        None, "--port", "-p", min=0, max=65535,
        help="Port; 0 picks a free one [env FLEET_HUB_PORT; default: the machine's hub_port]."),
    topology: Path | None = typer.Option(
        None, "--topology", "-t",
        help="Topology YAML [env FLEET_TOPOLOGY; default: the committed real fleet]."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir",
        help="Where the SQLite state lives [env FLEET_DATA_DIR; default ./.fleetobs]."),
    peer: list[str] | None = typer.Option(
        None, "--peer",
        help="Peer hub to sync with: URL or MACHINE=URL, repeatable; 'none': no peers "
             "[env FLEET_PEERS, comma-separated; default: every other topology machine "
             "at its address:hub_port]."),
) -> None:
    """Run the ObservabilityHub: heartbeats, liveness, discovery, /metrics."""
    # No collections until the hub is up (hub.runtime): start-up frees almost nothing.
    # The freeze at /ready turns them back on; leaving (an error, the end) does too.
    from hub.runtime import collections_held

    with collections_held():
        _serve(machine, host, port, topology, data_dir, peer)


def _serve(machine: str | None, host: str | None, port: int | None, topology: Path | None,
           data_dir: Path | None, peer: list[str] | None) -> None:
    # Heavy imports here so `fleetobs --help` stays fast.
    import uvicorn
    from loguru import logger

    from fleetobs.settings import load_settings
    from fleetobs.topology.load import load_topology
    from fleetobs.tracing import TracingConfigError, setup_tracing
    from hub.app import create_app, hub_of
    from hub.clock import SkewedClock
    from hub.connections import guarded_protocol
    from hub.runtime import raise_open_files_limit
    from hub.service import HubConfig
    from hub.store import Store, StoreError

    # Every connection is a file: lift the soft limit to the hard one (often 1,024 ->
    # 524,288 or more) before anything opens; reported as fleet_hub_open_files_limit.
    raise_open_files_limit()
    settings = load_settings(os.environ, machine=machine, bind_address=host, topology=topology,
                             data_dir=data_dir, peers=tuple(peer) if peer else None)
    # The parsed document is cached in the data dir, keyed by the file's hash: a restart
    # at 10,000 agents reads JSON instead of parsing YAML again.
    topo = load_topology(settings.topology, cache_dir=settings.data_dir)
    try:
        hub_port = topo.machine(settings.machine).hub_port
    except KeyError as exc:
        fail(f"--machine/MACHINE_TYPE: {exc.args[0]}")
    if port is None:
        port = settings.hub_port if settings.hub_port is not None else hub_port
    from hub.sync.peers import PeerConfigError, resolve_peers

    try:
        peers = resolve_peers(topo, settings.machine, settings.peer_urls())
    except PeerConfigError as exc:
        fail(f"--peer/FLEET_PEERS: {exc}")
    for p in peers:
        scheme, _, rest = p.url.partition("://")
        if scheme not in ("http", "https") or not rest.strip("/"):
            fail(f"--peer/FLEET_PEERS: {p.url!r} is not an http(s) URL (example: http://pc2:9100 "
                 f"or pc2=http://10.0.0.2:9100)")
    level = settings.log_level.upper()
    if level not in ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"):
        fail(f"FLEET_LOG_LEVEL={settings.log_level!r}: use DEBUG, INFO, WARNING or ERROR")
    logger.remove()
    logger.add(sys.stderr, level=level,
               format="{time:YYYY-MM-DDTHH:mm:ss.SSSZ} {level} {name}: {message}")
    from fleetobs.logs.intercept import intercept_stdlib_logging

    intercept_stdlib_logging()  # uvicorn's own lines go through loguru too

    # Before "listening on": a damaged, foreign or other-version state file is set aside
    # here (one warning line; the hub starts empty); a data dir where no database can be
    # made at all is exit 2.
    probe = Store(settings.data_dir, settings.machine)
    try:
        probe.open()
    except StoreError as exc:
        fail(f"--data-dir/FLEET_DATA_DIR: {exc}")
    finally:
        probe.close()

    try:
        sock = bind_listener(settings.bind_address, port)
    except OSError as exc:
        fail(f"--host/--port: cannot listen on {settings.bind_address}:{port}: "
             f"{exc.strerror or exc}")
    bound = sock.getsockname()[1]
    skew = settings.test_clock_skew_seconds
    try:
        # OTEL_EXPORTER_OTLP_ENDPOINT & co.; unset: a no-op tracer, no SDK loaded.
        tracing = setup_tracing(os.environ, resource_attributes={"fleet.machine": settings.machine})
    except TracingConfigError as exc:
        fail(str(exc))
    app = create_app(topo, settings, clock=SkewedClock(skew) if skew else None, tracing=tracing,
                     config=HubConfig(freeze_gc=True))
    idle = settings.http_idle_timeout_seconds
    config = uvicorn.Config(app, log_level="info" if level in ("SUCCESS", "TRACE") else level.lower(),
                            access_log=False, log_config=None,
                            lifespan="on", timeout_graceful_shutdown=5,
                            ws="none",  # no WebSocket routes: don't load a WebSocket stack
                            # Idle and slow connections are closed (hub.connections).
                            http=guarded_protocol(idle, hub_of(app).counters.timeouts),
                            timeout_keep_alive=idle)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    # One parseable line, so scripts and tests can use --port 0.
    url = f"http://{settings.bind_address}:{bound}"
    sys.stderr.write(f"fleetobs hub: machine {settings.machine} listening on {url}\n")
    sys.stderr.write(next_steps(url, settings.machine, [f"{p.machine} at {p.url}" for p in peers]))
    sys.stderr.flush()
    server.run(sockets=[sock])
    if not server.started:
        fail("the hub did not start (see the log above)", code=1)
