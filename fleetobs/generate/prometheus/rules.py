"""The rule files: recording rules (recording.py, slo.py) and every alert group, as
``{file name: YAML text}``, the same for every machine."""

from __future__ import annotations

from collections.abc import Sequence

from fleetobs.generate.prometheus import alerts_agents, alerts_gpu, alerts_hub, alerts_meta, recording, slo
from fleetobs.generate.prometheus.common import Ctx
from fleetobs.generate.prometheus.model import Alert, AlertGroup
from fleetobs.generate.prometheus.yamltext import dump
from fleetobs.topology.alerting import Alerting
from fleetobs.topology.model import Topology

RECORDING_FILE = "recording.yml"


def alert_groups(topology: Topology, config: Alerting | None = None) -> tuple[AlertGroup, ...]:
    """Every alert group, in file order (the files are named after the groups)."""
    ctx = Ctx(topology, config or topology.alerting)
    return (alerts_agents.group(ctx), slo.group(ctx), alerts_hub.group(ctx),
            *alerts_gpu.groups(ctx), alerts_meta.group(ctx))


def all_alerts(topology: Topology, config: Alerting | None = None) -> tuple[Alert, ...]:
    return tuple(a for g in alert_groups(topology, config) for a in g.alerts)


def file_of(group: AlertGroup) -> str:
    """``fleet.gpu.alerts`` -> ``gpu-alerts.yml``."""
    return group.name.removeprefix("fleet.").replace(".", "-") + ".yml"


def _recording(topology: Topology, config: Alerting) -> str:
    ctx = Ctx(topology, config)
    groups: list[dict[str, object]] = []
    for name, rules in recording.GROUPS.items():
        g: dict[str, object] = {"name": name}
        if name in recording.INTERVALS:
            g["interval"] = recording.INTERVALS[name]
        g["rules"] = [{"record": r.record, "expr": r.expr} for r in rules]
        groups.append(g)
    objectives = slo.objective_rules(ctx) + slo.extra_windows(ctx)
    if objectives:
        groups.append({"name": "fleet.slo.objectives", "interval": "1m", "rules": objectives})
    helps = "\n".join(f"{r.record}: {r.help}" for rules in recording.GROUPS.values() for r in rules)
    return dump({"groups": groups}, "Recording rules (fleetobs/generate/prometheus/recording.py):\n" + helps)


def _alerts_file(group: AlertGroup) -> str:
    return dump({"groups": [{"name": group.name, "rules": [a.rule() for a in group.alerts]}]},
                "Alerting rules; docs/alerting.md and docs/runbooks/<alert>.md explain each.")


def rule_files(topology: Topology, config: Alerting | None = None) -> dict[str, str]:
    """``{file name: YAML}`` of every rule file; ``config`` defaults to the topology's
    ``alerting`` section (pass e.g. ``topology.alerting.fast()`` for short ``for``s)."""
    cfg = config or topology.alerting
    out = {RECORDING_FILE: _recording(topology, cfg)}
    for group in alert_groups(topology, cfg):
        if group.alerts:
            out[file_of(group)] = _alerts_file(group)
    return out


def rule_file_names(topology: Topology, config: Alerting | None = None) -> Sequence[str]:
    return sorted(rule_files(topology, config))
