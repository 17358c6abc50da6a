"""Alerts on agents and container groups, from the hub's per-agent series.

Each hub exports only its own machine's agents, and both machines' Prometheus scrape both
hubs, so the two copies of an alert have identical labels and Alertmanager sends one
notification (docs/alerting.md, "one page per fault").
"""

from __future__ import annotations

from fleetobs.generate import links
from fleetobs.generate.prometheus.common import (
    GONE,
    AGENT_KEY,
    AGENT_VARS,
    GROUP,
    GROUP_VARS,
    HUB_JOB,
    WHO,
    Ctx,
    sel,
    steps,
)
from fleetobs.generate.prometheus.model import Alert, AlertGroup, Case, Check, Expected
from fleetobs.topology.alerting import seconds

_NOT_UNKNOWN = "unless on (machine, agent) fleet_agent_unknown"
_OUT_OF_GRACE = "unless on (machine) (fleet_hub_startup_grace == 1)"


def _required_variants(ctx: Ctx, name: str, condition: str, summary: str, description: str
                       ) -> tuple[Alert, Alert]:
    """Severity from the topology's ``required``: critical for required agents, warning
    for optional ones (the hub exports ``fleet_agent_required``)."""
    out = []
    for required, severity in ((1, "critical"), (0, "warning")):
        expr = f"({condition}) and on ({AGENT_KEY}) (fleet_agent_required == {required}) {_NOT_UNKNOWN}"
        out.append(ctx.alert(name, expr, severity, summary, description, links.AGENT, AGENT_VARS))
    return out[0], out[1]


def alerts(ctx: Ctx) -> tuple[Alert, ...]:
    t = ctx.config.thresholds
    min_agents = f"machine_group:fleet_agent_monitored:count >= {t.group_min_agents}"
    return (
        *_required_variants(
            ctx, "AgentDown", 'fleet_agent_state{state="down"} == 1',
            f"Agent {WHO} is down",
            f"The hub has not heard from {WHO} (no heartbeat or probe answer) for longer than "
            "3 heartbeat intervals: it judges the agent down."),
        ctx.alert(
            "AgentDegraded", f"fleet_agent_degraded_reason == 1 {_NOT_UNKNOWN}", "warning",
            "Agent {{ $labels.agent }} is degraded: {{ $labels.reason }}",
            f"{WHO} answers but reports itself degraded. The hub's reason: "
            "{{ $labels.reason }} (the full text is in the hub's agent record, "
            "GET /v1/agents/{{ $labels.agent }}).",
            links.AGENT, AGENT_VARS),
        *_required_variants(
            ctx, "AgentMissing",
            f'fleet_agent_state{{state="missing"}} == 1 {_OUT_OF_GRACE}',
            f"Agent {WHO} has never been seen",
            f"The topology expects {WHO}, but the hub has not heard from it since it started "
            "(its start-up grace is over): it was never started, or it cannot reach the hub."),
        ctx.alert(
            "AgentFlapping",
            f"changes(fleet_agent_up[{t.flapping_window}]) >= {t.flapping_changes} {_NOT_UNKNOWN}",
            "warning", f"Agent {WHO} is flapping",
            f"{WHO} went between up and down at least {t.flapping_changes} times in "
            f"{t.flapping_window}: it keeps crashing and restarting, or it misses heartbeats.",
            links.AGENT, AGENT_VARS),
        ctx.alert(
            "GroupDown",
            f"(machine_group:fleet_agent_up:sum == 0) and on (machine, group) ({min_agents}) "
            f"{_OUT_OF_GRACE}",
            "critical", f"Container group {GROUP} is down",
            f"None of the monitored agents of {GROUP} is up: the container is stopped or "
            "crashed. Its agents' AgentDown alerts are inhibited.",
            links.OVERVIEW, GROUP_VARS),
        ctx.alert(
            "GroupDegraded",
            f"(machine_group:fleet_agent_up:ratio < {t.group_degraded_ratio}) and "
            f"(machine_group:fleet_agent_up:ratio > 0) and on (machine, group) ({min_agents}) "
            f"{_OUT_OF_GRACE}",
            "critical", f"Container group {GROUP} lost most of its agents",
            f"Only {{{{ $value | humanizePercentage }}}} of the monitored agents of {GROUP} are up. "
            "Its agents' AgentDown alerts are inhibited.",
            links.OVERVIEW, GROUP_VARS),
    )


# --- promtool cases ------------------------------------------------------------------


def _agent(ctx: Ctx, agent: str, group: str = "g1") -> dict[str, str]:
    m = ctx.first_machine()
    return {"machine": m, "group": group, "agent": agent, "job": HUB_JOB,
            "instance": ctx.hub_instance(m)}


def _hub(ctx: Ctx) -> dict[str, str]:
    m = ctx.first_machine()
    return {"machine": m, "job": HUB_JOB, "instance": ctx.hub_instance(m)}


def _state(ctx: Ctx, agent: dict[str, str], state: str, values: str) -> tuple[str, str]:
    return sel("fleet_agent_state", {**agent, "state": state}), values


def _required(agent: dict[str, str], value: int) -> tuple[str, str]:
    return sel("fleet_agent_required", agent), steps(value, 60)


def _with(labels: dict[str, str], **extra: str) -> Expected:
    return Expected({**labels, **extra})


def cases(ctx: Ctx) -> dict[str, tuple[Case, ...]]:
    t = ctx.config.thresholds
    req, opt = _agent(ctx, "Req"), _agent(ctx, "Opt")
    hub = _hub(ctx)
    grace = (sel("fleet_hub_startup_grace", hub), steps(0, 60))
    fire_at = ctx.fire_at("AgentDown")
    down = {
        "fire": Case("fire", (
            _state(ctx, req, "down", steps(1, 60)), _required(req, 1),
            _state(ctx, opt, "down", steps(1, 60)), _required(opt, 0),
        ), (Check(fire_at, (_with(req, state="down", severity="critical"),
                            _with(opt, state="down", severity="warning"))),)),
        "no-fire": Case("no-fire", (
            _state(ctx, req, "down", steps(0, 60)), _state(ctx, req, "up", steps(1, 60)),
            _required(req, 1),
            # an agent the topology does not know never pages
            _state(ctx, _agent(ctx, "Stray", ""), "down", steps(1, 60)),
            _required(_agent(ctx, "Stray", ""), 0),
            (sel("fleet_agent_unknown", {**hub, "agent": "Stray", "kind": "unknown"}), steps(1, 60)),
        ), (Check(fire_at),)),
        "vanished": _vanished(ctx, "AgentDown", (
            _state(ctx, req, "down", "1x20 stale"), _required(req, 1)),
            (_with(req, state="down", severity="critical"),)),
    }
    reason = "health_checks.ready_signal=false"
    deg_at = ctx.fire_at("AgentDegraded")
    degraded = {
        "fire": Case("fire", (
            (sel("fleet_agent_degraded_reason", {**req, "reason": reason}), steps(1, 60)),
            (sel("fleet_agent_degraded_reason", {**opt, "reason": reason}), steps(1, 60)),
        ), (Check(deg_at, (_with(req, reason=reason, severity="warning"),
                           _with(opt, reason=reason, severity="warning"))),)),
        # up agents have no reason series at all
        "no-fire": Case("no-fire", (_state(ctx, req, "up", steps(1, 60)),
                                    _state(ctx, req, "degraded", steps(0, 60))),
                        (Check(deg_at),)),
        "vanished": _vanished(ctx, "AgentDegraded", (
            (sel("fleet_agent_degraded_reason", {**req, "reason": reason}), "1x20 stale"),),
            (_with(req, reason=reason, severity="warning"),)),
    }
    miss_at = ctx.fire_at("AgentMissing")
    missing = {
        "fire": Case("fire", (
            _state(ctx, req, "missing", steps(1, 60)), _required(req, 1), grace,
        ), (Check(miss_at, (_with(req, state="missing", severity="critical"),)),)),
        # during the hub's start-up grace nobody is missing yet (a restart is no storm)
        "no-fire": Case("no-fire", (
            _state(ctx, req, "missing", steps(1, 60)), _required(req, 1),
            (sel("fleet_hub_startup_grace", hub), steps(1, 60)),
        ), (Check(miss_at),)),
        "vanished": _vanished(ctx, "AgentMissing", (
            _state(ctx, req, "missing", "1x20 stale"), _required(req, 1),
            (sel("fleet_hub_startup_grace", hub), "0x20 stale")),
            (_with(req, state="missing", severity="critical"),)),
    }
    flap_at = ctx.for_s("AgentFlapping") + 16 * 60 + 7
    flapping_values = " ".join(["1 0"] * 30)
    flapping = {
        "fire": Case("fire", ((sel("fleet_agent_up", req), flapping_values),),
                     (Check(flap_at, (_with(req, severity="warning"),)),)),
        # one restart is not flapping
        "no-fire": Case("no-fire", ((sel("fleet_agent_up", req), "1x5 0x2 1x50"),),
                        (Check(flap_at),)),
        "vanished": _vanished(ctx, "AgentFlapping", (
            (sel("fleet_agent_up", req), " ".join(["1 0"] * 12) + " stale"),),
            (_with(req, severity="warning"),), fire_at=flap_at,
            # changes() still sees the old flips for one window after the series vanish
            gone_at=24 * 60 + seconds(t.flapping_window) + 97),
    }
    members = [_agent(ctx, f"A{i}") for i in range(1, 4)]
    grp = {"machine": ctx.first_machine(), "group": "g1"}
    g_down_at = ctx.fire_at("GroupDown")
    group_down = {
        "fire": Case("fire", tuple((sel("fleet_agent_up", a), steps(0, 60)) for a in members)
                     + (grace,), (Check(g_down_at, (_with(grp, severity="critical"),)),)),
        "no-fire": Case("no-fire", (
            *((sel("fleet_agent_up", a), steps(0, 60)) for a in members[:2]),
            (sel("fleet_agent_up", members[2]), steps(1, 60)), grace,
            # a one-agent group's death is that agent's AgentDown, not a GroupDown
            (sel("fleet_agent_up", _agent(ctx, "Solo", "g2")), steps(0, 60)),
        ), (Check(g_down_at),)),
        "vanished": _vanished(ctx, "GroupDown", tuple(
            (sel("fleet_agent_up", a), "0x20 stale") for a in members) + (
            (sel("fleet_hub_startup_grace", hub), "0x20 stale"),),
            (_with(grp, severity="critical"),)),
    }
    many = [_agent(ctx, f"B{i}") for i in range(1, 6)]
    g_deg_at = ctx.fire_at("GroupDegraded")
    ratio_up = 2 / 5
    if ratio_up >= t.group_degraded_ratio:  # thresholds are configurable: keep the case true
        many = [*many, *(_agent(ctx, f"C{i}") for i in range(1, 10))]
        ratio_up = 2 / len(many)
    degraded_group = {
        "fire": Case("fire", tuple(
            (sel("fleet_agent_up", a), steps(1 if i < 2 else 0, 60)) for i, a in enumerate(many))
            + (grace,), (Check(g_deg_at, (Expected({**grp, "severity": "critical"}, ratio_up),)),)),
        # all down is GroupDown's, not GroupDegraded's
        "no-fire": Case("no-fire", tuple((sel("fleet_agent_up", a), steps(0, 60)) for a in many)
                        + (grace,), (Check(g_deg_at),)),
        "vanished": _vanished(ctx, "GroupDegraded", tuple(
            (sel("fleet_agent_up", a), f"{1 if i < 2 else 0}x20 stale") for i, a in enumerate(many))
            + ((sel("fleet_hub_startup_grace", hub), "0x20 stale"),),
            (Expected({**grp, "severity": "critical"}, ratio_up),)),
    }
    return {name: tuple(c.values()) for name, c in (
        ("AgentDown", down), ("AgentDegraded", degraded), ("AgentMissing", missing),
        ("AgentFlapping", flapping), ("GroupDown", group_down), ("GroupDegraded", degraded_group))}


def _vanished(ctx: Ctx, name: str, series: tuple[tuple[str, str], ...],
              expect: tuple[Expected, ...], *, fire_at: float | None = None,
              gone_at: float = GONE) -> Case:
    """The alert fires, then its series vanish (the hub stopped exporting them, e.g. the
    agent left the topology): it resolves instead of firing on stale data."""
    first = fire_at if fire_at is not None else ctx.fire_at(name)
    return Case("vanished", series, (Check(first, expect), Check(gone_at)))


def group(ctx: Ctx) -> AlertGroup:
    return AlertGroup("fleet.agents.alerts", alerts(ctx), cases(ctx))
