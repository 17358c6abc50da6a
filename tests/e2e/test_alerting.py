"""The hard cases of alerting, end to end on real processes with short intervals.

The real fleet's 77 agents (simulated) -> two hubs (mainpc on 127.0.0.1, pc2 on
127.0.0.2) -> two Prometheus with the generated config and rules -> the generated
two-node Alertmanager cluster -> the webhook receiver here. Nothing is hand-written:
every rule, route and inhibition is what ``fleetobs build`` generates, rendered with
loopback addresses and ``Alerting.fast()`` intervals.

Each test injects one fault, checks what the receiver got (and what it did not), then
undoes the fault and waits until everything is calm again.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from fleetobs.simulator.behaviour import Behaviour
from fleetobs.testing.alerting_stack import WATCHDOG_PATH, AlertingStack
from fleetobs.testing.alertmanager import PEER_TIMEOUT_SECONDS
from fleetobs.testing.procs import http_json, wait_until
from fleetobs.testing.webhook import Notification, describe

from .conftest import STRAGGLER, VICTIM

pytestmark = [pytest.mark.slow, pytest.mark.binaries]


def page_within(stack: AlertingStack) -> float:
    """Generous bound on fault -> notification (the goal, plus the cluster's wait, plus slack
    for a loaded 2-core box)."""
    t = stack.timings
    return (3 * t.heartbeat_seconds + t.for_seconds + 2 * t.eval_seconds + t.group_wait_seconds
            + PEER_TIMEOUT_SECONDS + 15)


def quiet_for(stack: AlertingStack) -> float:
    """After a notification: long enough for a duplicate (the second node sends after its
    peer timeout when the first one's log entry has not reached it) or for an alert that
    the same fault raises a little later to show up."""
    t = stack.timings
    return PEER_TIMEOUT_SECONDS + t.eval_seconds + 2


def alerts_of(notes: list[Notification]) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """(status, alertname, labels) of every alert in these notifications."""
    return [(a["status"], a["labels"]["alertname"], tuple(sorted(a["labels"].items())))
            for n in notes for a in n.alerts]


def duplicates(notes: list[Notification]) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    return [k for k, n in Counter(alerts_of(notes)).items() if n > 1]


def firing_in(stack: AlertingStack, machine: str, alertname: str, **labels: str) -> bool:
    return any(a["labels"].get("alertname") == alertname and a["state"] == "firing"
               and all(a["labels"].get(k) == v for k, v in labels.items())
               for a in stack.prometheus_alerts(machine))


@pytest.fixture
def calm(stack: AlertingStack) -> AlertingStack:
    """The stack whole again (what an earlier test broke and left, mended) with nothing active."""
    if not stack.units["victim"].alive:
        stack.start_unit("victim")
    for machine, hub in stack.hubs.items():
        if hub.proc is None or hub.proc.poll() is not None:
            stack.start_hub(machine)
    stack.heal()
    stack.set_behaviour(Behaviour.OK)
    stack.start_agents()
    stack.wait_calm()
    return stack


def test_a_steady_fleet_pages_nothing_and_the_watchdog_arrives(calm: AlertingStack) -> None:
    stack = calm
    # The dead man's switch reaches its receiver from each machine's Prometheus ...
    got = stack.hook.wait(lambda ns: {n.body["groupLabels"].get("machine") for n in ns
                                      if n.path == WATCHDOG_PATH} >= {"mainpc", "pc2"}, timeout=30)
    watchdog = [n for n in got if n.path == WATCHDOG_PATH]
    assert all(n.alertnames == {"Watchdog"} for n in watchdog)
    # ... by then every rule has seen the healthy fleet for longer than any `for`: no page.
    assert stack.pages() == [], describe(stack.pages())


def test_dead_agent_pages_once_with_its_labels_and_runbook(calm: AlertingStack) -> None:
    stack = calm
    assert stack.topology is not None
    group = stack.topology.agent_by_key[("mainpc", VICTIM)].group
    mark = stack.hook.mark()
    stack.kill_unit("victim")
    note = stack.hook.wait_for("AgentDown", timeout=page_within(stack), since=mark, agent=VICTIM)
    alert = next(a for a in note.alerts if a["labels"]["agent"] == VICTIM)
    assert note.body["receiver"] == "page"
    assert alert["status"] == "firing"
    labels = alert["labels"]
    assert {k: labels.get(k) for k in ("alertname", "machine", "group", "agent", "severity", "state")} == {
        "alertname": "AgentDown", "machine": "mainpc", "group": group, "agent": VICTIM,
        "severity": "critical", "state": "down"}
    ann = alert["annotations"]
    assert ann["runbook_url"] == stack.topology.alerting.runbook("AgentDown")
    assert VICTIM in ann["summary"] and f"var-agent={VICTIM}" in ann["dashboard_url"]
    # Both machines' Prometheus raise it (pc2's from its scrape of mainpc's hub), both
    # Alertmanagers hold it ...
    for machine in stack.machines:
        wait_until(lambda m=machine: firing_in(stack, m, "AgentDown", agent=VICTIM), 2 * stack.timings.eval_seconds + 5,
                   f"AgentDown firing in {machine}'s Prometheus")
    for node in (0, 1):
        held = stack.alertmanager_alerts(node)
        assert any(a["labels"].get("agent") == VICTIM for a in held), node
    # ... and the receiver gets it once, and nothing else.
    time.sleep(quiet_for(stack))
    pages = stack.pages(mark)
    assert [k[:2] for k in alerts_of(pages)] == [("firing", "AgentDown")], describe(pages)
    assert len(pages) == 1


def test_returning_agent_sends_the_resolved_notification(stack: AlertingStack) -> None:
    if not firing_in(stack, "mainpc", "AgentDown", agent=VICTIM):  # run alone: kill it first
        stack.kill_unit("victim")
        stack.hook.wait_for("AgentDown", timeout=page_within(stack), agent=VICTIM)
    mark = stack.hook.mark()
    stack.start_unit("victim")
    note = stack.hook.wait_for("AgentDown", status="resolved", timeout=page_within(stack), since=mark,
                               agent=VICTIM)
    assert note.status == "resolved" and note.body["receiver"] == "page"
    time.sleep(quiet_for(stack))
    pages = stack.pages(mark)
    assert [k[:2] for k in alerts_of(pages)] == [("resolved", "AgentDown")], describe(pages)


def test_partition_pages_only_peer_hub_unreachable_from_both_sides(calm: AlertingStack) -> None:
    stack = calm
    mark = stack.hook.mark()
    stack.partition()
    both = {("mainpc", "pc2"), ("pc2", "mainpc")}

    def sides(notes: list[Notification]) -> set[tuple[str, str]]:
        return {(a["labels"]["machine"], a["labels"]["peer"]) for n in notes for a in n.alerts
                if a["labels"]["alertname"] == "PeerHubUnreachable" and a["status"] == "firing"}

    stack.hook.wait(lambda ns: sides(ns) >= both, timeout=page_within(stack) + stack.timings.sync_stale_seconds,
                    since=mark)
    # Each side holds the far side's agents as `unknown` now; nothing may page for them.
    for here, there in both:
        view = http_json(f"{stack.hubs[here].url}/v1/agents?machine={there}")["agents"]
        assert view and {a["state"] for a in view if a["machine"] == there} == {"unknown"}, (here, view[:2])
    time.sleep(quiet_for(stack))
    during = stack.pages(mark)
    assert {k[1] for k in alerts_of(during)} == {"PeerHubUnreachable"}, describe(during)
    assert sides(during) == both
    assert duplicates(during) == [], describe(during)

    heal = stack.hook.mark()
    stack.heal()

    # Each side's alert reached only its own machine's Alertmanager during the partition,
    # so after the heal the two nodes' groups flush out of step and the cluster is
    # at-least-once: the second node may still send its snapshot from just before the
    # resolution ("firing") after the first one sent it resolved. What must hold: both
    # sides end resolved, and nothing but PeerHubUnreachable is said.
    def last_word(notes: list[Notification]) -> dict[tuple[str, str], str]:
        last = {}
        for status, name, labels in alerts_of(notes):
            if name == "PeerHubUnreachable":
                key = dict(labels)
                last[(key["machine"], key["peer"])] = status
        return last

    stack.hook.wait(lambda ns: last_word(ns) == dict.fromkeys(both, "resolved"),
                    timeout=page_within(stack) + stack.timings.group_interval_seconds, since=heal)
    time.sleep(quiet_for(stack))
    after = stack.pages(heal)
    assert {k[1] for k in alerts_of(after)} == {"PeerHubUnreachable"}, describe(after)
    assert last_word(after) == dict.fromkeys(both, "resolved"), describe(after)


def test_dead_hub_pages_hub_down_and_silences_the_rest(calm: AlertingStack) -> None:
    stack = calm
    mark = stack.hook.mark()
    stack.kill_hub("pc2")
    note = stack.hook.wait_for("HubDown", timeout=page_within(stack), since=mark, machine="pc2")
    assert note.body["receiver"] == "page"
    alert = next(a for a in note.alerts if a["labels"]["alertname"] == "HubDown")
    assert alert["annotations"]["runbook_url"] == stack.topology.alerting.runbook("HubDown")  # type: ignore[union-attr]
    # mainpc's hub cannot sync with the dead one: PeerHubUnreachable fires there, and the
    # Alertmanagers hold it inhibited by HubDown (not merely absent).
    wait_until(lambda: firing_in(stack, "mainpc", "PeerHubUnreachable", peer="pc2"),
               page_within(stack) + stack.timings.sync_stale_seconds, "PeerHubUnreachable firing on mainpc")
    for node in (0, 1):
        def suppressed(node: int = node) -> bool:
            return any(a["labels"]["alertname"] == "PeerHubUnreachable" and a["status"]["state"] == "suppressed"
                       for a in stack.alertmanager_alerts(node))

        wait_until(suppressed, page_within(stack), f"Alertmanager {node} holds PeerHubUnreachable inhibited")
    time.sleep(quiet_for(stack))
    during = stack.pages(mark)
    assert {k[1] for k in alerts_of(during)} == {"HubDown"}, describe(during)
    assert duplicates(during) == [], describe(during)

    back = stack.hook.mark()
    stack.start_hub("pc2")
    stack.hook.wait_for("HubDown", status="resolved", timeout=page_within(stack), since=back, machine="pc2")
    time.sleep(quiet_for(stack))
    after = stack.pages(back)
    # its agents were restored from its store: no AgentMissing, no AgentDown on the way back
    assert {k[1] for k in alerts_of(after)} == {"HubDown"}, describe(after)


def test_ready_key_expiry_is_one_grouped_notification_saying_why(calm: AlertingStack) -> None:
    stack = calm
    mark = stack.hook.mark()
    degraded = stack.set_behaviour(Behaviour.DEGRADED, failing_check="ready_signal")
    assert len(degraded) > 70  # the whole fleet but the victim's own process
    note = stack.hook.wait_for("AgentDegraded", timeout=page_within(stack) + 5, since=mark)
    t = stack.timings
    time.sleep(quiet_for(stack) + t.group_interval_seconds)
    during = stack.pages(mark)
    assert len(during) == 1, describe(during)
    assert note.body["groupLabels"] == {"alertname": "AgentDegraded",
                                        "reason": "health_checks.ready_signal=false"}
    assert {a["labels"]["agent"] for a in note.alerts} == set(degraded)
    assert note.body["commonLabels"]["reason"] == "health_checks.ready_signal=false"
    assert "ready_signal" in note.alerts[0]["annotations"]["summary"]

    back = stack.hook.mark()
    stack.set_behaviour(Behaviour.OK)

    def last_word(notes: list[Notification]) -> dict[str, str]:
        return {dict(labels)["agent"]: status for status, name, labels in alerts_of(notes)
                if name == "AgentDegraded"}

    stack.hook.wait(lambda ns: last_word(ns) == dict.fromkeys(degraded, "resolved"),
                    timeout=page_within(stack) + t.group_interval_seconds, since=back)
    time.sleep(quiet_for(stack))
    after = stack.pages(back)
    # The group resolves in one notification, or in two when one machine's agents resolve a
    # flush before the other's (the first then still lists the rest firing): no re-page.
    assert len(after) <= 2 and {k[1] for k in alerts_of(after)} == {"AgentDegraded"}, describe(after)
    assert {k for k in alerts_of(after) if k[0] == "firing"} <= {
        ("firing", k[1], k[2]) for k in alerts_of(during)}, describe(after)
    assert last_word(after) == dict.fromkeys(degraded, "resolved")


def test_remote_write_reaches_victoria_metrics(calm: AlertingStack) -> None:
    stack = calm
    vm, prom = stack.vm, stack.prom["mainpc"]
    assert vm is not None
    expr = 'fleet_agent_up{machine="mainpc"}'
    local = {r["metric"]["agent"]: r["value"][1] for r in prom.query(expr)}
    assert len(local) == len(stack.agents_of("mainpc")) + 1  # the hub's own agent too

    def stored() -> dict[str, str] | None:
        got = {r["metric"]["agent"]: r["value"][1] for r in vm.query(expr)}
        return got if set(got) == set(local) else None

    got = wait_until(stored, 30, "VictoriaMetrics returns mainpc's agents")
    assert got == local
    sample = vm.query(expr)[0]["metric"]
    assert sample["machine"] == "mainpc" and sample["job"] == "fleet-hub"
    # only mainpc's series were written (pc2's are its own Prometheus' to write) ...
    assert vm.query('count(fleet_agent_up{machine="pc2"})') == []
    # ... with the external label: the Watchdog's ALERTS series has none in Prometheus
    assert prom.query('ALERTS{alertname="Watchdog", machine=""}')
    assert wait_until(lambda: vm.query('ALERTS{alertname="Watchdog", machine="mainpc"}'), 30, "ALERTS in VM")
    recorded = vm.query('machine_group:fleet_agent_up:ratio{machine="mainpc"}')
    assert recorded and all(float(r["value"][1]) == 1.0 for r in recorded)


def test_hub_restart_raises_no_agent_missing_storm_during_its_grace(calm: AlertingStack) -> None:
    """pc2 reboots: its hub comes back with an empty store before its agents are up.
    Every agent is `missing` for a while; inside the start-up grace nothing pages. One
    agent that stays away past the grace does page, alone."""
    stack = calm
    t = stack.timings
    mark = stack.hook.mark()
    stopped = stack.stop_agents(stack.agents_of("pc2"))
    stack.kill_hub("pc2")
    stack.start_hub("pc2", wipe=True)
    started = time.monotonic()
    prom = stack.prom["pc2"]
    missing = wait_until(
        lambda: int(float(r[0]["value"][1])) if (r := prom.query(
            'count(fleet_agent_state{machine="pc2", state="missing"} == 1)')) else None,
        15, "pc2's agents missing")
    assert missing >= len(stopped)
    # stay missing well past every alert's `for`, inside the grace
    stay = t.for_seconds + 3 * t.eval_seconds + t.group_wait_seconds + PEER_TIMEOUT_SECONDS + 2
    time.sleep(stay)
    for machine in stack.machines:
        pending = [a["labels"]["alertname"] for a in stack.live_alerts(machine)
                   if a["labels"]["alertname"] != "HubDown"]
        assert pending == [], (machine, pending)
    stack.start_agents([a for a in stopped if a != STRAGGLER])
    assert time.monotonic() - started < t.startup_grace_seconds - 2, "too slow to prove the grace"
    note = stack.hook.wait_for("AgentMissing", timeout=t.startup_grace_seconds + page_within(stack),
                               since=mark, agent=STRAGGLER)
    assert time.monotonic() - started >= t.startup_grace_seconds
    stack.start_agents([STRAGGLER])
    stack.hook.wait_for("AgentMissing", status="resolved", timeout=page_within(stack), since=mark,
                        agent=STRAGGLER)
    pages = stack.pages(mark)
    # the restart itself may be quick enough for no HubDown, or not: either is right
    assert {k[1] for k in alerts_of(pages)} <= {"AgentMissing", "HubDown"}, describe(pages)
    missing_alerts = {a["labels"]["agent"] for n in pages for a in n.alerts
                      if a["labels"]["alertname"] == "AgentMissing"}
    assert missing_alerts == {STRAGGLER}, describe(pages)
    assert note.body["receiver"] == "page"
