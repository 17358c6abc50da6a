"""The status page at ``/``: :func:`hub.overview.overview` as one server-rendered HTML page.

No JavaScript, no CDN, no web font: it works on a LAN without internet and in a text
browser. It refreshes itself (``<meta http-equiv="refresh">``). Everything from agents
(names are checked, reasons are free text) is HTML-escaped.
"""

from __future__ import annotations

import time
from html import escape
from typing import Any

from hub.overview import STATE_ORDER

REFRESH_SECONDS = 5

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430;background:#f4f6f9}
header{background:#1d2430;color:#fff;padding:12px 24px;display:flex;gap:18px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:20px;margin:0} header .meta{color:#b8c2d0;font-size:13px}
main{padding:8px 24px 24px;max-width:1400px}
h2{font-size:16px;margin:22px 0 8px} h3{font-size:14px;margin:14px 0 6px}
.verdict{font-weight:600;padding:3px 10px;border-radius:4px}
.verdict.ok{background:#1f8f4e}.verdict.bad{background:#c8333a}
.banner{background:#fff3cd;border:1px solid #e0c97a;padding:8px 12px;margin-top:12px;font-weight:600}
table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:6px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e7ee;vertical-align:top}
th{background:#e9edf3;font-weight:600;font-size:13px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #d9dee7;border-radius:6px;padding:10px 14px;min-width:260px}
.card .name{font-weight:700;font-size:15px}
.chip{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;margin:1px 2px;color:#fff}
.s-up{background:#1f8f4e}.s-degraded{background:#d08a00}.s-suspect{background:#b86b00}
.s-down{background:#c8333a}.s-missing{background:#7a1f5c}.s-unknown{background:#6b7687}
.s-unmonitored{background:#a7b0bd}
tr.row-down td:first-child,tr.row-missing td:first-child{border-left:4px solid #c8333a}
tr.row-suspect td:first-child,tr.row-degraded td:first-child{border-left:4px solid #d08a00}
tr.row-unknown td:first-child{border-left:4px solid #6b7687}
.bar{background:#e3e7ee;border-radius:3px;height:10px;width:160px;display:inline-block;vertical-align:middle}
.bar span{display:block;height:10px;border-radius:3px;background:#3b7dd8}
.bar.over span{background:#c8333a}
.muted{color:#6b7687} .why{max-width:620px}
footer{padding:12px 24px;color:#6b7687} footer a{margin-right:12px}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def gib(n: float | None) -> str:
    return "?" if n is None else f"{n / 1024**3:.1f} GiB"


def _chips(counts: dict[str, int]) -> str:
    return "".join(f'<span class="chip s-{_e(s)}">{n} {_e(s)}</span>' for s, n in counts.items())


def _chip(state: str) -> str:
    return f'<span class="chip s-{_e(state)}">{_e(state)}</span>'


def _attention(ov: dict[str, Any]) -> str:
    items = ov["attention"]
    if not items:
        return '<p id="attention-none">Nothing needs attention: every monitored agent is up.</p>'
    rows = "".join(
        f'<tr class="row-{_e(a["state"])}" data-agent="{_e(a["name"])}" data-machine="{_e(a["machine"])}" '
        f'data-state="{_e(a["state"])}"><td>{_e(a["name"])}</td><td>{_e(a["machine"])}</td>'
        f'<td>{_e(a["group"])}</td><td>{_chip(a["state"])}</td>'
        f'<td class="why">{_e(a["why"])}</td><td>{age(a["age_seconds"])}</td>'
        f'<td>{"yes" if a["required"] else "no"}</td></tr>'
        for a in items)
    return ('<table id="attention"><tr><th>agent</th><th>machine</th><th>group</th><th>state</th>'
            f'<th>why</th><th>last heard</th><th>required</th></tr>{rows}</table>')


def _machines(ov: dict[str, Any]) -> str:
    cards = []
    for m in ov["machines"]:
        role = "this hub" if m["local"] else ("peer, fresh" if m["fresh"] else "peer, NOT heard")
        gpu = f'{_e(m["gpu_model"])} {m["gpu_memory_gib"]:g} GiB' if m["gpu_model"] else "no GPU"
        data = "" if m["local"] else f' · data age {age(m["data_age_seconds"])}'
        cards.append(
            f'<div class="card" data-machine="{_e(m["machine"])}"><div class="name">{_e(m["machine"])}</div>'
            f'<div class="muted">{role}{data} · {gpu} · hub {_e(m["address"])}:{m["hub_port"]}</div>'
            f'<div>{m["agents"]} agents: {_chips(m["counts"])}</div></div>')
    return f'<div class="cards">{"".join(cards)}</div>'


def _peers(ov: dict[str, Any]) -> str:
    if not ov["peers"]:
        return '<p class="muted">No peer hubs configured (FLEET_PEERS=none): sync is off.</p>'
    rows = "".join(
        f'<tr data-peer="{_e(p["machine"])}"><td>{_e(p["machine"])}</td><td>{_e(p["url"])}</td>'
        f'<td>{_chip("up") if p["up"] else _chip("down")}</td>'
        f'<td>{_e(p["last_error"]) or "-"}{"" if p["answered"] else " (never answered)"}</td>'
        f'<td>{age(p["last_success_age_seconds"])}</td></tr>'
        for p in ov["peers"])
    return ('<table id="peers"><tr><th>peer</th><th>URL</th><th>link</th><th>last error</th>'
            f'<th>last successful sync</th></tr>{rows}</table>')


def _gpu_cell(g: dict[str, Any]) -> str:
    budget, used = g["gpu_budget_bytes"], g["gpu_used_bytes"]
    if not budget:
        return (f'<span class="muted">no GPU budget; uses {gib(used)}</span>' if used
                else '<span class="muted">no GPU budget</span>')
    if used is None:
        return f'<span class="muted">budget {gib(budget)}; use not reported</span>'
    pct = min(used / budget, 1.0) * 100 if budget else 100.0
    over = " over" if g["over_budget"] else ""
    stale = "" if g["gpu_fresh"] else ' <span class="muted">(stale)</span>'
    return (f'<span class="bar{over}"><span style="width:{pct:.0f}%"></span></span> '
            f'{gib(used)} of {gib(budget)}{" OVER BUDGET" if over else ""}{stale}')


def _groups(ov: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr data-group="{_e(g["group"])}"><td>{_e(g["group"])}</td><td>{_e(g["machine"])}</td>'
        f'<td>{g["agents"]}</td><td>{_chips(g["counts"])}</td><td>{_gpu_cell(g)}</td></tr>'
        for g in ov["groups"])
    return ('<table id="groups"><tr><th>group</th><th>machine</th><th>agents</th><th>states</th>'
            f'<th>GPU memory against budget</th></tr>{rows}</table>')


def _agents(ov: dict[str, Any]) -> str:
    rank = {s: i for i, s in enumerate(STATE_ORDER)}
    by_group: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for a in ov["agents"]:
        by_group.setdefault((a["machine"], a["group"] or "(no group)"), []).append(a)
    parts = []
    for (machine, group), agents in sorted(by_group.items()):
        agents.sort(key=lambda a: (rank.get(a["state"], 99), a["name"]))
        rows = "".join(
            f'<tr class="row-{_e(a["state"])}" data-agent="{_e(a["name"])}" data-state="{_e(a["state"])}">'
            f'<td>{_e(a["name"])}</td><td>{_chip(a["state"])}</td><td>{_e(a["last_status"]) or "-"}</td>'
            f'<td class="why">{_e(a["why"] or a["reason"])}</td><td>{age(a["age_seconds"])}</td></tr>'
            for a in agents)
        parts.append(f'<h3>{_e(machine)} / {_e(group)}</h3><table><tr><th>agent</th><th>state</th>'
                     f'<th>last status</th><th>reason / why</th><th>last heard</th></tr>{rows}</table>')
    return "".join(parts)


def _links(ov: dict[str, Any]) -> str:
    api = ["/v1/status", "/v1/fleet", "/v1/agents", "/v1/gpus", "/v1/probes", "/v1/sd/prometheus",
           "/v1/sd/prometheus/excluded", "/metrics", "/docs"]
    links = [f'<a href="{p}">{p}</a>' for p in api]
    for name in ("prometheus", "grafana"):
        url = ov["links"].get(name)
        links.append(f'<a href="{_e(url)}">{name.title()}</a>' if url
                     else f'<span class="muted">{name.title()}: not configured (FLEET_{name.upper()}_URL)</span>')
    return " ".join(links)


def render(ov: dict[str, Any]) -> str:
    s = ov["summary"]
    if ov["healthy"]:
        verdict = '<span class="verdict ok">healthy</span>'
    else:
        verdict = (f'<span class="verdict bad">{s["required_failing"]} required agent'
                   f'{"s" if s["required_failing"] != 1 else ""} down or missing</span>')
    when = time.strftime("%H:%M:%S", time.localtime(ov["generated_at"]))
    grace = " · startup grace: missing agents may still be starting" if ov["startup_grace"] else ""
    banner = f'<div class="banner" id="banner">{_e(ov["banner"])}</div>' if ov["banner"] else ""
    title = f'fleetobs · {ov["machine"]} · {"healthy" if ov["healthy"] else "NOT healthy"}'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{_CSS}</style></head>
<body><header><h1>fleetobs</h1>{verdict}
<span class="meta">{s["agents"]} agents on {s["machines"]} machines · {s["attention"]} need attention ·
hub of {_e(ov["machine"])} · {when}, refreshes every {REFRESH_SECONDS} s{grace}</span></header>
<main>{banner}
<h2>Needs attention ({s["attention"]})</h2>{_attention(ov)}
<h2>Machines</h2>{_machines(ov)}
<h2>Peer links and sync</h2>{_peers(ov)}
<h2>Groups</h2>{_groups(ov)}
<h2>Agents by group</h2>{_agents(ov)}
</main><footer>{_links(ov)}</footer></body></html>
"""
