"""Alert quality under scripted chaos: does every fault page, once, for the right reason?

Run: ``python bench/alert_quality.py``

Real processes on loopback (fleetobs.testing.alerting_stack, the generated config and
rules): the real fleet's 77 agents simulated, two hubs, two Prometheus, a two-node
Alertmanager cluster, a webhook receiver here. The faults of issue 10, one after
another, each undone and followed by calm (nothing pending or firing) before the next:

  agent-killed-mainpc   SIGKILL of one mainpc agent's process       -> AgentDown
  agent-killed-pc2      SIGKILL of one pc2 agent's process          -> AgentDown
  agent-degraded        one agent reports redis_connected=false      -> AgentDegraded
  group-killed          SIGKILL of a whole container group's agents  -> GroupDown (one page)
  peer-link-cut         every link between the machines blackholed   -> PeerHubUnreachable (each side)
  hub-killed-restarted  pc2's hub SIGKILLed, started again            -> HubDown
  ready-key-expiry      every agent degraded at once, same reason     -> AgentDegraded (one page)

Every notification the receiver gets is recorded. A *page* is a notification that brings
a firing alert not already open (never notified, or notified resolved since); an
*update* repeats open alerts next to resolved ones (Alertmanager re-sends a group when
part of it resolves, same group key: the same incident); a *resolution* fires nothing.
Printed per fault: pages (with when, how many alerts, from which node, their group),
updates, resolutions; then:

- recall: faults that paged with an expected alert / faults (goal 100%);
- precision: pages whose every firing alert is expected for the fault in progress /
  pages (goal 100%);
- duplicates: alerts (same labels) paged again within a fault, after their resolution
  (goal 0);
- pages per fault (goal 1; the link cut is one per side, so 2).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleetobs.simulator.behaviour import Behaviour
from fleetobs.testing.alerting_stack import AlertingStack, StackOptions
from fleetobs.testing.alertmanager import PEER_TIMEOUT_SECONDS
from fleetobs.testing.webhook import Notification
from fleetobs.topology.load import load_topology
from fleetobs.topology.model import ProbeKind

Labels = dict[str, str]


@dataclass
class Fault:
    name: str
    inject: Callable[[AlertingStack], None]
    undo: Callable[[AlertingStack], None]
    #: Is this firing alert (its labels) what the fault should page?
    expected: Callable[[Labels], bool]
    #: Pages the goal allows (one per fault; one per side for the link cut).
    goal_pages: int = 1
    pages: list[Notification] = field(default_factory=list)
    updates: list[Notification] = field(default_factory=list)
    resolutions: list[Notification] = field(default_factory=list)
    repaged: int = 0
    started: float = 0.0


def probed(topo: Any, group: str) -> list[str]:
    return [a.name for a in topo.agents_in(group) if a.probe in (ProbeKind.ZMQ, ProbeKind.HTTP)]


def choose() -> tuple[str, str, str, str, list[str]]:
    """(mainpc agent, pc2 agent, an agent to degrade, a group to kill, its agents)."""
    topo = load_topology(None)
    big = {m: [g.name for g in topo.groups_on(m) if len(probed(topo, g.name)) >= 3] for m in ("mainpc", "pc2")}
    a_main = probed(topo, big["mainpc"][0])[-1]
    a_pc2 = probed(topo, big["pc2"][0])[-1]
    degrade = probed(topo, big["mainpc"][1])[0]
    group = big["mainpc"][2]
    return a_main, a_pc2, degrade, group, probed(topo, group)


def is_(alertname: str, **labels: str) -> Callable[[Labels], bool]:
    return lambda got: got.get("alertname") == alertname and all(got.get(k) == v for k, v in labels.items())


def faults(a_main: str, a_pc2: str, degrade: str, group: str) -> list[Fault]:
    def set_ok(st: AlertingStack) -> None:
        st.set_behaviour(Behaviour.OK)

    def restart_pc2(st: AlertingStack) -> None:
        st.start_hub("pc2")

    return [
        Fault("agent-killed-mainpc", lambda st: st.kill_unit("a-main"), lambda st: st.start_unit("a-main"),
              is_("AgentDown", agent=a_main, machine="mainpc")),
        Fault("agent-killed-pc2", lambda st: st.kill_unit("a-pc2"), lambda st: st.start_unit("a-pc2"),
              is_("AgentDown", agent=a_pc2, machine="pc2")),
        Fault("agent-degraded",
              lambda st: st.set_behaviour(Behaviour.DEGRADED, [degrade], failing_check="redis_connected") and None,
              set_ok, is_("AgentDegraded", agent=degrade, reason="health_checks.redis_connected=false")),
        Fault("group-killed", lambda st: st.kill_unit("group"), lambda st: st.start_unit("group"),
              is_("GroupDown", group=group, machine="mainpc")),
        Fault("peer-link-cut", lambda st: st.partition(), lambda st: st.heal(),
              is_("PeerHubUnreachable"), goal_pages=2),
        Fault("hub-killed-restarted", lambda st: st.kill_hub("pc2"), restart_pc2,
              is_("HubDown", machine="pc2")),
        Fault("ready-key-expiry",
              lambda st: st.set_behaviour(Behaviour.DEGRADED, failing_check="ready_signal") and None, set_ok,
              is_("AgentDegraded", reason="health_checks.ready_signal=false")),
    ]


def firing(n: Notification) -> list[Labels]:
    return [a["labels"] for a in n.alerts if a["status"] == "firing"]


def run_fault(stack: AlertingStack, fault: Fault, hold: float) -> None:
    stack.wait_calm(120)
    mark = stack.hook.mark()
    fault.started = time.monotonic()
    fault.inject(stack)
    try:
        stack.hook.wait(lambda ns: any(fault.expected(x) for n in ns for x in firing(n)), timeout=hold, since=mark)
        time.sleep(PEER_TIMEOUT_SECONDS + stack.timings.group_wait_seconds + 3)  # duplicates and late alerts
    except TimeoutError:
        pass  # no page: recall counts it
    fault.undo(stack)
    stack.wait_calm(120)
    got = stack.pages(mark)
    fault.pages, fault.updates, fault.resolutions, fault.repaged = classify(got)


def key(labels: Labels) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def classify(notes: list[Notification]) -> tuple[list[Notification], list[Notification], list[Notification], int]:
    """(pages, updates, resolutions, re-pages). A page brings a firing alert that is not
    open (never notified, or last notified resolved); an update only repeats open alerts
    next to resolved ones (Alertmanager re-sends a group when part of it resolves); a
    resolution fires nothing. A re-page: an alert paged again after its resolution."""
    open_: set[tuple[tuple[str, str], ...]] = set()
    paged: set[tuple[tuple[str, str], ...]] = set()
    pages, updates, resolutions = [], [], []
    repaged = 0
    for n in notes:
        fire = {key(x) for x in firing(n)}
        if fire - open_:
            pages.append(n)
            repaged += len((fire - open_) & paged)
            paged |= fire
        elif fire:
            updates.append(n)
        else:
            resolutions.append(n)
        open_ |= fire
        open_ -= {key(a["labels"]) for a in n.alerts if a["status"] == "resolved"}
    return pages, updates, resolutions, repaged


def main() -> None:
    a_main, a_pc2, degrade, group, members = choose()
    units = {"a-main": [a_main], "a-pc2": [a_pc2], "group": members}
    plan = faults(a_main, a_pc2, degrade, group)
    with tempfile.TemporaryDirectory(prefix="fleetobs-alert-quality-") as tmp, \
            AlertingStack(Path(tmp), StackOptions(units=units)) as stack:
        t = stack.timings
        hold = 3 * t.heartbeat_seconds + t.sync_stale_seconds + t.for_seconds + 2 * t.eval_seconds \
            + t.group_wait_seconds + PEER_TIMEOUT_SECONDS + 20
        print(f"# stack up in {stack.started_at:.1f} s; heartbeat {t.heartbeat_seconds:g} s, "
              f"scrape/eval {t.scrape_seconds:g}/{t.eval_seconds:g} s, for {t.for_seconds:g} s, "
              f"group_wait {t.group_wait_seconds:g} s")
        print(f"# group killed: {group} ({len(members)} agents); agents killed: {a_main}, {a_pc2}; "
              f"degraded: {degrade}\n")
        start = time.monotonic()
        for fault in plan:
            run_fault(stack, fault, hold)
            paged = Counter(x["alertname"] for n in fault.pages for x in firing(n))
            print(f"{fault.name:22s} pages {len(fault.pages)} (goal {fault.goal_pages})  updates "
                  f"{len(fault.updates)}  resolutions {len(fault.resolutions)}  paged: {dict(paged)}")
            for n in fault.pages:
                machines = Counter(x.get("machine") for x in firing(n))
                print(f"{'':24s}+{n.at - fault.started:5.1f} s  {len(firing(n))} alerts  {dict(machines)}  "
                      f"from {n.sender}  group {n.body.get('groupKey', '').split(':', 1)[-1]}")
        elapsed = time.monotonic() - start
    report(plan, elapsed)


def report(plan: list[Fault], elapsed: float) -> None:
    pages = [(f, n) for f in plan for n in f.pages]
    recalled = [f for f in plan if any(f.expected(x) for n in f.pages for x in firing(n))]
    precise = [n for f, n in pages if all(f.expected(x) for x in firing(n))]
    dups = sum(f.repaged for f in plan)
    over = {f.name: len(f.pages) for f in plan if len(f.pages) != f.goal_pages}
    print(f"\nfaults {len(plan)}, pages {len(pages)}, resolutions {sum(len(f.resolutions) for f in plan)}, "
          f"chaos run {elapsed:.0f} s")
    print(f"recall    {100 * len(recalled) / len(plan):5.1f}%  (goal 100%)")
    print(f"precision {100 * len(precise) / max(len(pages), 1):5.1f}%  (goal 100%)")
    print(f"duplicates {dups}  (goal 0)")
    print(f"pages per fault {len(pages) / len(plan):.2f}  (goal: 1, the link cut 2: "
          f"{sum(f.goal_pages for f in plan) / len(plan):.2f}); off goal: {over or 'none'}")
    for f, n in pages:
        if not all(f.expected(x) for x in firing(n)):
            print(f"  imprecise page during {f.name}: {[x['alertname'] for x in firing(n)]}")


if __name__ == "__main__":
    main()
