"""End to end: the shipper against the Loki stand-in, through outages and refusals."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from fleetobs import catalog
from fleetobs.logs.model import DEBUG, ERROR, INFO, SEVERITIES, WARNING, LogEntry, StreamLabels
from fleetobs.logs.shipper import LogShipper, ShipperConfig
from fleetobs.settings import load_settings
from fleetobs.testing.loki import LokiLimits, LokiStandIn, Reply

Until = Callable[..., bool]
STREAMS = [StreamLabels(source="agent", machine="mainpc", agent=f"agent{i}") for i in range(3)]


def line(stream: StreamLabels, msg: str, severity: int = INFO, ts: int | None = None) -> LogEntry:
    return LogEntry(time.time_ns() if ts is None else ts, severity, SEVERITIES[severity], msg, stream)


def msgs(loki: LokiStandIn, **labels: str) -> list[str]:
    return [json.loads(text)["msg"] for text in loki.lines(**labels)]


def log_from_threads(shipper: LogShipper, per_stream: int, prefix: str) -> None:
    """One thread per stream, as agents' threads would log."""
    def work(s: StreamLabels) -> None:
        for i in range(per_stream):
            assert shipper.submit(line(s, f"{prefix}{i}"))
    threads = [threading.Thread(target=work, args=(s,)) for s in STREAMS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.mark.parametrize("spool", ["disk", "memory"])
def test_lines_logged_while_loki_is_down_arrive_once_and_in_order(
        loki: LokiStandIn, make_shipper: Any, tmp_path: Path, until: Until, spool: str) -> None:
    shipper = make_shipper(loki.url, spool_dir=tmp_path / "spool" if spool == "disk" else None,
                           batch_max_bytes=16 * 1024)
    loki.down()
    shipper.start()
    log_from_threads(shipper, 1500, "down-")
    assert until(lambda: shipper.stats.retries.get("connection", 0) >= 3)
    if spool == "disk":
        assert until(lambda: shipper.buffer.lines == 0)  # everything went to disk
        assert any((tmp_path / "spool").iterdir())
    loki.up()
    log_from_threads(shipper, 100, "up-")
    assert shipper.wait_idle(15)
    for s in STREAMS:
        want = [f"down-{i}" for i in range(1500)] + [f"up-{i}" for i in range(100)]
        assert msgs(loki, agent=s.agent or "") == want
    assert loki.duplicates == 0
    assert {r.status for r in loki.requests} == {204}  # the strict stand-in saw no reordering
    assert shipper.dropped() == {}
    assert shipper.stats.lines_sent == 3 * 1600


def test_loki_down_for_long_memory_stays_bounded_and_drops_are_counted(
        loki: LokiStandIn, make_shipper: Any, until: Until) -> None:
    shipper = make_shipper(loki.url, buffer_max_lines=500, buffer_max_bytes=1 << 20,
                           memory_outbox_max_bytes=8 * 1024, batch_max_bytes=4 * 1024)
    loki.down()
    shipper.start()
    s = STREAMS[0]
    n = 20_000
    for i in range(n):
        severity = ERROR if i % 100 == 0 else (DEBUG, INFO, WARNING)[i % 3]
        shipper.submit(line(s, f"m{i}", severity))
        assert shipper.buffer.lines <= 500
        assert shipper.outbox.nbytes <= 8 * 1024
    assert until(lambda: shipper.stats.retries.get("connection", 0) >= 2)
    loki.up()
    assert shipper.wait_idle(15)
    dropped = shipper.dropped()
    assert dropped["buffer_full"] > 10_000
    assert len(loki.stored) + sum(dropped.values()) == n  # every line sent or counted
    # Least severe first: every error line survived the flood.
    assert {f"m{i}" for i in range(0, n, 100)} <= set(msgs(loki))
    assert any("dropped" in t and "buffer_full=" in t for t in make_shipper.notices)


def test_disk_spool_full_drops_oldest_and_counts(
        loki: LokiStandIn, make_shipper: Any, tmp_path: Path, until: Until) -> None:
    shipper = make_shipper(loki.url, spool_dir=tmp_path / "spool", spool_max_bytes=20_000,
                           batch_max_bytes=2048)
    loki.down()
    shipper.start()
    for i in range(5000):
        shipper.submit(line(STREAMS[0], f"m{i:05d} " + "x" * 40))
    assert until(lambda: shipper.buffer.lines == 0 and shipper.stats.retries.get("connection", 0) > 0)
    assert shipper.outbox.nbytes <= 20_000
    loki.up()
    assert shipper.wait_idle(15)
    got = msgs(loki)
    assert shipper.dropped()["spool_full"] == 5000 - len(got)
    assert got == sorted(got) and got[-1].startswith("m04999")  # newest kept, in order


def test_a_400_is_not_retried_and_the_valid_part_arrives(
        loki: LokiStandIn, make_shipper: Any) -> None:
    shipper = make_shipper(loki.url)
    old = time.time_ns() - 200 * 3600 * 10**9  # Loki's limit is 168 h
    shipper.submit(line(STREAMS[0], "too old", ts=old))
    shipper.submit(line(STREAMS[1], "fine"))
    shipper.start()
    assert shipper.wait_idle(5)
    time.sleep(0.1)  # several retry periods: a retry would show as a second request
    assert [r.status for r in loki.requests] == [400]
    assert msgs(loki) == ["fine"]
    assert shipper.dropped() == {"rejected": 2}  # the batch Loki answered 400 (valid part stored)
    assert any("400" in t and "too old" in t for t in make_shipper.notices)


def test_other_4xx_are_not_retried(loki: LokiStandIn, make_shipper: Any) -> None:
    loki.script(Reply(401, body="no org id"))
    shipper = make_shipper(loki.url)
    shipper.submit(line(STREAMS[0], "a"))
    shipper.start()
    assert shipper.wait_idle(5)
    time.sleep(0.1)
    assert [r.status for r in loki.requests] == [401]
    assert shipper.dropped() == {"rejected": 1}


def test_413_splits_the_batch_until_it_fits(make_shipper: Any) -> None:
    with LokiStandIn(LokiLimits(unordered_writes=False, max_body_bytes=4000)) as loki:
        shipper = make_shipper(loki.url, batch_max_bytes=1 << 20)
        for i in range(400):
            shipper.submit(line(STREAMS[i % 2], f"{i:04d} " + "p" * 20))
        shipper.start()
        assert shipper.wait_idle(10)
        statuses = [r.status for r in loki.requests]
        assert statuses[0] == 413 and statuses.count(204) >= 2
        for s in STREAMS[:2]:
            assert msgs(loki, agent=s.agent or "") == [
                f"{i:04d} " + "p" * 20 for i in range(400) if STREAMS[i % 2] is s]
        assert shipper.dropped() == {}


def test_a_single_line_still_too_large_is_dropped_and_counted(make_shipper: Any) -> None:
    with LokiStandIn(LokiLimits(max_body_bytes=300)) as loki:
        shipper = make_shipper(loki.url)
        shipper.submit(line(STREAMS[0], "z" * 2000))
        shipper.submit(line(STREAMS[0], "small"))
        shipper.start()
        assert shipper.wait_idle(5)
        assert msgs(loki) == ["small"]
        assert shipper.dropped() == {"too_large": 1}


def test_429_waits_at_least_retry_after(loki: LokiStandIn, make_shipper: Any) -> None:
    loki.script(Reply(429, retry_after="0.3"), Reply(503))
    shipper = make_shipper(loki.url)  # its own backoff is 10-50 ms
    shipper.submit(line(STREAMS[0], "a"))
    shipper.start()
    assert shipper.wait_idle(5)
    r = loki.requests
    assert [x.status for x in r] == [429, 503, 204]
    assert r[1].at - r[0].at >= 0.3
    assert shipper.stats.retries == {"rate_limited": 1, "server_error": 1}
    assert msgs(loki) == ["a"]


def test_caller_never_waits_for_a_hanging_loki(loki: LokiStandIn, make_shipper: Any) -> None:
    loki.hang()
    shipper = make_shipper(loki.url, timeout_seconds=30.0, buffer_max_lines=5000)
    shipper.start()
    shipper.submit(line(STREAMS[0], "first"))
    assert loki.wait_held(1, 5)  # the sender is now stuck in a request for up to 30 s
    results = [shipper.submit(line(STREAMS[0], f"m{i}")) for i in range(20_000)]
    # All 20 000 calls returned while that request was still held: none waited on it.
    assert loki.held == 1 and shipper.stats.retries == {}
    assert results.count(True) == 20_000 and shipper.buffer.lines == 5000
    loki.release()


def test_shutdown_drains_within_its_deadline(loki: LokiStandIn, make_shipper: Any) -> None:
    shipper = make_shipper(loki.url, batch_wait_seconds=30.0)  # only shutdown will send
    shipper.start()
    for i in range(3000):
        shipper.submit(line(STREAMS[i % 3], f"m{i}"))
    t0 = time.monotonic()
    shipper.stop(5.0)
    assert time.monotonic() - t0 < 5.0
    assert len(loki.stored) == 3000 and shipper.dropped() == {}
    shipper.stop(5.0)  # idempotent
    assert not shipper.submit(line(STREAMS[0], "after stop"))
    assert shipper.dropped() == {"closed": 1}


def test_shutdown_with_loki_hanging_keeps_the_lines_on_disk_for_the_next_run(
        loki: LokiStandIn, make_shipper: Any, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    loki.hang()
    first = make_shipper(loki.url, spool_dir=spool, timeout_seconds=0.2)
    first.start()
    for i in range(100):
        first.submit(line(STREAMS[0], f"m{i}"))
    assert loki.wait_held(1, 5)
    t0 = time.monotonic()
    first.stop(1.0)
    assert time.monotonic() - t0 < 1.5
    loki.up()  # stops hanging
    second = make_shipper(loki.url, spool_dir=spool)
    second.start()
    assert second.wait_idle(5)
    assert msgs(loki) == [f"m{i}" for i in range(100)]
    assert first.dropped() == {} and second.dropped() == {}


def test_shutdown_without_a_spool_counts_what_it_could_not_send(
        loki: LokiStandIn, make_shipper: Any) -> None:
    loki.down()
    shipper = make_shipper(loki.url)
    shipper.start()
    for i in range(50):
        shipper.submit(line(STREAMS[0], f"m{i}"))
    shipper.stop(0.3)
    assert shipper.dropped() == {"shutdown": 50}


def test_spooled_lines_older_than_loki_accepts_are_dropped_and_counted(
        loki: LokiStandIn, make_shipper: Any, tmp_path: Path) -> None:
    now = [time.time_ns()]
    shipper = make_shipper(loki.url, spool_dir=tmp_path / "s", max_age_seconds=3600.0,
                           wall_clock_ns=lambda: now[0])
    loki.down()
    shipper.start()
    base = time.time_ns()
    for i in range(10):  # the first six are 50 min old: fine for now
        shipper.submit(line(STREAMS[0], f"m{i}", ts=base - (50 * 60 if i < 6 else 0) * 10**9 + i))
    shipper.stop(0.5)  # everything now waits in the spool
    assert shipper.dropped() == {}
    now[0] += 20 * 60 * 10**9  # 20 minutes later the first six are past the 1 h limit
    loki.up()
    again = make_shipper(loki.url, spool_dir=tmp_path / "s", max_age_seconds=3600.0,
                         wall_clock_ns=lambda: now[0])
    again.start()
    assert again.wait_idle(5)
    assert msgs(loki) == ["m6", "m7", "m8", "m9"]
    assert again.dropped() == {"too_old": 6}
    assert {r.status for r in loki.requests} == {204}


def test_tenant_auth_and_gzip_reach_loki(loki: LokiStandIn, make_shipper: Any) -> None:
    shipper = make_shipper(loki.url + "/loki/api/v1/push", tenant="fleet", basic_auth=("u", "p"))
    shipper.submit(line(STREAMS[0], "a"))
    shipper.start()
    assert shipper.wait_idle(5)
    r = loki.requests[0]
    assert (r.tenant, r.content_encoding) == ("fleet", "gzip")
    assert r.authorization == "Basic dTpw"


def test_metrics_follow_the_catalog(loki: LokiStandIn, make_shipper: Any) -> None:
    loki.script(Reply(500))
    shipper = make_shipper(loki.url)
    for i in range(5):
        shipper.submit(line(STREAMS[0], f"m{i}"))
    shipper.start()
    assert shipper.wait_idle(5)
    reg = CollectorRegistry(auto_describe=False)
    reg.register(shipper.collector())
    text = generate_latest(reg).decode()
    assert "fleet_log_lines_sent_total 5.0" in text
    assert 'fleet_log_push_retries_total{reason="server_error"} 1.0' in text
    assert 'fleet_log_push_duration_seconds_count{outcome="sent"} 1.0' in text
    assert "fleet_log_buffer_lines 0.0" in text
    names = {m.name for m in reg.collect()}
    for family in names:
        assert any(family == spec.name.removesuffix("_total") for spec in catalog.LOGS), family
    for spec in catalog.LOGS:
        assert not catalog.naming_problems(spec)


def test_without_loki_url_nothing_is_configured() -> None:
    assert ShipperConfig.from_settings(load_settings({})) is None
    cfg = ShipperConfig.from_settings(load_settings({
        "FLEET_LOKI_URL": "http://loki:3100", "FLEET_LOKI_TENANT": "t",
        "FLEET_LOKI_USERNAME": "u", "FLEET_LOKI_PASSWORD": "p", "FLEET_DATA_DIR": "/data",
        "FLEET_LOKI_SPOOL_MAX_BYTES": "64MiB", "FLEET_LOKI_STRUCTURED_METADATA": "true"}))
    assert cfg is not None
    assert (cfg.tenant, cfg.basic_auth, cfg.spool_max_bytes) == ("t", ("u", "p"), 64 * 1024**2)
    assert cfg.spool_dir == Path("/data/loki-spool/mainpc") and cfg.structured_metadata
    named = ShipperConfig.from_settings(load_settings({"FLEET_LOKI_URL": "http://loki:3100"}),
                                        spool_name="MemoryClient")
    assert named is not None and named.spool_dir == Path(".fleetobs/loki-spool/MemoryClient")
    no_spool = ShipperConfig.from_settings(load_settings({
        "FLEET_LOKI_URL": "http://loki:3100", "FLEET_LOKI_SPOOL_MAX_BYTES": "0"}))
    assert no_spool is not None and no_spool.spool_dir is None


@pytest.mark.parametrize("url", ["loki:3100", "ftp://loki", "http://"])
def test_a_url_that_cannot_work_is_refused_at_once(url: str) -> None:
    with pytest.raises(ValueError, match="FLEET_LOKI_URL"):
        LogShipper(ShipperConfig(url))


def test_a_spool_in_use_by_another_shipper_falls_back_to_memory(
        loki: LokiStandIn, make_shipper: Any, tmp_path: Path) -> None:
    first = make_shipper(loki.url, spool_dir=tmp_path / "s")
    second = make_shipper(loki.url, spool_dir=tmp_path / "s")
    first.start()
    second.start()
    assert any("no disk spool" in t and "in use" in t for t in make_shipper.notices)
    second.submit(line(STREAMS[0], "still shipped"))
    assert second.wait_idle(5)
    assert msgs(loki) == ["still shipped"]


def test_lines_of_a_shipper_never_started_wait_in_the_spool(
        loki: LokiStandIn, make_shipper: Any, tmp_path: Path) -> None:
    never = make_shipper(loki.url, spool_dir=tmp_path / "s")
    never.submit(line(STREAMS[0], "kept"))
    never.stop(1.0)
    later = make_shipper(loki.url, spool_dir=tmp_path / "s")
    later.start()
    assert later.wait_idle(5)
    assert msgs(loki) == ["kept"]


def test_a_push_outliving_the_deadline_leaves_the_buffer_in_the_spool(
        loki: LokiStandIn, make_shipper: Any, tmp_path: Path) -> None:
    loki.hang()
    stuck = make_shipper(loki.url, spool_dir=tmp_path / "s", timeout_seconds=30.0)
    stuck.start()
    stuck.submit(line(STREAMS[0], "in flight"))
    assert loki.wait_held(1, 5)
    for i in range(50):
        stuck.submit(line(STREAMS[0], f"m{i}"))
    t0 = time.monotonic()
    stuck.stop(0.5)
    assert time.monotonic() - t0 < 1.0
    assert stuck.dropped() == {"shutdown": 1}  # the held line: its fate is unknown
    assert any("outlived the shutdown deadline" in t for t in make_shipper.notices)
    loki.release()
    assert stuck._thread is not None
    stuck._thread.join(5)  # the held request fails; the old sender lets go of the spool
    again = make_shipper(loki.url, spool_dir=tmp_path / "s")
    again.start()
    assert again.wait_idle(5)
    assert [m for m in msgs(loki) if m != "in flight"] == [f"m{i}" for i in range(50)]
