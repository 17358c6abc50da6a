"""``fleetobs status``: the fleet at a glance in the terminal, from a hub's ``GET /v1/status``.

Exit codes (scripts and cron checks rely on them):

* 0: healthy: no required agent is ``down`` or ``missing``;
* 1: something required is down or missing (listed with the reason);
* 2: bad input (a ``--hub`` that is not an http(s) URL, a token the hub refuses);
* 3: the hub cannot be reached (refused, timeout, unresolvable, or no valid answer).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import typer

from fleetobs.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, exit_with, fail, print_error

STATES = ("up", "degraded", "suspect", "down", "missing", "unknown", "unmonitored")
_STYLE = {"up": "green", "degraded": "yellow", "suspect": "dark_orange", "down": "bold red",
          "missing": "magenta", "unknown": "grey58", "unmonitored": "grey50"}


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return f"{seconds:.0f} s" if seconds < 120 else (
        f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h")


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 1024**3:.1f}"


def fetch(hub_url: str, token: str | None, timeout: float) -> dict[str, Any]:
    import httpx

    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        r = httpx.get(hub_url.rstrip("/") + "/v1/status", headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        print_error(f"cannot reach the hub at {hub_url}: {type(exc).__name__}"
                    f"{': ' + str(exc) if str(exc) else ''} (start it: fleetobs hub, or fleetobs demo)")
        exit_with(EXIT_UNREACHABLE)
    if r.status_code in (401, 403):
        fail(f"the hub at {hub_url} refused the read token (HTTP {r.status_code}): set FLEET_READ_TOKEN")
    try:
        body = r.json()
        if r.status_code != 200 or not isinstance(body, dict) or "healthy" not in body:
            raise ValueError(f"HTTP {r.status_code}")
    except ValueError as exc:
        print_error(f"the hub at {hub_url} gave no valid status ({exc}); is it a fleetobs hub?")
        exit_with(EXIT_UNREACHABLE)
    return body


def render(ov: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    from fleetobs.cli.tables import print_tables

    out: list[Any] = []
    s = ov["summary"]
    if ov.get("banner"):
        out.append(Text(ov["banner"], style="bold black on yellow"))
    verdict = (Text("HEALTHY", style="bold green") if ov["healthy"] else
               Text(f"NOT HEALTHY: {s['required_failing']} required agent(s) down or missing",
                    style="bold red"))
    head = Text(f"hub of {ov['machine']}: {s['agents']} agents on {s['machines']} machines, "
                f"{s['attention']} need attention. ")
    out.append(head + verdict)
    if ov.get("startup_grace"):
        out.append(Text("startup grace: missing agents may still be starting", style="grey58"))

    states = [st for st in STATES if any(st in m["counts"] for m in ov["machines"])
              or any(st in g["counts"] for g in ov["groups"])]
    mt = Table(title="Machines")
    for col in ("machine", "role", "data age", "agents", *states):
        mt.add_column(col, no_wrap=True)
    for m in ov["machines"]:
        role = "this hub" if m["local"] else ("peer" if m["fresh"] else "peer, NOT heard")
        mt.add_row(m["machine"], role, "-" if m["local"] else _age(m["data_age_seconds"]),
                   str(m["agents"]), *[_count(m["counts"], st) for st in states])
    out.append(mt)
    if ov["peers"]:
        pt = Table(title="Peer links")
        for col in ("peer", "url", "link", "last error", "last sync"):
            pt.add_column(col, no_wrap=True)
        for p in ov["peers"]:
            pt.add_row(p["machine"], p["url"], Text("up", "green") if p["up"] else Text("down", "bold red"),
                       (p["last_error"] or "-") + ("" if p["answered"] else " (never answered)"),
                       _age(p["last_success_age_seconds"]))
        out.append(pt)
    gt = Table(title="Groups")
    for col in ("group", "machine", "agents", *states, "GPU GiB used/budget"):
        gt.add_column(col, no_wrap=True)
    for g in ov["groups"]:
        gpu = "-" if not g["gpu_budget_bytes"] and g["gpu_used_bytes"] is None else (
            f"{_gib(g['gpu_used_bytes'])}/{_gib(g['gpu_budget_bytes'])}"
            + (" OVER" if g["over_budget"] else ""))
        gt.add_row(g["group"], g["machine"], str(g["agents"]), *[_count(g["counts"], st) for st in states], gpu)
    out.append(gt)
    if ov["attention"]:
        at = Table(title=f"Needs attention ({len(ov['attention'])})")
        for col in ("agent", "machine", "group", "state", "last heard", "required"):
            at.add_column(col, no_wrap=True)
        at.add_column("why", overflow="fold")
        for a in ov["attention"]:
            at.add_row(a["name"], a["machine"], a["group"] or "-",
                       Text(a["state"], style=_STYLE.get(a["state"], "")), _age(a["age_seconds"]),
                       "yes" if a["required"] else "no", a["why"])
        out.append(at)
    else:
        out.append(Text("Nothing needs attention.", style="green"))
    print_tables(out)


def _count(counts: dict[str, int], state: str) -> Any:
    from rich.text import Text

    n = counts.get(state, 0)
    return Text(str(n), style=_STYLE.get(state, "")) if n else Text("0", style="grey50")


def status(
    hub: str | None = typer.Option(
        None, "--hub", help="Hub URL [env FLEET_HUB_URL; default: this machine's hub, as agents find it]."),
    as_json: bool = typer.Option(False, "--json", help="Print the hub's /v1/status JSON instead of tables."),
    timeout: float = typer.Option(5.0, "--timeout", help="Seconds to wait for the hub."),
) -> None:
    """The fleet at a glance: exit 0 healthy, 1 required agents down/missing, 3 hub unreachable."""
    from fleetobs.settings import load_settings

    settings = load_settings(os.environ)
    url = hub or settings.hub_url
    if url is None:
        from fleetobs.agent.hub_url import HubUrlError, derive_hub_url

        try:
            url = derive_hub_url(os.environ)
        except HubUrlError as exc:
            fail(f"--hub: {exc}")
    scheme, _, rest = url.partition("://")
    if scheme not in ("http", "https") or not rest.strip("/"):
        fail(f"--hub {url!r}: expected an http(s) URL, e.g. http://127.0.0.1:9000")
    if not 0 < timeout <= 600:
        fail(f"--timeout {timeout:g}: expected seconds in (0, 600]")
    ov = fetch(url, settings.read_token, timeout)
    if as_json:
        sys.stdout.write(json.dumps(ov, indent=2) + "\n")
    else:
        render(ov)
    exit_with(EXIT_OK if ov["healthy"] else EXIT_FAILED)
