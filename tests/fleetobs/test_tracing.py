"""Tracing: off (and free) without an endpoint; spans reach a real OTLP/HTTP receiver."""

from __future__ import annotations

import socket
import time

import pytest
from opentelemetry import trace

from fleetobs.logs.model import INFO, LogEntry, StreamLabels
from fleetobs.logs.shipper import LogShipper, ShipperConfig
from fleetobs.testing.loki import LokiStandIn
from fleetobs.testing.otlp import OTLPReceiver
from fleetobs.tracing import (
    DISABLED,
    LOG_PUSH,
    PROBE_CYCLE,
    SYNC_ROUND,
    TracingConfigError,
    setup_tracing,
)


@pytest.mark.parametrize("env", [
    {},
    {"OTEL_SERVICE_NAME": "x"},
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"},
])
def test_without_an_endpoint_tracing_is_the_shared_noop(env: dict[str, str]) -> None:
    t = setup_tracing(env)
    assert t is DISABLED and not t.enabled and t.tracer_or_none is None
    # Every span is the same object: nothing is allocated or recorded.
    assert t.span("a") is t.probe_cycle("m", 1) is t.sync_round("p")
    with t.probe_cycle("mainpc", 3) as span:
        assert span is trace.INVALID_SPAN and not span.is_recording()
    t.shutdown(1.0)


@pytest.mark.parametrize(("env", "var"), [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     "OTEL_EXPORTER_OTLP_PROTOCOL"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h", "OTEL_TRACES_EXPORTER": "zipkin"},
     "OTEL_TRACES_EXPORTER"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h", "OTEL_TRACES_SAMPLER": "sometimes"},
     "OTEL_TRACES_SAMPLER"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h", "OTEL_TRACES_SAMPLER": "traceidratio",
      "OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h", "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"},
     "OTEL_EXPORTER_OTLP_TIMEOUT"),
])
def test_settings_it_cannot_honour_are_named(env: dict[str, str], var: str) -> None:
    with pytest.raises(TracingConfigError, match=var):
        setup_tracing(env)


def test_background_spans_reach_an_otlp_receiver() -> None:
    with OTLPReceiver() as rx:
        t = setup_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": rx.endpoint,
                           "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,host.name=mainpc",
                           "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=fleet"},
                          schedule_delay_seconds=0.02)
        assert t.enabled
        with t.probe_cycle("mainpc", 54), t.sync_round("http://pc2:9100"):
            pass
        with pytest.raises(RuntimeError), t.span("fleet.failing"):
            raise RuntimeError("sync broke")
        t.shutdown(5.0)
        spans = {s.name: s for s in rx.wait_for(3, 5)}
        assert rx.headers[0]["x-tenant"] == "fleet"
        assert rx.headers[0]["content-type"] == "application/x-protobuf"
    cycle, sync, failing = spans[PROBE_CYCLE], spans[SYNC_ROUND], spans["fleet.failing"]
    assert cycle.attributes == {"fleet.machine": "mainpc", "fleet.probe.agents": 54}
    assert sync.parent_span_id == cycle.span_id and sync.trace_id == cycle.trace_id
    assert cycle.parent_span_id == ""
    assert failing.status_code == 2 and "exception" in failing.events
    assert cycle.resource["service.name"] == "fleetobs-hub"
    assert cycle.resource["host.name"] == "mainpc"
    assert cycle.scope == "fleetobs"


def test_service_name_and_traces_endpoint_variables() -> None:
    with OTLPReceiver() as rx:
        t = setup_tracing({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": rx.endpoint + "/v1/traces",
                           "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
                           "OTEL_SERVICE_NAME": "hub-pc2",
                           "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"},
                          schedule_delay_seconds=0.02)
        with t.span("x"):
            pass
        t.shutdown(5.0)
        (span,) = rx.wait_for(1, 5)
    assert span.resource["service.name"] == "hub-pc2"


def test_log_pushes_are_traced() -> None:
    with OTLPReceiver() as rx, LokiStandIn() as loki:
        t = setup_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": rx.endpoint}, schedule_delay_seconds=0.02)
        shipper = LogShipper(ShipperConfig(loki.url, batch_wait_seconds=0.01), tracer=t.tracer_or_none)
        for i in range(3):
            shipper.submit(LogEntry(time.time_ns(), INFO, "info", f"m{i}", StreamLabels(source="t")))
        shipper.start()
        assert shipper.wait_idle(5)
        shipper.stop(1.0)
        t.shutdown(5.0)
        (span,) = [s for s in rx.wait_for(1, 5) if s.name == LOG_PUSH]
    assert span.attributes["fleet.log.lines"] == 3
    assert span.attributes["fleet.log.outcome"] == "sent"
    assert span.attributes["http.response.status_code"] == 204


def test_shutdown_is_bounded_when_the_collector_is_gone() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = setup_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
                       "OTEL_EXPORTER_OTLP_TIMEOUT": "200"}, schedule_delay_seconds=0.02)
    for i in range(10):
        with t.span(f"s{i}"):
            pass
    t0 = time.monotonic()
    t.shutdown(0.5)
    t.shutdown(0.5)  # idempotent
    assert time.monotonic() - t0 < 1.5
