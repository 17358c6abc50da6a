"""Alerts about the monitoring itself: the Watchdog (a dead man's switch), Prometheus and
Alertmanager self-checks, and log shipping dropping lines.

Deliberately absent: "Prometheus cannot send to an Alertmanager" and "Alertmanager cluster
peers missing". During a partition each side's Prometheus fails to reach the far
Alertmanager and the cluster loses its peer; both would fire beside PeerHubUnreachable.
PrometheusAlertmanagerMissing covers a configuration without any Alertmanager.
"""

from __future__ import annotations

from fleetobs.generate import links
from fleetobs.generate.prometheus.common import (
    ALERTMANAGER_JOB,
    HUB_JOB,
    MACHINE,
    MACHINE_VARS,
    PROMETHEUS_JOB,
    Ctx,
    sel,
    steps,
)
from fleetobs.generate.prometheus.model import Alert, AlertGroup, Case, Check, Expected


def alerts(ctx: Ctx) -> tuple[Alert, ...]:
    return (
        ctx.alert(
            "Watchdog", "vector(1)", "info", "The alerting pipeline is alive",
            "Always firing, on purpose: an external dead man's switch (alerting.alertmanager."
            "watchdog) raises the alarm when it stops arriving from a Prometheus.",
            links.HUB, MACHINE_VARS),
        ctx.alert(
            "PrometheusRuleFailures", "increase(prometheus_rule_evaluation_failures_total[5m]) > 0",
            "warning", f"Prometheus on {MACHINE} fails to evaluate rules",
            "Rule group {{ $labels.rule_group }} failed to evaluate in the last 5m: its alerts "
            "cannot fire. The Prometheus log says why.",
            links.HUB, MACHINE_VARS),
        ctx.alert(
            "PrometheusAlertmanagerMissing",
            "max_over_time(prometheus_notifications_alertmanagers_discovered[5m]) < 1",
            "critical", f"Prometheus on {MACHINE} has no Alertmanager",
            f"Prometheus on {MACHINE} has discovered no Alertmanager to send alerts to: no "
            "alert from it reaches anyone (this one reaches you only through the other machine "
            "or the Watchdog's absence).",
            links.HUB, MACHINE_VARS),
        ctx.alert(
            "AlertmanagerNotificationsFailing",
            "rate(alertmanager_notifications_failed_total[5m]) > 0",
            "critical", f"Alertmanager on {MACHINE} fails to send notifications",
            f"Alertmanager on {MACHINE} fails to deliver notifications through "
            "{{ $labels.integration }}: check the receiver's URL and credentials.",
            links.HUB, MACHINE_VARS),
        ctx.alert(
            "LogLinesDropped", 'rate(fleet_log_lines_dropped_total{reason!="shutdown"}[10m]) > 0',
            "warning", f"{{{{ $labels.job }}}} on {MACHINE} drops log lines ({{{{ $labels.reason }}}})",
            f"The Loki shipper of {{{{ $labels.job }}}} on {MACHINE} gives up on log lines "
            "(reason {{ $labels.reason }}): Loki is unreachable or refuses them, and the buffer "
            "and spool are full.",
            links.LOGS, MACHINE_VARS),
    )


def cases(ctx: Ctx) -> dict[str, tuple[Case, ...]]:
    m = ctx.first_machine()
    prom = {"machine": m, "job": PROMETHEUS_JOB, "instance": "localhost:9090"}
    am = {"machine": m, "job": ALERTMANAGER_JOB, "instance": "localhost:9093"}
    hub = {"machine": m, "job": HUB_JOB, "instance": ctx.hub_instance(m)}
    failures = sel("prometheus_rule_evaluation_failures_total", {**prom, "rule_group": "x.yml;g"})
    discovered = sel("prometheus_notifications_alertmanagers_discovered", prom)
    failed = sel("alertmanager_notifications_failed_total", {**am, "integration": "webhook"})
    dropped = sel("fleet_log_lines_dropped_total", {**hub, "reason": "buffer_full"})
    shutdown = sel("fleet_log_lines_dropped_total", {**hub, "reason": "shutdown"})

    def at(name: str, after: float = 0) -> float:
        return after + ctx.fire_at(name)

    def warn(labels: dict[str, str]) -> Expected:
        return Expected({**labels, "severity": "warning"})

    def crit(labels: dict[str, str]) -> Expected:
        return Expected({**labels, "severity": "critical"})

    return {
        "Watchdog": (
            Case("fire", (), (Check(at("Watchdog"), (Expected({"severity": "info"}),)),)),
            # pending until its `for` is over: even the Watchdog does not fire at once
            Case("no-fire", (), (Check(7),)),
            Case("vanished", ((failures, "0x5 stale"),),
                 (Check(at("Watchdog", 600), (Expected({"severity": "info"}),)),)),
        ),
        "PrometheusRuleFailures": (
            Case("fire", ((failures, "0x5 1+1x60"),),
                 (Check(at("PrometheusRuleFailures", 420), (warn({**prom, "rule_group": "x.yml;g"}),)),)),
            Case("no-fire", ((failures, "0x60"),), (Check(at("PrometheusRuleFailures", 420)),)),
            Case("vanished", ((failures, "0x5 1+1x10 stale"),),
                 (Check(at("PrometheusRuleFailures", 420), (warn({**prom, "rule_group": "x.yml;g"}),)),
                  Check(40 * 60 + 7))),
        ),
        "PrometheusAlertmanagerMissing": (
            Case("fire", ((discovered, steps(0, 60)),),
                 (Check(at("PrometheusAlertmanagerMissing"), (crit(prom),)),)),
            Case("no-fire", ((discovered, steps(2, 60)),), (Check(at("PrometheusAlertmanagerMissing")),)),
            Case("vanished", ((discovered, "0x20 stale"),),
                 (Check(at("PrometheusAlertmanagerMissing"), (crit(prom),)), Check(30 * 60 + 7))),
        ),
        "AlertmanagerNotificationsFailing": (
            Case("fire", ((failed, "0x5 0+2x60"),),
                 (Check(at("AlertmanagerNotificationsFailing", 420), (crit({**am, "integration": "webhook"}),)),)),
            Case("no-fire", ((failed, "3x60"),), (Check(at("AlertmanagerNotificationsFailing", 600)),)),
            Case("vanished", ((failed, "0x5 0+2x10 stale"),),
                 (Check(at("AlertmanagerNotificationsFailing", 420), (crit({**am, "integration": "webhook"}),)),
                  Check(40 * 60 + 7))),
        ),
        "LogLinesDropped": (
            Case("fire", ((dropped, "0x5 0+10x60"),),
                 (Check(at("LogLinesDropped", 420), (warn({**hub, "reason": "buffer_full"}),)),)),
            # lines given up at process exit are not an incident
            Case("no-fire", ((shutdown, "0x5 0+10x60"), (dropped, "0x60")),
                 (Check(at("LogLinesDropped", 420)),)),
            Case("vanished", ((dropped, "0x5 0+10x20 stale"),),
                 (Check(at("LogLinesDropped", 420), (warn({**hub, "reason": "buffer_full"}),)),
                  Check(50 * 60 + 7))),
        ),
    }


def group(ctx: Ctx) -> AlertGroup:
    return AlertGroup("fleet.meta.alerts", alerts(ctx), cases(ctx))
