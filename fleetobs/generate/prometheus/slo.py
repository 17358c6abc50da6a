"""SLOs per container group: the objective series, and multi-window multi-burn-rate alerts
on the availability SLI (Google SRE workbook, ch. 5; kubernetes-mixin's layout).

The SLI is ``machine_group:fleet_agent_unavailable:ratio`` (recording.py). A burn rate of
``f`` means the group spends its error budget ``f`` times as fast as the 30-day objective
allows; an alert fires when both its long and its short window burn faster than ``f``
(the short window makes it resolve soon after the burning stops).
"""

from __future__ import annotations

from fleetobs.generate import links
from fleetobs.generate.prometheus import recording
from fleetobs.generate.prometheus.alerts_agents import _agent
from fleetobs.generate.prometheus.common import GROUP, GROUP_VARS, Ctx, sel
from fleetobs.generate.prometheus.model import Alert, AlertGroup, Case, Check, Expected
from fleetobs.topology.alerting import BurnRate, seconds

_SLI = "machine_group:fleet_agent_unavailable:ratio"


def objective_rules(ctx: Ctx) -> list[dict[str, object]]:
    """One constant series per group: its availability objective (topology alerting.slo)."""
    slo = ctx.config.slo
    return [{"record": recording.OBJECTIVE, "expr": f"vector({slo.objective_of(g.name):g})",
             "labels": {"machine": g.machine, "group": g.name}}
            for g in ctx.topology.groups]


def _window_rule(window: str) -> str:
    return f"{_SLI}_avg{window}"


def extra_windows(ctx: Ctx) -> list[dict[str, str]]:
    """Average rules for burn-rate windows configured beyond recording.SLO_WINDOWS."""
    have = set(recording.SLO_WINDOWS) | {recording.SLO_PERIOD}
    wanted = sorted({w for b in ctx.config.slo.burn_rates for w in (b.long, b.short)} - have, key=seconds)
    return [{"record": _window_rule(w), "expr": f"avg_over_time({_SLI}[{w}])"} for w in wanted]


def _threshold(factor: float) -> str:
    return f"on (machine, group) ({factor:g} * (1 - {recording.OBJECTIVE}))"


def _burn(ctx: Ctx, b: BurnRate) -> Alert:
    # `and` the SLI now: a group whose series vanished (removed, its hub down, the far side
    # of a partition) stops burning at once instead of on its windows' old samples.
    expr = (f"{_window_rule(b.long)} > {_threshold(b.factor)} and "
            f"{_window_rule(b.short)} > {_threshold(b.factor)} and on (machine, group) {_SLI}")
    return ctx.alert(
        "GroupErrorBudgetBurn", expr, b.severity,
        f"Container group {GROUP} burns its error budget {b.factor:g}x too fast",
        f"Over the last {b.long} {{{{ $value | humanizePercentage }}}} of the agents of {GROUP} were "
        f"unavailable, more than {b.factor:g} times its error budget allows (and still over the "
        f"last {b.short}): at this rate the {recording.SLO_PERIOD} budget is gone in "
        f"{seconds(recording.SLO_PERIOD) / b.factor / 86400:.3g} days.",
        links.SLO, GROUP_VARS, labels={"long_window": b.long, "short_window": b.short}, for_=b.for_)


def alerts(ctx: Ctx) -> tuple[Alert, ...]:
    if not ctx.topology.groups:
        return ()
    return tuple(_burn(ctx, b) for b in ctx.config.slo.burn_rates)


def cases(ctx: Ctx) -> dict[str, tuple[Case, ...]]:
    """Ten agents of the first group: three down burn the budget (30% unavailable is more
    than 14.4 x 1%), one in a thousand never does; both windows must burn."""
    if not ctx.topology.groups:
        return {}
    g = ctx.topology.groups[0]
    budget = 1 - ctx.config.slo.objective_of(g.name)
    # the fastest pair that can fire at all (factor x budget < 1: not every agent down)
    pairs = [b for b in ctx.config.slo.burn_rates if b.factor * budget < 1]
    if not pairs:
        return {}
    fastest = max(pairs, key=lambda b: b.factor)
    n = 10
    while not any(k / n > fastest.factor * budget for k in range(1, n)):
        n *= 10
    bad = next(k for k in range(1, n) if k / n > fastest.factor * budget)
    agents = [_agent(ctx, f"S{i}", g.name) | {"machine": g.machine, "instance": ctx.hub_instance(g.machine)}
              for i in range(n)]
    labels = {"machine": g.machine, "group": g.name, "severity": fastest.severity,
              "long_window": fastest.long, "short_window": fastest.short}
    at = seconds(fastest.short) + seconds(fastest.for_) + 97
    ratio = bad / n

    def series(down: int, values_down: str, values_up: str) -> tuple[tuple[str, str], ...]:
        return tuple((sel("fleet_agent_up", a), values_down if i < down else values_up)
                     for i, a in enumerate(agents))

    steps = int(at // 60) + 2
    fire = Case("fire", series(bad, f"0x{steps}", f"1x{steps}"), (Check(at, (Expected(labels, ratio),)),))
    # a blip: one agent down for two minutes does not burn a monthly budget
    blip = Case("no-fire", series(1, f"1x3 0x1 1x{steps}", f"1x{steps + 5}"), (Check(at),))
    # the group's agents vanish (the group left the topology): no data is not a burn
    gone_after = int(at // 60) + 1
    vanished = Case("vanished", series(bad, f"0x{gone_after} stale", f"1x{gone_after} stale"),
                    (Check(at, (Expected(labels, ratio),)),
                     Check((gone_after + 2) * 60 + 7)))
    return {"GroupErrorBudgetBurn": (fire, blip, vanished)}


def group(ctx: Ctx) -> AlertGroup:
    return AlertGroup("fleet.slo.alerts", alerts(ctx), cases(ctx))
