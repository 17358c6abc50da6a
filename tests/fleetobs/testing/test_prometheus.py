"""The Prometheus launcher: a real Prometheus on a free port, its API, and a clean stop."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fleetobs.testing.prometheus import PrometheusError, PrometheusProcess

pytestmark = [pytest.mark.binaries, pytest.mark.slow]


def test_prometheus_starts_answers_queries_and_is_gone_after_the_block(tmp_path: Path) -> None:
    with PrometheusProcess("", {"rules/r.yml": "groups: []\n"}, tmp_path) as prom:  # empty config: defaults
        assert prom.url.startswith("http://127.0.0.1:")
        assert prom.query("vector(1)")[0]["value"][1] == "1"
        assert prom.query("scalar(vector(2))")[0]["value"][1] == "2"
        with pytest.raises(PrometheusError, match="parse error"):
            prom.query("sum(")
        with pytest.raises(PrometheusError, match="still empty"):
            prom.wait_for("up", timeout=0.5)  # no scrape jobs: no up
        proc = prom.proc
        assert proc is not None and (tmp_path / "prometheus.yml").exists() and (tmp_path / "rules/r.yml").exists()
    assert proc.poll() is not None  # killed and waited for


def test_targets_and_wait_for_with_a_scrape_job(tmp_path: Path) -> None:
    config = yaml.safe_dump({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                             "rule_files": ["rules/r.yml"],
                             "scrape_configs": [{"job_name": "nothing-there",
                                                 "static_configs": [{"targets": ["127.0.0.1:9"]}]}]})
    rules = {"groups": [{"name": "g", "rules": [{"record": "job:up:sum", "expr": "sum by (job) (up)"}]}]}
    with PrometheusProcess(config, {"rules/r.yml": yaml.safe_dump(rules)}, tmp_path) as prom:
        (result,) = prom.wait_for("job:up:sum", timeout=20)
        assert (result["metric"], result["value"][1]) == ({"__name__": "job:up:sum", "job": "nothing-there"}, "0")
        (target,) = prom.targets()
        assert (target["labels"]["job"], target["health"]) == ("nothing-there", "down")
