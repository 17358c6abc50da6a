"""The ``alerting:`` section of the topology: every knob of the generated Prometheus and
Alertmanager configuration, with production defaults (docs/alerting.md documents each).

One object drives the scrape config, the recording and alerting rules, their promtool
tests and alertmanager.yml (fleetobs/generate/prometheus/). The section is optional: a
topology without it gets exactly these defaults. Tests build a variant with short
intervals and ``for`` durations with ``model_copy(update=...)`` or :meth:`Alerting.fast`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Prometheus duration syntax (``90s``, ``1h30m``, ``500ms``).
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d|w|y))+$"
Duration = Annotated[str, Field(pattern=DURATION_PATTERN)]
Ratio = Annotated[float, Field(gt=0, lt=1)]

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")

#: Every alert the generator writes. ``for`` overrides are checked against this list
#: (and tests/fleetobs/generate/prometheus prove it equals the generated alerts).
ALERTS: tuple[str, ...] = (
    "AgentDown", "AgentDegraded", "AgentMissing", "AgentFlapping",
    "GroupDown", "GroupDegraded", "GroupErrorBudgetBurn",
    "HubDown", "HubAbsent", "PeerHubUnreachable", "SyncStale",
    "GpuGroupOverBudget", "GpuMemoryNearFull", "GpuTemperatureHigh", "GpuThrottled",
    "GpuXidErrors", "GpuEccErrors", "NvmlDown", "GpuExporterDown",
    "ContainerMemoryNearLimit", "ContainerOomKilled", "ContainerRestartLoop",
    "LogLinesDropped",
    "Watchdog", "PrometheusRuleFailures", "PrometheusAlertmanagerMissing",
    "AlertmanagerNotificationsFailing",
)

#: Production ``for`` durations (the burn-rate alerts take theirs from ``slo.burn_rates``).
DEFAULT_FOR: dict[str, str] = {
    "AgentDown": "1m", "AgentDegraded": "5m", "AgentMissing": "5m", "AgentFlapping": "5m",
    "GroupDown": "1m", "GroupDegraded": "1m",
    "HubDown": "1m", "HubAbsent": "2m", "PeerHubUnreachable": "1m", "SyncStale": "5m",
    "GpuGroupOverBudget": "5m", "GpuMemoryNearFull": "5m", "GpuTemperatureHigh": "5m",
    "GpuThrottled": "5m", "GpuXidErrors": "1m", "GpuEccErrors": "1m", "NvmlDown": "5m",
    "GpuExporterDown": "2m",
    "ContainerMemoryNearLimit": "5m", "ContainerOomKilled": "1m", "ContainerRestartLoop": "5m",
    "LogLinesDropped": "10m",
    "Watchdog": "1m", "PrometheusRuleFailures": "5m", "PrometheusAlertmanagerMissing": "5m",
    "AlertmanagerNotificationsFailing": "5m",
}


def seconds(duration: str) -> float:
    """A Prometheus duration in seconds (``1h30m`` -> 5400)."""
    if not re.fullmatch(DURATION_PATTERN, duration):
        raise ValueError(f"{duration!r} is not a Prometheus duration (e.g. 30s, 5m, 1h30m)")
    return sum(int(n) * _UNITS[u] for n, u in _PART.findall(duration))


def duration(secs: float) -> str:
    """Seconds as the shortest exact Prometheus duration (5400 -> ``1h30m``)."""
    ms = round(secs * 1000)
    if ms <= 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            out += f"{ms // size}{unit}"
            ms %= size
    return out


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True,
                              populate_by_name=True)


class BurnRate(_Frozen):
    """One multi-window burn-rate alert: both windows burn faster than ``factor``."""

    long: Duration
    short: Duration
    factor: float = Field(gt=0)
    severity: Literal["critical", "warning"]
    for_: Duration = Field(alias="for")


#: Google SRE workbook, for a 30-day objective: page at 14.4x (1h/5m) and 6x (6h/30m),
#: ticket at 3x (1d/2h) and 1x (3d/6h).
DEFAULT_BURN_RATES: tuple[BurnRate, ...] = (
    BurnRate(long="1h", short="5m", factor=14.4, severity="critical", for_="2m"),
    BurnRate(long="6h", short="30m", factor=6, severity="critical", for_="15m"),
    BurnRate(long="1d", short="2h", factor=3, severity="warning", for_="1h"),
    BurnRate(long="3d", short="6h", factor=1, severity="warning", for_="3h"),
)


class Slo(_Frozen):
    """Availability objectives of the container groups (fraction of monitored agents up)."""

    objective: Ratio = 0.99
    #: Per-group objectives (group name -> objective), e.g. ``{utility_gpu: 0.995}``.
    groups: dict[str, Ratio] = Field(default_factory=dict)
    period: Duration = "30d"
    burn_rates: tuple[BurnRate, ...] = DEFAULT_BURN_RATES

    def objective_of(self, group: str) -> float:
        return self.groups.get(group, self.objective)


class Thresholds(_Frozen):
    #: GroupDegraded: fewer than this fraction of a group's monitored agents are up.
    group_degraded_ratio: Ratio = 0.5
    #: GroupDown / GroupDegraded only for groups with at least this many monitored agents
    #: (a one-agent group's death is that agent's AgentDown).
    group_min_agents: int = Field(2, ge=1)
    #: AgentFlapping: at least this many up/down changes within ``flapping_window``.
    flapping_changes: int = Field(4, ge=2)
    flapping_window: Duration = "15m"
    #: SyncStale: no successful sync exchange with a peer for this long.
    sync_stale: Duration = "5m"
    gpu_memory_full_ratio: Ratio = 0.95
    gpu_temperature_celsius: float = Field(85, gt=0, lt=150)
    #: XID codes that page (the rest open a ticket): 48 double-bit ECC, 79 fallen off
    #: the bus, 94/95 contained/uncontained ECC, 119/120 GSP errors.
    critical_xids: tuple[int, ...] = (48, 79, 94, 95, 119, 120)
    container_memory_ratio: Ratio = 0.9
    #: ContainerRestartLoop: at least this many restarts within ``container_restart_window``.
    container_restarts: int = Field(3, ge=1)
    container_restart_window: Duration = "15m"


class Receiver(_Frozen):
    """Where a notification goes: a webhook (the default). docs/alerting.md shows e-mail,
    Slack and PagerDuty receivers to put in its place."""

    webhook_url: str = Field(pattern=r"^https?://\S+$")
    send_resolved: bool = True


class AlertmanagerSettings(_Frozen):
    group_wait: Duration = "30s"
    group_interval: Duration = "5m"
    repeat_interval: Duration = "4h"
    resolve_timeout: Duration = "5m"
    #: critical alerts (pages).
    page: Receiver = Receiver(webhook_url="http://127.0.0.1:9095/fleetobs/page")
    #: warning alerts (tickets).
    ticket: Receiver = Receiver(webhook_url="http://127.0.0.1:9095/fleetobs/ticket")
    #: The always-firing Watchdog, for an external dead man's switch; ``null``: not sent.
    watchdog: Receiver | None = None
    watchdog_repeat_interval: Duration = "5m"


class BasicAuth(_Frozen):
    username: str = Field(min_length=1)
    password_file: str = Field(min_length=1)


class RemoteWrite(_Frozen):
    """A ``remote_write`` target: an existing distributed store (VictoriaMetrics, Mimir,
    Thanos Receive), for long-term, multi-machine storage."""

    url: str = Field(pattern=r"^https?://\S+$")
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    remote_timeout: Duration = "30s"
    basic_auth: BasicAuth | None = None
    bearer_token_file: str | None = None
    #: Only series whose name matches this regex are sent (default: everything).
    keep_metrics: str | None = None

    @model_validator(mode="after")
    def _one_auth(self) -> RemoteWrite:
        if self.basic_auth is not None and self.bearer_token_file is not None:
            raise ValueError("remote_write: basic_auth and bearer_token_file exclude each other")
        return self


class Alerting(_Frozen):
    scrape_interval: Duration = "15s"
    scrape_timeout: Duration = "10s"
    evaluation_interval: Duration = "15s"
    #: Each alert's ``runbook_url``; ``{alert}`` is replaced by the alert name.
    runbook_url: str = Field("https://github.com/fleetobs/fleetobs/blob/main/docs/runbooks/{alert}.md",
                             pattern=r"\{alert\}")
    #: Grafana's root URL, for each alert's ``dashboard_url`` (every machine's Grafana
    #: shows both machines, so the local one is a good default).
    grafana_url: str = Field("http://localhost:3000", pattern=r"^https?://\S+[^/]$")
    #: Bearer token file for the hub's /metrics and /v1/sd/prometheus (when the hub sets
    #: FLEET_READ_TOKEN), as a path inside the Prometheus container.
    hub_bearer_token_file: str | None = None
    for_: dict[str, Duration] = Field(default_factory=dict, alias="for")
    thresholds: Thresholds = Thresholds()
    slo: Slo = Slo()
    alertmanager: AlertmanagerSettings = AlertmanagerSettings()
    remote_write: tuple[RemoteWrite, ...] = ()

    @field_validator("for_")
    @classmethod
    def _known_alerts(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(DEFAULT_FOR))
        if unknown:
            raise ValueError(f"unknown alert(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(DEFAULT_FOR))})")
        return v

    @model_validator(mode="after")
    def _timeout_fits(self) -> Alerting:
        if seconds(self.scrape_timeout) > seconds(self.scrape_interval):
            raise ValueError(f"scrape_timeout {self.scrape_timeout} exceeds scrape_interval "
                             f"{self.scrape_interval}")
        return self

    def for_of(self, alert: str) -> str:
        return self.for_.get(alert) or DEFAULT_FOR[alert]

    def runbook(self, alert: str) -> str:
        return self.runbook_url.replace("{alert}", alert)

    def fast(self, *, interval: str = "1s", for_: str = "2s", group_wait: str = "1s",
             group_interval: str = "2s") -> Alerting:
        """The same configuration with short intervals and ``for`` durations (tests)."""
        am = self.alertmanager.model_copy(update={"group_wait": group_wait,
                                                  "group_interval": group_interval})
        return self.model_copy(update={
            "scrape_interval": interval, "evaluation_interval": interval,
            "scrape_timeout": interval, "for_": {a: for_ for a in DEFAULT_FOR},
            "alertmanager": am})
