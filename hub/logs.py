"""Log intake plugin: ``POST /v1/logs`` ships agents' log lines to Loki.

Agents (or their group's sidecar) send a JSON array of
``{"agent", "level", "message", "timestamp"?, "fields"?, "machine"?}``. Each entry is
validated (the agent must be in the topology; timestamp RFC 3339 or epoch seconds,
default the time of receipt, inside the window Loki accepts), labelled with the
agent's machine and group from the topology, and handed to the log shipper, which
never blocks the request. The answer says how many lines were queued and how many
the full buffer refused. Junk gets a precise 4xx: 400 not JSON, 401 token, 413 too
large, 422 what is wrong where. The hub's own loguru logs ship through the same
shipper (source ``hub``). Without FLEET_LOKI_URL nothing is shipped or buffered:
the route answers 404 saying so, rather than accepting lines that would vanish.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from prometheus_client.registry import Collector

from fleetobs.logs.model import LEVEL_NAMES, SEVERITIES, LogEntry, StreamLabels
from fleetobs.logs.shipper import LogShipper, ShipperConfig
from fleetobs.logs.sinks import SKIP, add_loguru_sink
from fleetobs.sanitize import clean_text
from fleetobs.topology.model import NAME_RE, Agent
from hub.api.auth import token_ok
from hub.plugins import HubContext, HubPlugin

if TYPE_CHECKING:
    import loguru

HUB_AGENT = "ObservabilityHub"
_FIELD_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_ENTRY_KEYS = frozenset({"agent", "machine", "level", "message", "timestamp", "fields"})


@dataclass(frozen=True)
class IntakeLimits:
    max_body_bytes: int = 1024 * 1024
    max_entries: int = 5000
    max_message_chars: int = 64 * 1024
    max_fields: int = 32
    max_field_chars: int = 4096
    future_tolerance_seconds: float = 600.0  # Loki's creation_grace_period


_ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["agent", "level", "message"],
    "properties": {
        "agent": {"type": "string", "description": "an agent of the topology"},
        "machine": {"type": "string", "description": "its machine, when the name is on several"},
        "level": {"type": "string", "enum": sorted(LEVEL_NAMES)},
        "message": {"type": "string"},
        "timestamp": {"description": "RFC 3339 string or epoch seconds (default: now)",
                      "anyOf": [{"type": "string"}, {"type": "number"}]},
        "fields": {"type": "object", "description": "key -> string, number, boolean or null"},
    },
}
_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "array", "items": _ENTRY_SCHEMA}}}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "the body is not JSON"},
    401: {"description": "missing or wrong bearer token (FLEET_TOKEN)"},
    413: {"description": "the body is over the size limit, or has too many entries"},
    415: {"description": "Content-Type is not application/json"},
    422: {"description": "entries that are not valid log lines, each named"},
}


class _InvalidError(Exception):
    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where}: {what}")


class LogsPlugin:
    name = "logs"

    def __init__(self, ctx: HubContext, shipper: LogShipper, *,
                 limits: IntakeLimits | None = None,
                 wall_clock: Callable[[], float] = time.time,
                 logger: loguru.Logger | None = None) -> None:
        self._ctx = ctx
        self.shipper = shipper
        self.limits = limits or IntakeLimits(max_body_bytes=ctx.settings.max_body_bytes)
        self._wall = wall_clock
        self._logger = logger
        self._sink_id: int | None = None
        self._streams: dict[tuple[str, str], StreamLabels] = {}
        self._stopped = False

    # --- HubPlugin ---------------------------------------------------------------------
    def router(self) -> APIRouter | None:
        router = APIRouter(tags=["logs"])

        @router.post("/v1/logs", status_code=202, responses=_RESPONSES, openapi_extra=_BODY,
                     summary="Ship agents' log lines to Loki with their machine and group")
        async def post_logs(request: Request) -> JSONResponse:
            self._authorize(request)
            raw = await self._read_body(request)
            entries = self.parse(raw)
            kept = sum(1 for e in entries if self.shipper.submit(e))
            return JSONResponse({"accepted": kept, "dropped": len(entries) - kept}, status_code=202)

        return router

    def collectors(self) -> Sequence[Collector]:
        return [self.shipper.collector()]

    async def start(self) -> None:
        if self._stopped:
            return
        self.shipper.start()
        if self._logger is not None and self._sink_id is None:
            stream = self._stream_for_hub()
            self._sink_id = add_loguru_sink(self._logger, self.shipper.submit, stream,
                                            level=self._ctx.settings.log_level.upper())

    async def stop(self, deadline_seconds: float) -> None:
        """Drain to Loki (or the spool) within the deadline; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._logger is not None and self._sink_id is not None:
            self._logger.remove(self._sink_id)
            self._sink_id = None
        await asyncio.to_thread(self.shipper.stop, deadline_seconds)

    # --- intake ------------------------------------------------------------------------
    def _authorize(self, request: Request) -> None:
        # The app guards plugin routers too; checking here keeps the rule when mounted alone.
        expected = self._ctx.settings.token
        if expected and not token_ok(request.headers.get("authorization"), expected):
            raise HTTPException(401, "missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    async def _read_body(self, request: Request) -> bytes:
        limit = self.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, f"body of {declared} bytes; the limit is {limit}")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise HTTPException(413, f"body over the limit of {limit} bytes")
        return bytes(body)

    def parse(self, raw: bytes) -> list[LogEntry]:
        """Raw body -> entries, or an HTTPException saying what is wrong and where."""
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPException(400, f"body is not JSON: {exc}") from None
        except RecursionError:
            raise HTTPException(400, "body is not JSON this hub reads: nested too deeply") from None
        if not isinstance(doc, list):
            raise HTTPException(422, "body must be a JSON array of log entries")
        if len(doc) > self.limits.max_entries:
            raise HTTPException(413, f"{len(doc)} entries; at most {self.limits.max_entries} "
                                     "per request")
        received_ns = int(self._wall() * 1e9)
        out: list[LogEntry] = []
        errors: list[str] = []
        for i, item in enumerate(doc):
            try:
                out.append(self._entry(f"[{i}]", item, received_ns))
            except _InvalidError as exc:
                errors.append(str(exc))
                if len(errors) >= 20:
                    break
        if errors:
            raise HTTPException(422, errors)
        return out

    def _entry(self, where: str, item: Any, received_ns: int) -> LogEntry:
        lim = self.limits
        if not isinstance(item, dict):
            raise _InvalidError(where, "each entry must be an object")
        unknown = set(item) - _ENTRY_KEYS
        if unknown:
            raise _InvalidError(where, f"unknown keys {sorted(unknown)} (allowed: {sorted(_ENTRY_KEYS)})")
        agent = self._agent(where, item.get("agent"), item.get("machine"))
        level = item.get("level")
        if not isinstance(level, str) or level.strip().lower() not in LEVEL_NAMES:
            raise _InvalidError(f"{where}.level", f"{level!r} is not a level (one of {', '.join(LEVEL_NAMES)})")
        severity = LEVEL_NAMES[level.strip().lower()]
        message = item.get("message")
        if not isinstance(message, str):
            raise _InvalidError(f"{where}.message", "required, a string")
        if len(message) > lim.max_message_chars:
            raise _InvalidError(f"{where}.message", f"{len(message)} characters; at most {lim.max_message_chars}")
        message = clean_text(message)  # json.loads lets lone surrogates and NUL through
        ts_ns = self._timestamp(f"{where}.timestamp", item.get("timestamp"), received_ns)
        fields = self._fields(f"{where}.fields", item.get("fields"))
        stream = self._stream_for(agent)
        return LogEntry(ts_ns, severity, SEVERITIES[severity], message, stream, fields)

    def _agent(self, where: str, name: Any, machine: Any) -> Agent:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise _InvalidError(f"{where}.agent", "required, an agent name from the topology")
        topo = self._ctx.topology
        if machine is not None:
            if not isinstance(machine, str) or machine not in {m.name for m in topo.machines}:
                raise _InvalidError(f"{where}.machine", f"{machine!r} is not a machine of the topology")
            found = next((a for a in topo.agents_on(machine) if a.name == name), None)
        else:
            found = topo.find_agent(name, prefer_machine=self._ctx.machine)
        if found is None:
            raise _InvalidError(f"{where}.agent", f"{name!r} is not an agent of the topology"
                           + (f" on {machine}" if machine else ""))
        return found

    def _timestamp(self, where: str, value: Any, received_ns: int) -> int:
        if value is None:
            return received_ns
        if isinstance(value, bool):
            raise _InvalidError(where, "RFC 3339 string or epoch seconds, not a boolean")
        if isinstance(value, int | float):
            try:
                finite = math.isfinite(value) and abs(value) < 1e12
            except OverflowError:  # an integer beyond any float
                finite = False
            if not finite:
                raise _InvalidError(where, "must be a finite number of seconds since 1970")
            ts_ns = int(value * 1e9)
        elif isinstance(value, str):
            try:
                dt = datetime.fromisoformat(value)
            except ValueError:
                raise _InvalidError(where, f"{value!r} is not RFC 3339 (e.g. 2026-01-31T12:00:00.5Z)") from None
            if dt.tzinfo is None:
                raise _InvalidError(where, f"{value!r} has no time zone offset (RFC 3339 needs Z or +hh:mm)")
            ts_ns = int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000
        else:
            raise _InvalidError(where, "RFC 3339 string or epoch seconds")
        max_age_ns = int(self.shipper.config.max_age_seconds * 1e9)
        if ts_ns < received_ns - max_age_ns:
            raise _InvalidError(where, f"older than Loki accepts ({self.shipper.config.max_age_seconds / 3600:.0f} h)")
        if ts_ns > received_ns + int(self.limits.future_tolerance_seconds * 1e9):
            raise _InvalidError(where, f"more than {self.limits.future_tolerance_seconds:.0f} s in the future")
        return ts_ns

    def _fields(self, where: str, value: Any) -> dict[str, Any] | None:
        lim = self.limits
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _InvalidError(where, "an object of key -> string/number/boolean/null")
        if len(value) > lim.max_fields:
            raise _InvalidError(where, f"{len(value)} fields; at most {lim.max_fields}")
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not _FIELD_KEY.fullmatch(k):
                raise _InvalidError(f"{where}.{k}", "keys are identifiers of at most 64 characters")
            if isinstance(v, str):
                if len(v) > lim.max_field_chars:
                    raise _InvalidError(f"{where}.{k}", f"{len(v)} characters; at most {lim.max_field_chars}")
                out[k] = clean_text(v)
                continue
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2**63:
                raise _InvalidError(f"{where}.{k}", "integers must fit in 64 bits")
            if not (v is None or isinstance(v, bool | int) or (isinstance(v, float) and math.isfinite(v))):
                raise _InvalidError(f"{where}.{k}", "values are strings, numbers, booleans or null")
            out[k] = v
        return out

    def _stream_for(self, agent: Agent) -> StreamLabels:
        s = self._streams.get(agent.key)
        if s is None:  # bounded: one per topology agent
            s = self._streams[agent.key] = StreamLabels(
                source="agent", machine=agent.machine, group=agent.group, agent=agent.name)
        return s

    def _stream_for_hub(self) -> StreamLabels:
        me = next((a for a in self._ctx.topology.agents_on(self._ctx.machine) if a.name == HUB_AGENT), None)
        return StreamLabels(source="hub", machine=self._ctx.machine,
                            group=me.group if me else None, agent=HUB_AGENT)


class DisabledLogsPlugin:
    """No Loki configured: ``POST /v1/logs`` explains why it takes nothing."""

    name = "logs"
    DETAIL = "log shipping is disabled on this hub: FLEET_LOKI_URL is not set, so lines would be lost"

    def router(self) -> APIRouter | None:
        router = APIRouter(tags=["logs"])

        @router.post("/v1/logs", status_code=202, openapi_extra=_BODY,
                     responses={404: {"description": self.DETAIL}, 415: _RESPONSES[415]})
        async def post_logs() -> JSONResponse:
            return JSONResponse({"detail": self.DETAIL}, status_code=404)

        return router

    def collectors(self) -> Sequence[Collector]:
        return ()

    async def start(self) -> None:
        return None

    async def stop(self, deadline_seconds: float) -> None:
        return None


def logs_plugin(ctx: HubContext) -> HubPlugin | None:
    """The plugin; without FLEET_LOKI_URL a stand-in that refuses lines, buffering nothing."""
    settings = ctx.settings
    # One spool per machine: two hubs may share a data dir (tests, one-box setups).
    config = ShipperConfig.from_settings(settings, spool_name=f"hub-{ctx.machine}")
    if config is None:
        return DisabledLogsPlugin()
    from loguru import logger

    return LogsPlugin(ctx, LogShipper(config, tracer=ctx.tracing.tracer_or_none,
                                      notice=lambda text: logger.bind(**{SKIP: True}).warning(text)),
                      logger=logger)
