"""A Loki stand-in for tests: a real HTTP server on 127.0.0.1 that speaks Loki's push API.

Written from Loki's documented contract (``POST /loki/api/v1/push``, "Push log
entries to Loki", and the ``limits_config`` reference), not from any client:

- body: JSON ``{"streams": [{"stream": {labels}, "values": [["<unix ns string>",
  "<line>", {structured metadata}?], ...]}]}``, ``Content-Type: application/json``,
  optionally ``Content-Encoding: gzip`` (or ``deflate``);
- 204 when every entry was stored;
- 400 when the payload cannot be parsed (nothing stored) or when some entries break
  a limit: too old (``reject_old_samples_max_age``, default 168 h), too new
  (``creation_grace_period``, 10 m), line too long (``max_line_size``, 256 KiB), bad
  or too many labels, structured metadata while it is disallowed, out of order
  (``unordered_writes: false``) or too far behind (unordered, > 1 h). The valid
  entries of that request ARE stored; the body lists what was refused;
- entries with the same stream, timestamp and line as a stored one are ignored
  (Loki's de-duplication), counted in :attr:`duplicates`;
- 401 without ``X-Scope-OrgID`` when multi-tenant; 413 when the body is too large.

Faults on demand: :meth:`script` queues canned replies (429 with Retry-After, 500,
503, 413, ...), :meth:`hang` holds requests without answering, :meth:`down` closes
the port (connection refused) until :meth:`up`. Protobuf (snappy) pushes get 415:
this stand-in only implements the JSON form.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PUSH_PATH = "/loki/api/v1/push"
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class Reply:
    status: int
    retry_after: str | None = None
    body: str = ""


@dataclass(frozen=True)
class Stored:
    labels: tuple[tuple[str, str], ...]
    ts_ns: int
    line: str
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(frozen=True)
class PushLog:
    """One request as the stand-in saw it."""

    status: int
    entries: int  # entries in the request (0 when unparsed)
    stored: int
    content_encoding: str | None
    tenant: str | None
    authorization: str | None
    body_bytes: int
    errors: tuple[str, ...] = ()
    at: float = 0.0  # time.monotonic() when it was answered


@dataclass
class LokiLimits:
    reject_old_samples_max_age_seconds: float = 168 * 3600.0
    creation_grace_period_seconds: float = 600.0
    max_line_size: int = 256 * 1024
    max_label_names_per_series: int = 15
    max_label_name_length: int = 1024
    max_label_value_length: int = 2048
    max_body_bytes: int = 4 * 1024 * 1024  # applies to the raw and the decompressed body
    allow_structured_metadata: bool = True
    unordered_writes: bool = True
    unordered_window_seconds: float = 3600.0  # max_chunk_age / 2
    multi_tenant: bool = False


@dataclass
class _Stream:
    newest: int = -1
    seen: set[tuple[int, str]] = field(default_factory=set)


class _PushError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class LokiStandIn:
    def __init__(self, limits: LokiLimits | None = None, *,
                 now_ns: Callable[[], int] = time.time_ns, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.limits = limits or LokiLimits()
        self.host = host  # 0.0.0.0 only in a container (fleetobs.testing.docker)
        self._now_ns = now_ns
        self._lock = threading.Condition()
        self._stored: list[Stored] = []
        self._streams: dict[tuple[tuple[str, str], ...], _Stream] = {}
        self._requests: list[PushLog] = []
        self._script: list[Reply] = []
        self.duplicates = 0
        #: Requests being held unanswered right now (see :meth:`hang`).
        self.held = 0
        self._hanging = False
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self.port = port

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> LokiStandIn:
        self.up()
        return self

    def __enter__(self) -> LokiStandIn:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        """Listen (again, on the same port after :meth:`down`); stop hanging."""
        self._hanging = False
        self._release.set()
        if self._server is not None:
            return
        server = _Server((self.host, self.port), _handler_for(self))
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"loki-stand-in:{self.port}", daemon=True)
        self._thread.start()

    def down(self) -> None:
        """Close the port and every open connection: clients get connection refused/reset."""
        server, self._server = self._server, None
        self._release.set()
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)

    def stop(self) -> None:
        self.down()

    def hang(self) -> None:
        """From now on, read requests and never answer (until :meth:`up` or :meth:`release`)."""
        self._release.clear()
        self._hanging = True

    def release(self) -> None:
        self._hanging = False
        self._release.set()

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies (nothing is stored), then validate."""
        with self._lock:
            self._script.extend(replies)

    # --- what was received -----------------------------------------------------------
    @property
    def stored(self) -> list[Stored]:
        with self._lock:
            return list(self._stored)

    @property
    def requests(self) -> list[PushLog]:
        with self._lock:
            return list(self._requests)

    def lines(self, **labels: str) -> list[str]:
        """Stored lines of streams whose labels include ``labels``, in arrival order."""
        want = set(labels.items())
        return [s.line for s in self.stored if want <= set(s.labels)]

    def wait_for(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` entries are stored."""
        end = time.monotonic() + timeout
        with self._lock:
            while len(self._stored) < count:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    # --- the push contract -----------------------------------------------------------
    def handle_push(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes]:
        enc = headers.get("content-encoding")
        tenant = headers.get("x-scope-orgid")
        auth = headers.get("authorization")

        def log(status: int, entries: int = 0, stored: int = 0, errors: tuple[str, ...] = ()) -> None:
            self._requests.append(PushLog(status, entries, stored, enc, tenant, auth, len(raw), errors,
                                          time.monotonic()))

        with self._lock:
            if self._script:
                reply = self._script.pop(0)
                log(reply.status)
                extra = {"Retry-After": reply.retry_after} if reply.retry_after is not None else {}
                return reply.status, extra, reply.body.encode()
        try:
            if self.limits.multi_tenant and not tenant:
                raise _PushError(401, "no org id")
            streams = self._parse(headers, raw)
        except _PushError as exc:
            with self._lock:
                log(exc.status, errors=(str(exc),))
            return exc.status, {}, (str(exc) + "\n").encode()
        with self._lock:
            total, stored, errors = self._store(streams)
            status = 400 if errors else 204
            log(status, total, stored, tuple(errors))
            self._lock.notify_all()
        if errors:
            body = "\n".join([*errors[:10], f"total ignored: {total - stored} out of {total}"])
            return 400, {}, (body + "\n").encode()
        return 204, {}, b""

    def _parse(self, headers: dict[str, str], raw: bytes) -> list[tuple[tuple[tuple[str, str], ...], list[Any]]]:
        lim = self.limits
        if len(raw) > lim.max_body_bytes:
            raise _PushError(413, f"request body too large: {len(raw)} > {lim.max_body_bytes} bytes")
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/x-protobuf":
            raise _PushError(415, "this Loki stand-in implements only the JSON push format")
        if ctype != "application/json":
            raise _PushError(415, f"unsupported content type {ctype!r}")
        enc = (headers.get("content-encoding") or "").strip().lower()
        try:
            if enc == "gzip":
                body = gzip.decompress(raw)
            elif enc == "deflate":
                body = zlib.decompress(raw)
            elif enc in ("", "identity"):
                body = raw
            else:
                raise _PushError(415, f"unsupported content encoding {enc!r}")
        except (OSError, EOFError, zlib.error) as exc:
            raise _PushError(400, f"cannot decompress {enc} body: {exc}") from None
        if len(body) > lim.max_body_bytes:
            raise _PushError(413, f"decompressed body too large: {len(body)} > {lim.max_body_bytes} bytes")
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise _PushError(400, f"loghttp.PushRequest: invalid JSON: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("streams"), list):
            raise _PushError(400, "loghttp.PushRequest: 'streams' must be an array")
        out = []
        for i, s in enumerate(doc["streams"]):
            if not isinstance(s, dict) or not isinstance(s.get("stream"), dict) \
                    or not isinstance(s.get("values"), list):
                raise _PushError(400, f"streams[{i}]: needs 'stream' (object) and 'values' (array)")
            labels = s["stream"]
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
                raise _PushError(400, f"streams[{i}].stream: label values must be strings")
            for j, v in enumerate(s["values"]):
                if not isinstance(v, list) or len(v) not in (2, 3) or not isinstance(v[0], str) \
                        or not isinstance(v[1], str) or not v[0].isdigit():
                    raise _PushError(400, f"streams[{i}].values[{j}]: want [\"<unix ns>\", \"<line>\"(, {{metadata}})]")
                if len(v) == 3 and (not isinstance(v[2], dict)
                                    or not all(isinstance(x, str) for x in v[2].values())):
                    raise _PushError(400, f"streams[{i}].values[{j}]: structured metadata must map strings to strings")
            out.append((tuple(sorted(labels.items())), s["values"]))
        return out

    def _store(self, streams: list[tuple[tuple[tuple[str, str], ...], list[Any]]]) -> tuple[int, int, list[str]]:
        lim = self.limits
        now = self._now_ns()
        oldest_ok = now - int(lim.reject_old_samples_max_age_seconds * 1e9)
        newest_ok = now + int(lim.creation_grace_period_seconds * 1e9)
        total = stored = 0
        errors: list[str] = []
        for labels, values in streams:
            total += len(values)
            shown = "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"
            problem = self._label_problem(labels, shown)
            if problem is None and not lim.allow_structured_metadata and any(len(v) == 3 for v in values):
                problem = (f"stream '{shown}' includes structured metadata, but this feature is "
                           "disallowed. Please see `limits_config.structured_metadata`")
            if problem is not None:
                errors.append(problem)
                continue
            st = self._streams.setdefault(labels, _Stream())
            for v in values:
                ts, line = int(v[0]), v[1]
                if ts < oldest_ok:
                    errors.append(f"entry for stream '{shown}' has timestamp too old: {ts}, "
                                  f"oldest acceptable timestamp is: {oldest_ok}")
                elif ts > newest_ok:
                    errors.append(f"entry for stream '{shown}' has timestamp too new: {ts}")
                elif len(line.encode()) > lim.max_line_size:
                    errors.append(f"Max entry size '{lim.max_line_size}' bytes exceeded for stream "
                                  f"'{shown}' while adding an entry with length '{len(line.encode())}' bytes")
                elif (ts, line) in st.seen:
                    self.duplicates += 1  # Loki ignores exact duplicates silently
                    stored += 1
                elif not lim.unordered_writes and ts < st.newest:
                    errors.append(f"entry with timestamp {ts} ignored, reason: 'entry out of order' "
                                  f"for stream: {shown}")
                elif lim.unordered_writes and ts < st.newest - int(lim.unordered_window_seconds * 1e9):
                    errors.append(f"entry with timestamp {ts} ignored, reason: 'entry too far behind' "
                                  f"for stream: {shown}")
                else:
                    st.seen.add((ts, line))
                    st.newest = max(st.newest, ts)
                    meta = tuple(sorted(v[2].items())) if len(v) == 3 else ()
                    self._stored.append(Stored(labels, ts, line, meta))
                    stored += 1
        return total, stored, errors

    def _label_problem(self, labels: tuple[tuple[str, str], ...], shown: str) -> str | None:
        lim = self.limits
        if not labels:
            return "error at least one label pair is required per stream"
        if len(labels) > lim.max_label_names_per_series:
            return (f"entry for stream '{shown}' has {len(labels)} label names; "
                    f"limit {lim.max_label_names_per_series}")
        for k, v in labels:
            if not _LABEL_NAME.match(k) or len(k) > lim.max_label_name_length:
                return f"invalid label name {k!r} in stream '{shown}'"
            if len(v) > lim.max_label_value_length:
                return f"label value too long for {k!r} in stream '{shown}'"
        return None

    # --- used by the handler ---------------------------------------------------------
    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def _hang_if_asked(self) -> bool:
        """True when the request must go unanswered."""
        if not self._hanging:
            return False
        with self._lock:
            self.held += 1
            self._lock.notify_all()
        self._release.wait()
        with self._lock:
            self.held -= 1
        return True

    def wait_held(self, count: int, timeout: float) -> bool:
        """Block until ``count`` requests are being held by :meth:`hang`."""
        end = time.monotonic() + timeout
        with self._lock:
            while self.held < count:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _handler_for(loki: LokiStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Loki's Go server does
        disable_nagle_algorithm = True  # headers and body go out in separate writes

        def setup(self) -> None:
            super().setup()
            loki._track(self.connection, True)

        def finish(self) -> None:
            loki._track(self.connection, False)
            super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            if status != 204:
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 204:
                self.wfile.write(body)

        def do_POST(self) -> None:
            if self.path.split("?")[0] != PUSH_PATH:
                self._answer(404, {}, b"404 page not found\n")
                return
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if loki._hang_if_asked():
                self.close_connection = True
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, body = loki.handle_push(headers, raw)
            self._answer(status, extra, body)

        def do_GET(self) -> None:
            if self.path == "/ready":
                self._answer(200, {}, b"ready\n")
            else:
                self._answer(404, {}, b"404 page not found\n")

    return Handler
