"""An in-process OTLP/HTTP trace receiver for tests (a real server on 127.0.0.1).

Accepts ``POST /v1/traces`` with an ``ExportTraceServiceRequest`` in protobuf
(``Content-Type: application/x-protobuf``, optionally gzip), decoded with the
official opentelemetry-proto messages, and answers 200 with an empty
``ExportTraceServiceResponse`` as the OTLP/HTTP spec says. The JSON encoding gets
415 (not implemented here); undecodable bodies get 400.
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    kind: int
    status_code: int  # 0 unset, 1 ok, 2 error
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    start_ns: int
    end_ns: int
    events: tuple[str, ...] = ()


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return _attrs(v.kvlist_value.values)
    return getattr(v, which)


def _attrs(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kv: KeyValue
    for kv in kvs:
        out[kv.key] = _value(kv.value)
    return out


class OTLPReceiver:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._spans: list[ReceivedSpan] = []
        self.requests = 0
        #: Each accepted request's headers (lower-case names), in arrival order.
        self.headers: list[dict[str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> OTLPReceiver:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def endpoint(self) -> str:
        """The base URL (what OTEL_EXPORTER_OTLP_ENDPOINT takes)."""
        assert self._server is not None, "use the receiver as a context manager"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def wait_for(self, count: int, timeout: float) -> list[ReceivedSpan]:
        end = time.monotonic() + timeout
        with self._lock:
            while len(self._spans) < count and (left := end - time.monotonic()) > 0:
                self._lock.wait(left)
            return list(self._spans)

    def accept(self, body: bytes, headers: dict[str, str] | None = None) -> None:
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        got: list[ReceivedSpan] = []
        for rs in req.resource_spans:
            resource = _attrs(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    got.append(ReceivedSpan(
                        s.name, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(),
                        int(s.kind), int(s.status.code), _attrs(s.attributes), resource,
                        ss.scope.name, s.start_time_unix_nano, s.end_time_unix_nano,
                        tuple(e.name for e in s.events)))
        with self._lock:
            self.requests += 1
            self.headers.append(headers or {})
            self._spans.extend(got)
            self._lock.notify_all()


def _handler_for(rx: OTLPReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != "/v1/traces":
                self._answer(404, "text/plain", b"only /v1/traces here\n")
                return
            if self.headers.get("Content-Type", "").split(";")[0] != "application/x-protobuf":
                self._answer(415, "text/plain", b"protobuf only\n")
                return
            try:
                if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
                    raw = gzip.decompress(raw)
                rx.accept(raw, {k.lower(): v for k, v in self.headers.items()})
            except (DecodeError, OSError, EOFError) as exc:
                self._answer(400, "text/plain", f"bad request: {exc}\n".encode())
                return
            self._answer(200, "application/x-protobuf",
                         ExportTraceServiceResponse().SerializeToString())

    return Handler
