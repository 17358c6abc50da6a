"""Sync's Prometheus families, built from the catalog (fleetobs/catalog.py, SYNC).

``fleet_peer_up{peer}`` is the one signal a broken link raises: 0 while either
direction fails (our pushes are not answered, or the peer has not been heard from
for ``stale_after_seconds``). Peers' agents never appear in the per-agent families
(they are their owner's to export), so a partition pages nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from fleetobs import catalog
from hub.sync.engine import SyncEngine

_INF = float("inf")




class SyncCollector(Collector):
    def __init__(self, engine: SyncEngine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        eng = self.engine
        m = eng.machine
        now = eng.clock()
        links = list(eng.links)
        up = catalog.gauge("fleet_peer_up")
        age = catalog.gauge("fleet_sync_last_success_age_seconds")
        sent = catalog.counter("fleet_sync_bytes_total")
        failures = catalog.counter("fleet_sync_failures_total")
        duration = catalog.family("fleet_sync_duration_seconds")
        assert isinstance(duration, HistogramMetricFamily)
        for link in links:
            peer = link.label
            up.add_metric([m, peer], 1 if eng.peer_up(link) else 0)
            if link.last_ok > -_INF:
                age.add_metric([m, peer], max(now - link.last_ok, 0.0))
            st = link.stats
            sent.add_metric([m, peer, "sent"], st.bytes_sent)
            for reason, n in sorted(st.failures.items()):
                failures.add_metric([m, peer, reason], n)
            for kind, row in sorted(st.durations.items()):
                cumulative: list[tuple[str, float]] = []
                total = 0.0
                for le, hits in zip((*catalog.LATENCY_BUCKETS, _INF), row[:-1], strict=True):
                    total += hits
                    cumulative.append(("+Inf" if le == _INF else repr(le), total))
                duration.add_metric([m, peer, kind], cumulative, sum_value=row[-1])
        inbound = eng.server.stats
        # Received: peers' requests to us plus their replies to ours.
        received: dict[str, float] = dict(inbound.bytes_received)
        for link in links:
            received[link.label] = received.get(link.label, 0) + link.stats.bytes_received
        for peer, size in sorted(received.items()):
            sent.add_metric([m, peer, "received"], size)
        data_age = catalog.gauge("fleet_sync_peer_data_age_seconds")
        for machine, view in sorted(eng.fleet.owners.items()):
            data_age.add_metric([m, machine], max(now - view.last_heard, 0.0))
        records = catalog.counter("fleet_sync_records_received_total")
        for (peer, outcome), n in sorted(inbound.records.items()):
            records.add_metric([m, peer, outcome], n)
        rejected = catalog.counter("fleet_sync_rejected_total")
        for reason, n in sorted(inbound.rejected.items()):
            rejected.add_metric([m, reason], n)
        yield from (up, age, data_age, duration, failures, sent, records, rejected)
