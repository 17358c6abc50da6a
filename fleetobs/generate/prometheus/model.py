"""What an alert is here: one Prometheus alerting rule, its annotations, and the promtool
test cases that prove it fires, stays silent, and lets go when its series vanish.

Annotations are Go templates Prometheus renders. They use a small subset on purpose
(``{{ $labels.x }}`` and ``{{ $value | humanizePercentage }}``) so :func:`render_template`
can compute the exact text promtool expects in the generated unit tests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

SEVERITIES = ("critical", "warning", "info")


@dataclass(frozen=True)
class Expected:
    """One alert a test case expects to be firing: its labels (sample labels plus the
    rule's, alertname left out) and the sample value (for ``$value`` in templates)."""

    labels: Mapping[str, str]
    value: float = 1.0


@dataclass(frozen=True)
class Check:
    """At ``at`` seconds exactly ``expect`` are firing (none: the alert is silent)."""

    at: float
    expect: tuple[Expected, ...] = ()


@dataclass(frozen=True)
class Case:
    """A promtool test case: ``series`` (selector, values at 1m steps) and the checks made
    on them. ``name`` says what it proves: fire, no-fire or vanished."""

    name: str
    series: tuple[tuple[str, str], ...]
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class Alert:
    """One alerting rule. Several rules may share a name (e.g. one per severity)."""

    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    runbook_url: str
    dashboard_url: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def rule(self) -> dict[str, object]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity, **dict(sorted(self.labels.items()))},
            "annotations": self.annotations(),
        }

    def annotations(self) -> dict[str, str]:
        return {"summary": self.summary, "description": self.description,
                "runbook_url": self.runbook_url, "dashboard_url": self.dashboard_url}

    def all_labels(self) -> dict[str, str]:
        return {"severity": self.severity, **self.labels}


@dataclass(frozen=True)
class AlertGroup:
    """A rule group of alerts, with the promtool cases of each alert name."""

    name: str
    alerts: tuple[Alert, ...]
    cases: Mapping[str, tuple[Case, ...]]


_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")


def _humanize_percentage(v: float) -> str:
    return f"{v * 100:.4g}%"


def render_template(text: str, labels: Mapping[str, str], value: float) -> str:
    """Render the template subset annotations use, exactly as Prometheus does."""

    def one(m: re.Match[str]) -> str:
        expr = m.group(1)
        if expr.startswith("$labels."):
            return labels.get(expr.removeprefix("$labels."), "")
        if expr == "$value | humanizePercentage":
            return _humanize_percentage(value)
        raise ValueError(f"template {expr!r} is outside the subset fleetobs renders")

    return _TEMPLATE.sub(one, text)


def template_fields(text: str) -> list[str]:
    """The template expressions in ``text`` (for checks)."""
    return _TEMPLATE.findall(text)
