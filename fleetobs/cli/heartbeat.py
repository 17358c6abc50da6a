"""``fleetobs heartbeat``: send one heartbeat for an agent (for scripts and cron jobs)."""

from __future__ import annotations

import json
import os

import typer

from fleetobs.cli.errors import EXIT_FAILED, exit_with, fail

STATUSES = ("ok", "degraded", "error")


def heartbeat(
    agent: str = typer.Argument(..., help="Agent name as in the topology."),
    status: str = typer.Option("ok", "--status", "-s", help="ok, degraded or error."),
    reason: str | None = typer.Option(None, "--reason", "-r", help="Why degraded or error."),
    interval: float | None = typer.Option(
        None, "--interval", help="Seconds until the next heartbeat is due; default: the topology's."),
    details: str | None = typer.Option(None, "--details", help="A small JSON object."),
    hub_url: str | None = typer.Option(
        None, "--hub-url", help="[env FLEET_HUB_URL]; default: derived from MACHINE_TYPE and discovery."),
    timeout: float = typer.Option(5.0, "--timeout", help="Seconds to wait for the hub."),
) -> None:
    """Send one heartbeat; exit 0 when the hub took it, 1 when it did not, 2 on bad input."""
    import httpx

    from fleetobs.agent.client import send_heartbeats
    from fleetobs.agent.hub_url import HubUrlError, derive_hub_url

    if status not in STATUSES:
        fail(f"--status {status!r}: expected one of {', '.join(STATUSES)}")
    if interval is not None and not 0 < interval <= 3600:
        fail(f"--interval {interval:g}: expected seconds in (0, 3600]")
    if not 0 < timeout <= 600:
        fail(f"--timeout {timeout:g}: expected seconds in (0, 600]")
    body: dict[str, object] = {"agent": agent, "status": status}
    if reason:
        body["reason"] = reason
    if interval is not None:
        body["interval_seconds"] = interval
    if details:
        try:
            parsed = json.loads(details)
        except ValueError as exc:
            fail(f"--details: not JSON ({exc})")
        if not isinstance(parsed, dict):
            fail("--details: expected a JSON object")
        body["details"] = parsed
    try:
        url = hub_url or derive_hub_url(os.environ)
    except HubUrlError as exc:
        fail(str(exc))
    try:
        result = send_heartbeats(url, body, token=os.environ.get("FLEET_TOKEN") or None,
                                 timeout_seconds=timeout)
    except httpx.HTTPError as exc:
        typer.echo(f"not sent: {agent} to {url}: {' '.join(str(exc).split()) or type(exc).__name__}")
        exit_with(EXIT_FAILED)
    rejected = result.get("rejected") or []
    if rejected:
        typer.echo(f"rejected: {agent} by {url}: {rejected[0].get('reason')}")
        exit_with(EXIT_FAILED)
    note = " (unknown to the topology)" if agent in (result.get("unknown") or []) else ""
    note += " (foreign: the topology places it on another machine)" if agent in (
        result.get("foreign") or []) else ""
    typer.echo(f"sent: {agent} {status} to {url}{note}")
