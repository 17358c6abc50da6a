"""Hub and sync health: heartbeats, requests, probing, the judge loop and the store,
sync with each peer, and log shipping.

``fleet_hub_request_duration_seconds`` and the ``fleet_log_*`` families carry no
``machine`` label of their own: their ``machine`` is the scrape target's label,
which the scrape config sets on every target.
"""

from __future__ import annotations

from typing import Any

from fleetobs.generate import links
from fleetobs.generate.dashboards.document import MACHINE, dashboard
from fleetobs.generate.dashboards.overview import PEER_MAPPING
from fleetobs.generate.dashboards.panels import Grid, prom, stat, steps, timeseries, value_map

M = f"{{{MACHINE}}}"
LINES = "suffix: lines/s"


def rate(metric: str, by: str) -> str:
    return f"sum by ({by}) (rate({metric}{M}[$__rate_interval]))"


def increase(metric: str, by: str) -> str:
    return f"sum by ({by}) (increase({metric}{M}[$__rate_interval]))"


def quantile(q: float, metric: str, by: str) -> str:
    return f"histogram_quantile({q:g}, {rate(metric + '_bucket', 'le, ' + by)})"


def _hub(grid: Grid) -> None:
    grid.row("Heartbeats and requests")
    grid.add(timeseries("Observations accepted by source", "Heartbeats, probe answers and self "
                        "reports the hub accepted per second (recording rule, 5 m rate).", "ops",
                        [prom(f"machine_source:fleet_hub_heartbeats_received:rate5m{M}",
                              "{{machine}} {{source}}")]), 8, 8)
    grid.add(timeseries("Heartbeats rejected by reason", "Heartbeats or requests refused per second "
                        "(invalid, too_large, unauthorized, too_many_unknown, other_machine).", "ops",
                        [prom(f"machine_reason:fleet_hub_heartbeats_rejected:rate5m{M}",
                              "{{machine}} {{reason}}")]), 8, 8)
    grid.add(timeseries("Request latency by route (p99)", "99th percentile of the time the hub took "
                        "to answer HTTP requests, by route template.", "s",
                        [prom(quantile(0.99, "fleet_hub_request_duration_seconds", "machine, route"),
                              "{{machine}} {{route}}")]), 8, 8)
    grid.add(timeseries("Requests by route and code", "HTTP requests answered per second.", "reqps",
                        [prom(rate("fleet_hub_request_duration_seconds_count", "machine, route, code"),
                              "{{machine}} {{route}} {{code}}")]), 12, 8)
    grid.add(stat("Unknown agents", "Agents the topology does not place on this machine that sent "
                  "observations.", "short", [prom(f"fleet_hub_unknown_agents{M}", "{{machine}}")],
                  thresholds=steps((None, "green"), (1, "yellow")), text_mode="value_and_name"), 3, 4)
    grid.add(stat("Startup grace", "Whether the hub is inside its startup grace, when missing "
                  "agents may still be starting.", "none", [prom(f"fleet_hub_startup_grace{M}", "{{machine}}")],
                  mappings=[value_map({"1": ("in grace", "yellow"), "0": ("over", "green")})],
                  text_mode="value_and_name"), 3, 4)
    grid.add(stat("Uptime", "Seconds since the hub process started.", "s",
                  [prom(f"time() - fleet_hub_start_time_seconds{M}", "{{machine}}")],
                  text_mode="value_and_name"), 3, 4)
    grid.add(stat("Store: pending writes",
                  "Agent records changed and not yet committed to SQLite (the flush in progress included).",
                  "short", [prom(f"fleet_hub_store_pending_writes{M}", "{{machine}}")],
                  text_mode="value_and_name"), 3, 4)
    grid.add(timeseries("Store flushes by outcome", "Write-behind flushes to SQLite per second.",
                        "ops", [prom(rate("fleet_hub_store_flushes_total", "machine, outcome"),
                                     "{{machine}} {{outcome}}")]), 12, 4)


def _probing(grid: Grid) -> None:
    grid.row("Probing and the judge loop")
    grid.add(timeseries("Probe results by outcome", "Health probes per second by protocol and "
                        "outcome (timeout, refused, unreachable: no answer).", "ops",
                        [prom(rate("fleet_probe_results_total", "machine, protocol, outcome"),
                              "{{machine}} {{protocol}} {{outcome}}")]), 8, 8)
    grid.add(timeseries("Probe latency (p50, p99)", "Round trip of probes that got an answer.", "s",
                        [prom(quantile(0.5, "fleet_probe_latency_seconds", "machine, protocol"),
                              "{{machine}} {{protocol}} p50"),
                         prom(quantile(0.99, "fleet_probe_latency_seconds", "machine, protocol"),
                              "{{machine}} {{protocol}} p99")]), 8, 8)
    grid.add(timeseries("Probe cycle duration (p99)", "Time to probe every probed agent of the "
                        "machine once.", "s",
                        [prom(quantile(0.99, "fleet_probe_cycle_duration_seconds", "machine"),
                              "{{machine}} p99")]), 8, 8)
    grid.add(timeseries("Probe cycle overruns", "Probe cycles that took longer than the probe "
                        "interval (the next one started late).", "short",
                        [prom(increase("fleet_probe_cycle_overruns_total", "machine"), "{{machine}}")],
                        bars=True), 6, 8)
    grid.add(timeseries("Probe targets", "Agents probed each cycle, by protocol.", "short",
                        [prom(f"fleet_probe_targets{M}", "{{machine}} {{protocol}}")]), 6, 8)
    grid.add(timeseries("Judge loop stalls", "Times the judge loop ran late enough to trigger the "
                        "pause guard.", "short",
                        [prom(increase("fleet_hub_stalls_total", "machine"), "{{machine}}")], bars=True), 6, 8)
    grid.add(timeseries("Stall seconds credited", "Seconds of stall the pause guard credited to "
                        "agents (so a paused hub does not call them missing).", "s",
                        [prom(increase("fleet_hub_stalled_seconds_total", "machine"), "{{machine}}")]), 6, 8)


def _sync(grid: Grid) -> None:
    grid.row("Sync with peers")
    grid.add(stat("Peer up", "Whether sync with each peer works both ways.", "none",
                  [prom(f"min by (machine, peer) (fleet_peer_up{M})", "{{machine}} → {{peer}}")],
                  mappings=[PEER_MAPPING], thresholds=steps((None, "red"), (1, "green")),
                  background=True, text_mode="value_and_name"), 6, 8)
    grid.add(timeseries("Sync age", "Seconds since the last successful exchange with each peer "
                        "(recording rule) and since its data last arrived.", "s",
                        [prom(f"machine_peer:fleet_sync_last_success_age_seconds:max{M}",
                              "{{machine}} → {{peer}} exchange"),
                         prom(f"fleet_sync_peer_data_age_seconds{M}", "{{machine}} ← {{peer}} data")],
                        thresholds=steps((None, "green"), (8, "red")), threshold_line=True), 9, 8)
    grid.add(timeseries("Sync exchange duration (p99)", "Duration of successful pushes and "
                        "reconciliations with each peer.", "s",
                        [prom(quantile(0.99, "fleet_sync_duration_seconds", "machine, peer, kind"),
                              "{{machine}} → {{peer}} {{kind}}")]), 9, 8)
    grid.add(timeseries("Sync bytes", "Sync bytes exchanged with each peer per second.", "Bps",
                        [prom(rate("fleet_sync_bytes_total", "machine, peer, direction"),
                              "{{machine}} ↔ {{peer}} {{direction}}")]), 8, 8)
    grid.add(timeseries("Sync failures by reason", "Failed exchanges with each peer per second "
                        "(timeout, connect, reset, http_4xx, ...).", "ops",
                        [prom(rate("fleet_sync_failures_total", "machine, peer, reason"),
                              "{{machine}} → {{peer}} {{reason}}")]), 8, 8)
    grid.add(timeseries("Records received and requests refused", "Agent records received from "
                        "peers by outcome, and sync requests refused by reason, per second.", "ops",
                        [prom(rate("fleet_sync_records_received_total", "machine, peer, outcome"),
                              "{{machine}} ← {{peer}} {{outcome}}"),
                         prom(rate("fleet_sync_rejected_total", "machine, reason"),
                              "{{machine}} refused: {{reason}}")]), 8, 8)


def _logs(grid: Grid) -> None:
    grid.row("Log shipping to Loki")
    grid.add(timeseries("Log lines shipped and dropped", "Lines Loki accepted per second, and lines "
                        "the shipper gave up on by reason.", LINES,
                        [prom(rate("fleet_log_lines_sent_total", "machine"), "{{machine}} sent"),
                         prom(rate("fleet_log_lines_dropped_total", "machine, reason"),
                              "{{machine}} dropped: {{reason}}")]), 8, 8)
    grid.add(timeseries("Push retries by reason", "Pushes to Loki that will be retried, per second "
                        "(rate_limited, server_error, connection, timeout).", "ops",
                        [prom(rate("fleet_log_push_retries_total", "machine, reason"),
                              "{{machine}} {{reason}}")]), 8, 8)
    grid.add(timeseries("Push duration (p99)", "Time of one push request to Loki, by outcome.", "s",
                        [prom(quantile(0.99, "fleet_log_push_duration_seconds", "machine, outcome"),
                              "{{machine}} {{outcome}}")]), 8, 8)
    grid.add(timeseries("Buffer and spool", "Bytes waiting in the shipper's memory buffer and in "
                        "its spool (disk, or memory without one).", "bytes",
                        [prom(f"fleet_log_buffer_bytes{M}", "{{machine}} buffer"),
                         prom(f"fleet_log_spool_bytes{M}", "{{machine}} spool")]), 12, 8)
    grid.add(timeseries("Bytes shipped", "Compressed push bytes Loki accepted per second.", "Bps",
                        [prom(rate("fleet_log_sent_bytes_total", "machine"), "{{machine}}")]), 12, 8)


def render() -> dict[str, Any]:
    grid = Grid()
    _hub(grid)
    _probing(grid)
    _sync(grid)
    _logs(grid)
    return dashboard(links.HUB, "Hub and sync health", "The hubs themselves: heartbeats, requests, "
                     "probing, stalls, the store, sync with each peer, log shipping.", grid.panels,
                     variables=("datasource", "machine"))
