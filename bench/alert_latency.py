"""Agent death to notification: how long, and where the time goes.

Run: ``python bench/alert_latency.py [--kills 5] [--heartbeat 1] [--for 2]``

Real processes on loopback (fleetobs.testing.alerting_stack): the real fleet's
agents simulated, two hubs probing them, two Prometheus with the generated config
and rules, the generated two-node Alertmanager cluster, a webhook receiver here.
Each round SIGKILLs one agent's process (its own ``fleetobs simulate``) and times:

1. detection: kill -> the hub judges the agent ``down`` (its ``GET /v1/agents/NAME``,
   polled every 20 ms);
2. scrape: -> the first scraped sample of ``fleet_agent_state{state="down"} == 1`` in
   Prometheus (its sample timestamp);
3. evaluation: -> the rule finds it true (the alert's ``activeAt``, pending);
4. for: -> the alert fires (``startsAt`` Prometheus sends to Alertmanager);
5. alertmanager: -> the webhook receives the notification (group_wait, the cluster's
   deduplication and the HTTP post).

Goal: total <= 3 x heartbeat interval + for + 2 evaluation intervals + group_wait.
The ratio total / goal is printed per round (<= 1.0 meets it). Then the agent comes
back and the time to the resolved notification is printed too (informational:
group_interval bounds it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleetobs.testing.alerting_parts import Timings
from fleetobs.testing.alerting_stack import AlertingStack, StackOptions
from fleetobs.testing.procs import http_json, wait_until
from fleetobs.topology.load import load_topology


def victims(count: int) -> list[str]:
    """One agent from each of ``count`` different mainpc groups of 3+ probed agents (so
    no group loses enough agents for a group alert)."""
    topo = load_topology(None)
    out: list[str] = []
    for g in topo.groups_on("mainpc"):
        agents = [a for a in topo.agents_in(g.name) if a.probe.value in ("zmq", "http")]
        if len(agents) >= 3:
            out.append(agents[-1].name)
    if len(out) < count:
        raise SystemExit(f"only {len(out)} groups of 3+ agents on mainpc; --kills {count} is too many")
    return out[:count]


def parse_time(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def first_down_sample(stack: AlertingStack, machine: str, agent: str, after: float) -> float | None:
    """Timestamp of the first scraped sample saying the agent is down, in ``machine``'s Prometheus."""
    res = stack.prom[machine].query(f'fleet_agent_state{{agent="{agent}",state="down"}}[2m]')
    for series in res:
        for ts, value in series["values"]:
            if float(ts) >= after - 1 and value == "1":
                return float(ts)
    return None


def active_at(stack: AlertingStack, machine: str, agent: str) -> float | None:
    alerts = http_json(f"{stack.prom[machine].url}/api/v1/alerts")["data"]["alerts"]
    for a in alerts:
        if a["labels"].get("alertname") == "AgentDown" and a["labels"].get("agent") == agent:
            return parse_time(a["activeAt"])
    return None


def one_round(stack: AlertingStack, agent: str) -> dict[str, float]:
    hub = stack.hubs["mainpc"]
    mark = stack.hook.mark()
    t_kill = time.time()
    stack.kill_unit(agent)

    def hub_down() -> float | None:
        view = http_json(f"{hub.url}/v1/agents/{agent}")
        return time.time() if view["state"] == "down" else None

    t_down = wait_until(hub_down, 60, f"hub judges {agent} down", interval=0.02)
    note = stack.hook.wait_for("AgentDown", timeout=120, since=mark, agent=agent)
    t_notified = note.wall
    alert = next(a for a in note.alerts if a["labels"].get("agent") == agent)
    # Both machines' Prometheus raise it; Alertmanager keeps the earliest start: the
    # split follows the Prometheus that went pending first.
    t_fired = parse_time(alert["startsAt"])
    pending = {m: active_at(stack, m, agent) for m in stack.machines}
    first = min((m for m in pending if pending[m] is not None), key=lambda m: pending[m] or 0.0)
    t_pending = pending[first] or float("nan")
    t_scraped = first_down_sample(stack, first, agent, t_down) or float("nan")
    # back again, for the next round; time the resolved notification too
    mark = stack.hook.mark()
    t_back = time.time()
    stack.start_unit(agent)
    resolved = stack.hook.wait_for("AgentDown", status="resolved", timeout=120, since=mark, agent=agent)
    return {"detection": t_down - t_kill, "scrape": t_scraped - t_down,
            "evaluation": t_pending - t_scraped, "for": t_fired - t_pending,
            "alertmanager": t_notified - t_fired, "total": t_notified - t_kill,
            "resolved": resolved.wall - t_back}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--heartbeat", type=float, default=1.0, help="agents' heartbeat interval, s")
    p.add_argument("--interval", type=float, default=1.0, help="scrape and evaluation interval, s")
    p.add_argument("--for", dest="for_", type=float, default=2.0, help="AgentDown's for, s")
    p.add_argument("--group-wait", type=float, default=1.0)
    args = p.parse_args()
    timings = Timings(heartbeat_seconds=args.heartbeat, probe_interval_seconds=args.heartbeat,
                      probe_timeout_seconds=min(1.0, args.heartbeat / 2),
                      scrape_seconds=args.interval, eval_seconds=args.interval, for_seconds=args.for_,
                      group_wait_seconds=args.group_wait)
    names = victims(args.kills)
    goal = 3 * args.heartbeat + args.for_ + 2 * args.interval + args.group_wait
    with tempfile.TemporaryDirectory(prefix="fleetobs-alert-latency-") as tmp:
        opts = StackOptions(units={n: [n] for n in names}, timings=timings)
        with AlertingStack(Path(tmp), opts) as stack:
            print(f"# stack up in {stack.started_at:.1f} s: {len(stack.topology.agents) if stack.topology else 0} "
                  f"agents, 2 hubs, 2 Prometheus, 2 Alertmanagers (cluster)")
            print(f"# heartbeat {args.heartbeat:g} s (down after 3x), scrape/eval {args.interval:g} s, "
                  f"for {args.for_:g} s, group_wait {args.group_wait:g} s")
            print(f"# goal: 3 x {args.heartbeat:g} + {args.for_:g} + 2 x {args.interval:g} + "
                  f"{args.group_wait:g} = {goal:.1f} s\n")
            parts = ("detection", "scrape", "evaluation", "for", "alertmanager", "total")
            print(f"{'agent':28s} " + " ".join(f"{x:>12s}" for x in parts) + f" {'ratio':>6s} {'resolved':>9s}")
            rows = []
            for name in names:
                r = one_round(stack, name)
                rows.append(r)
                print(f"{name:28s} " + " ".join(f"{r[x]:11.2f}s" for x in parts)
                      + f" {r['total'] / goal:6.2f} {r['resolved']:8.2f}s")
            med = {x: statistics.median(r[x] for r in rows) for x in (*parts, "resolved")}
            worst = max(r["total"] for r in rows)
            print(f"{'median':28s} " + " ".join(f"{med[x]:11.2f}s" for x in parts)
                  + f" {med['total'] / goal:6.2f} {med['resolved']:8.2f}s")
            print(f"\nworst total {worst:.2f} s vs goal {goal:.1f} s: ratio {worst / goal:.2f} "
                  f"({'meets' if worst <= goal else 'MISSES'} the goal)")


if __name__ == "__main__":
    main()
