"""``promtool test rules`` files, one per alert: it fires, it stays silent, and it lets go
when its series vanish (cases live beside each alert in the alerts_*.py modules).

Times are off the evaluation grid on purpose (``+97 s``, ``+7 s``): promtool 2.42 checks
an eval time against the last evaluation at or before it, so a case never depends on
whether a boundary is inclusive. The tests evaluate every minute (:data:`EVALUATION_INTERVAL`,
not the production 15 s): the cases' series move in minutes, and promtool runs 4x faster.
Each test loads the recording rules and its alert's own file only.
"""

from __future__ import annotations

from fleetobs.generate.prometheus.model import Alert, Case, Expected, render_template
from fleetobs.generate.prometheus.rules import RECORDING_FILE, alert_groups, file_of
from fleetobs.generate.prometheus.yamltext import dump
from fleetobs.topology.alerting import Alerting, duration

EVALUATION_INTERVAL = "1m"
from fleetobs.topology.model import Topology


def _variant(alerts: list[Alert], e: Expected) -> Alert:
    """The rule of this name whose own labels the expected alert carries."""
    for a in alerts:
        if all(e.labels.get(k) == v for k, v in a.all_labels().items()):
            return a
    raise ValueError(f"no {alerts[0].name} rule has the labels {dict(e.labels)}")


def _expected(alerts: list[Alert], e: Expected) -> dict[str, object]:
    rule = _variant(alerts, e)
    sample = {k: v for k, v in e.labels.items() if k not in rule.all_labels()}
    return {"exp_labels": dict(sorted(e.labels.items())),
            "exp_annotations": {k: render_template(v, sample, e.value)
                                for k, v in rule.annotations().items()}}


def _test(name: str, alerts: list[Alert], case: Case) -> dict[str, object]:
    return {
        "name": f"{name} {case.name}",
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in case.series],
        "alert_rule_test": [
            {"eval_time": duration(c.at), "alertname": name,
             "exp_alerts": [_expected(alerts, e) for e in c.expect]}
            for c in case.checks
        ],
    }


def rule_tests(topology: Topology, config: Alerting | None = None, rules_dir: str = "../rules"
               ) -> dict[str, str]:
    """``{<Alert>.yml: promtool test file}`` reading the rule files from ``rules_dir``
    (relative to the test file)."""
    cfg = config or topology.alerting
    out: dict[str, str] = {}
    for group in alert_groups(topology, cfg):
        files = [RECORDING_FILE, file_of(group)]
        for name, cases in group.cases.items():
            alerts = [a for a in group.alerts if a.name == name]
            if not alerts:
                raise ValueError(f"test cases for {name}, which {group.name} does not define")
            doc = {"rule_files": [f"{rules_dir}/{f}" for f in files],
                   "evaluation_interval": EVALUATION_INTERVAL,
                   "tests": [_test(name, alerts, c) for c in cases]}
            out[f"{name}.yml"] = dump(doc, f"promtool test rules for {name}: fire, no-fire, vanished.")
    return out
