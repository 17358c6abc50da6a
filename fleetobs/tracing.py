"""OpenTelemetry traces for the hub's background work (sync rounds, probe cycles, log pushes).

Configured by the standard variables: spans are exported over OTLP/HTTP (protobuf)
when ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set
(and ``OTEL_SDK_DISABLED`` is not true, ``OTEL_TRACES_EXPORTER`` is not ``none``).
Otherwise :func:`setup_tracing` returns a disabled :class:`Tracing` whose spans are
one shared no-op object: no SDK objects, no thread, no allocation per span.

Deliberately no auto-instrumentation (ASGI/HTTP middleware): on the heartbeat path
it cut request throughput by 60-86% here. Trace the background work instead, with
:meth:`Tracing.span` or the named helpers below.

Where the hub calls these: the probing plugin wraps each cycle in
``tracing.probe_cycle(machine, agents)``, the sync plugin each round in
``tracing.sync_round(peer)``; the log shipper gets ``tracing.tracer_or_none`` and
makes one ``fleet.logs.push`` span per push request.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler

SYNC_ROUND = "fleet.sync.round"
PROBE_CYCLE = "fleet.probe.cycle"
LOG_PUSH = "fleet.logs.push"

AttributeValue = str | bool | int | float


class _NoopSpanContext(AbstractContextManager[trace.Span]):
    """Reusable and re-entrant: the disabled path allocates nothing per span."""

    def __enter__(self) -> trace.Span:
        return trace.INVALID_SPAN

    def __exit__(self, *_exc: object) -> None:
        return None


_NOOP = _NoopSpanContext()


@dataclass
class Tracing:
    """The hub's tracer; ``enabled`` False means every span is the no-op one."""

    tracer: trace.Tracer
    provider: TracerProvider | None = None
    endpoint: str | None = None
    _stopped: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    @property
    def tracer_or_none(self) -> trace.Tracer | None:
        """For code that skips span bookkeeping entirely when tracing is off."""
        return self.tracer if self.enabled else None

    def span(self, name: str, attributes: Mapping[str, AttributeValue] | None = None
             ) -> AbstractContextManager[trace.Span]:
        """A span around one unit of background work (records exceptions, sets status)."""
        if self.provider is None:
            return _NOOP
        return self.tracer.start_as_current_span(name, attributes=attributes,
                                                 kind=trace.SpanKind.INTERNAL)

    def probe_cycle(self, machine: str, agents: int) -> AbstractContextManager[trace.Span]:
        if self.provider is None:
            return _NOOP
        return self.span(PROBE_CYCLE, {"fleet.machine": machine, "fleet.probe.agents": agents})

    def sync_round(self, peer: str) -> AbstractContextManager[trace.Span]:
        if self.provider is None:
            return _NOOP
        return self.span(SYNC_ROUND, {"fleet.sync.peer": peer})

    def shutdown(self, deadline_seconds: float) -> None:
        """Flush and stop the exporter within ``deadline_seconds``; idempotent."""
        with self._lock:
            if self._stopped or self.provider is None:
                self._stopped = True
                return
            self._stopped = True
        provider = self.provider
        # provider.shutdown() waits on the exporter's own timeout; bound it from outside.
        done = threading.Thread(target=_flush_and_shutdown, args=(provider, deadline_seconds),
                                name="fleetobs-otel-shutdown", daemon=True)
        done.start()
        done.join(deadline_seconds)


def _flush_and_shutdown(provider: TracerProvider, deadline_seconds: float) -> None:
    provider.force_flush(int(deadline_seconds * 1000))
    provider.shutdown()


DISABLED = Tracing(trace.NoOpTracer())


class TracingConfigError(ValueError):
    pass


def setup_tracing(environ: Mapping[str, str], service_name: str = "fleetobs-hub", *,
                  resource_attributes: Mapping[str, AttributeValue] | None = None,
                  exporter: SpanExporter | None = None,
                  schedule_delay_seconds: float = 5.0) -> Tracing:
    """Tracing as the OTel environment variables in ``environ`` ask for.

    Raises :class:`TracingConfigError` (naming the variable) for settings it cannot
    honour, e.g. ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``: only OTLP/HTTP is shipped.
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return DISABLED
    exporters = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if exporters == "none":
        return DISABLED
    if exporters != "otlp":
        raise TracingConfigError(f"OTEL_TRACES_EXPORTER={exporters!r}: only 'otlp' or 'none'")
    endpoint = _traces_endpoint(environ)
    if endpoint is None and exporter is None:
        return DISABLED

    # Imported here: a hub without tracing never loads the SDK.
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    protocol = _var(environ, "PROTOCOL") or "http/protobuf"
    if protocol != "http/protobuf":
        raise TracingConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: fleetobs exports "
                                 "OTLP over HTTP only (http/protobuf)")
    if exporter is None:
        exporter = _otlp_http_exporter(environ, endpoint)
    attrs: dict[str, AttributeValue] = dict(_pairs(environ.get("OTEL_RESOURCE_ATTRIBUTES", "")))
    attrs.update(resource_attributes or {})
    attrs["service.name"] = environ.get("OTEL_SERVICE_NAME") or service_name
    # Resource(...), not Resource.create(): that one reads os.environ behind our back.
    provider = TracerProvider(resource=Resource(attrs), sampler=_sampler(environ))
    provider.add_span_processor(BatchSpanProcessor(
        exporter, schedule_delay_millis=schedule_delay_seconds * 1000))
    return Tracing(provider.get_tracer("fleetobs"), provider, endpoint)


def _var(environ: Mapping[str, str], suffix: str) -> str | None:
    """The traces-specific variable, else the general OTLP one (per the OTel spec)."""
    v = environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{suffix}") or environ.get(f"OTEL_EXPORTER_OTLP_{suffix}")
    return v.strip() if v and v.strip() else None


def _traces_endpoint(environ: Mapping[str, str]) -> str | None:
    specific = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if specific:
        return specific  # used as is
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return base.rstrip("/") + "/v1/traces" if base else None


def _pairs(text: str) -> Iterator[tuple[str, str]]:
    """``k=v,k2=v2`` with URL-encoded values (OTEL_*_HEADERS, OTEL_RESOURCE_ATTRIBUTES)."""
    for item in text.split(","):
        k, sep, v = item.partition("=")
        if sep and k.strip():
            yield k.strip(), urllib.parse.unquote(v.strip())


def _otlp_http_exporter(environ: Mapping[str, str], endpoint: str | None) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    timeout_ms = _var(environ, "TIMEOUT")
    try:
        timeout = float(timeout_ms) / 1000 if timeout_ms else 10.0  # the spec says milliseconds
    except ValueError:
        raise TracingConfigError(f"OTEL_EXPORTER_OTLP_TIMEOUT={timeout_ms!r}: not a number") from None
    compression = Compression.Gzip if _var(environ, "COMPRESSION") == "gzip" else Compression.NoCompression
    return OTLPSpanExporter(endpoint=endpoint, headers=dict(_pairs(_var(environ, "HEADERS") or "")),
                            timeout=timeout, compression=compression)


def _sampler(environ: Mapping[str, str]) -> Sampler:
    from opentelemetry.sdk.trace import sampling

    name = environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    arg = environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0")
    try:
        ratio = float(arg)
    except ValueError:
        raise TracingConfigError(f"OTEL_TRACES_SAMPLER_ARG={arg!r}: not a number") from None
    if not 0.0 <= ratio <= 1.0:
        raise TracingConfigError(f"OTEL_TRACES_SAMPLER_ARG={arg!r}: a ratio from 0 to 1")
    samplers: dict[str, Any] = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": sampling.TraceIdRatioBased(ratio),
        "parentbased_always_on": sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": sampling.ParentBased(sampling.TraceIdRatioBased(ratio)),
    }
    if name not in samplers:
        raise TracingConfigError(f"OTEL_TRACES_SAMPLER={name!r}: one of {', '.join(samplers)}")
    sampler: Sampler = samplers[name]
    return sampler
