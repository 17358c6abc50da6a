from __future__ import annotations

import pytest

from fleetobs.catalog import all_exposed_names
from fleetobs.generate.prometheus import recording
from fleetobs.generate.promql import PromQLError, metric_names, unknown_metrics


def test_metric_names_walks_the_whole_expression() -> None:
    expr = ('sum by (machine) (rate(fleet_hub_heartbeats_received_total[5m])) '
            '/ on (machine) group_left max_over_time(fleet_agent_up[1h:1m]) or absent(up{job="hub"}) '
            '- topk(3, -(fleet_gpu_power_watts)) and {__name__="fleet_gpu_memory_used_bytes"}')
    assert metric_names(expr) == {"fleet_hub_heartbeats_received_total", "fleet_agent_up", "up",
                                  "fleet_gpu_power_watts", "fleet_gpu_memory_used_bytes"}


def test_unknown_metrics_names_strays_but_not_prometheus_own() -> None:
    expr = "agent_health_status > 0 or up == 0 or prometheus_rule_evaluation_failures_total > 0"
    assert unknown_metrics(expr, all_exposed_names()) == ["agent_health_status"]


def test_invalid_promql_and_nameless_selectors_are_errors() -> None:
    with pytest.raises(PromQLError, match="invalid PromQL"):
        metric_names("sum(rate(x[5m])")
    with pytest.raises(PromQLError, match="without a metric name"):
        metric_names('{job="hub"}')


def test_recording_rules_read_only_catalog_metrics_and_each_other() -> None:
    known = all_exposed_names() | recording.names()
    for group in recording.GROUPS.values():
        for rule in group:
            assert unknown_metrics(rule.expr, known) == [], rule.record
            assert rule.record.count(":") == 2, f"{rule.record}: level:metric:operations"
