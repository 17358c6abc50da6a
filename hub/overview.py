"""The fleet at a glance, as data: what ``GET /v1/status``, the page at ``/`` and
``fleetobs status`` all show, so the three never disagree.

Built from what the hub already holds: its own records, its peers' agents and
freshness (the sync plugin's ``fleet_summary``), each probed agent's last probe
outcome (the probing plugin's ``view``, the *why* of a silent agent), and GPU use per
group against its budget (``Hub.gpu_summary`` and ``Hub.peer_gpus``). Plugins are
found by what they offer, never imported: the overview works with any of them off.

``healthy`` is false when any required agent is ``down`` or ``missing`` (on this
machine, or on a peer machine whose hub is heard); everything not ``up`` is listed in
``attention``, worst first, each with a reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from hub.api.agents import view
from hub.service import Hub

#: Worst first: the order of the attention list and of the state columns.
STATE_ORDER = ("down", "missing", "suspect", "degraded", "unknown", "up", "unmonitored")
#: Not healthy when a required agent is in one of these.
FAILING = frozenset({"down", "missing"})
ATTENTION = frozenset(STATE_ORDER) - {"up", "unmonitored"}


def _find(plugins: Iterable[Any], name: str, method: str) -> Any:
    for plugin in plugins:
        if getattr(plugin, "name", None) == name and callable(getattr(plugin, method, None)):
            return getattr(plugin, method)
    return None


def _ordered(counts: Counter[str]) -> dict[str, int]:
    return {s: counts[s] for s in (*STATE_ORDER, *sorted(set(counts) - set(STATE_ORDER))) if counts[s]}


def _why(a: dict[str, Any], probe: dict[str, Any] | None, grace: bool) -> str:
    """The reason shown for an agent that is not up (its own words first)."""
    state, age = a["state"], a.get("age_seconds")
    if state == "unknown":
        last = a.get("last_state")
        return (f"{a['machine']}'s hub cannot be heard"
                + (f"; its last judgement: {last}" if last else "; no record from it yet"))
    if a.get("reason") and state == "degraded":
        return str(a["reason"])
    if state == "degraded":
        return f"reported {a.get('last_status')}"
    probed = ""
    if probe is not None and probe.get("outcome") not in (None, "ok", "degraded", "error"):
        probed = f"; last probe: {probe['outcome']}"
        if probe.get("reason"):
            probed += f" ({probe['reason']})"
        probed += f" at {probe['host']}:{probe['port']}"
    if state == "missing":
        start = " (startup grace: it may still be starting)" if grace else ""
        return f"never heard since the hub started{start}{probed}"
    interval = a.get("interval_seconds")
    silent = f"silent for {age:.0f} s" if age is not None else "silent"
    bound = "3x" if state == "down" else "2x"
    last = f"; it last said {a['last_status']}" if a.get("last_status") else ""
    return f"{silent} (over {bound} its {interval:g} s interval){last}{probed}"


def _row(a: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "machine", "group", "state", "last_status", "reason", "age_seconds", "required",
            "source", "owner", "last_state", "interval_seconds")
    return {k: a.get(k) for k in keys}


def _gpu_groups(hub: Hub) -> dict[tuple[str, str], dict[str, Any]]:
    """(machine, group) -> used/budget, from this machine's and the peers' GPU summaries."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    summaries: list[tuple[dict[str, Any], bool]] = []
    if hub.gpu_summary is not None:
        mine = hub.gpu_summary()
        if mine is not None:
            summaries.append((mine, mine.get("age_seconds") is not None))
    for row in hub.peer_gpus() if hub.peer_gpus is not None else ():
        if row.get("summary") is not None:
            summaries.append((row["summary"], bool(row.get("fresh"))))
    for s, fresh in summaries:
        for g in s.get("groups", ()):
            out[(s["machine"], g["group"])] = {"used_bytes": g.get("used_bytes"),
                                              "fresh": fresh and s.get("error") is None}
    return out


def overview(hub: Hub, plugins: Sequence[Any]) -> dict[str, Any]:
    now = hub.now()
    settings = hub.settings
    topo = hub.topology
    grace = hub.in_startup_grace()
    rows = [view(rec, now) for rec in hub.registry]
    if hub.peer_agents is not None:
        rows += hub.peer_agents()
    probes_view = _find(plugins, "probing", "view")
    probes = {p["agent"]: p for p in (probes_view()["probes"] if probes_view else ())}
    fleet_summary = _find(plugins, "sync", "fleet_summary")
    fleet = fleet_summary() if fleet_summary else None
    fresh = {m["machine"]: m for m in (fleet["machines"] if fleet else ())}

    attention: list[dict[str, Any]] = []
    for a in rows:
        if a["state"] in ATTENTION:
            local = a["machine"] == hub.machine
            attention.append({**_row(a), "why": _why(a, probes.get(a["name"]) if local else None, grace)})
    rank = {s: i for i, s in enumerate(STATE_ORDER)}
    attention.sort(key=lambda a: (not a["required"], rank.get(a["state"], 99), a["machine"], a["name"]))
    failing = [a for a in attention if a["required"] and a["state"] in FAILING]
    whys = {(a["machine"], a["name"]): a["why"] for a in attention}

    machines = []
    for m in topo.machines:
        mine = [a for a in rows if a["machine"] == m.name]
        f = fresh.get(m.name)
        machines.append({
            "machine": m.name, "local": m.name == hub.machine, "address": m.address,
            "hub_port": m.hub_port, "gpu_model": m.gpu_model, "gpu_memory_gib": m.gpu_memory_gib,
            "agents": len(mine), "counts": _ordered(Counter(a["state"] for a in mine)),
            "fresh": True if m.name == hub.machine else bool(f and f["fresh"]),
            "data_age_seconds": 0.0 if m.name == hub.machine else (f["data_age_seconds"] if f else None),
        })
    gpu = _gpu_groups(hub)
    groups = []
    for g in topo.groups:
        mine = [a for a in rows if a["machine"] == g.machine and a["group"] == g.name]
        use = gpu.get((g.machine, g.name), {})
        used, budget = use.get("used_bytes"), g.gpu_memory_budget_bytes
        groups.append({
            "group": g.name, "machine": g.machine, "service": g.service_name, "agents": len(mine),
            "counts": _ordered(Counter(a["state"] for a in mine)),
            "gpu_budget_bytes": budget, "gpu_used_bytes": used,
            "gpu_fresh": bool(use.get("fresh")),
            "over_budget": bool(used is not None and budget and used > budget),
        })
    peers = [{k: p.get(k) for k in ("machine", "url", "up", "answered", "last_error",
                                     "last_success_age_seconds")}
             for p in (fleet["peers"] if fleet else ())]
    counts = Counter(a["state"] for a in rows)
    return {
        "machine": hub.machine,
        "generated_at": round(hub.clock.wall(), 3),
        "banner": settings.status_banner,
        "healthy": not failing,
        "startup_grace": grace,
        "summary": {"machines": len(topo.machines), "agents": len(rows),
                    "counts": _ordered(counts), "attention": len(attention),
                    "required_failing": len(failing)},
        "machines": machines,
        "peers": peers,
        "groups": groups,
        "attention": attention,
        "agents": [{**_row(a), "why": whys.get((a["machine"], a["name"]))} for a in rows],
        "links": {"prometheus": settings.prometheus_url, "grafana": settings.grafana_url},
    }
