"""``POST /v1/heartbeats``: one heartbeat or a batch.

The body is parsed by pydantic-core straight from bytes (no FastAPI body model) so
a 1,000-heartbeat batch costs microseconds per item; the OpenAPI schema still
documents it (``openapi_extra``). A big batch is validated :data:`CHUNK` items at a
time with a turn of the event loop in between (validating 10,000 at once held the loop
for ~100 ms, and ``/health`` with it): the standard library's decoder finds where each
item ends, pydantic-core validates each chunk's own JSON text, so every item gets
exactly the JSON semantics a small batch gets. Errors are 422 with FastAPI's ``detail`` list plus
a one-line ``message`` naming the first bad field, e.g. ``body[3].agent: ...``.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field, TypeAdapter, ValidationError

from hub.api.models import MAX_BATCH, Heartbeat, HeartbeatResult, Problem
from hub.observation import Observation, Source, Status
from hub.registry import Kind, Outcome
from hub.service import Hub

router = APIRouter(tags=["heartbeats"])

_ONE = TypeAdapter(Heartbeat)
_MANY: TypeAdapter[list[Heartbeat]] = TypeAdapter(Annotated[list[Heartbeat], Field(min_length=1, max_length=MAX_BATCH)])
_CHUNK_OF: TypeAdapter[list[Heartbeat]] = TypeAdapter(list[Heartbeat])
_STATUS = {s.value: s for s in Status}
_SOURCE = {"agent": Source.HEARTBEAT, "sidecar": Source.SIDECAR}
#: Heartbeats validated, then recorded, between two yields to the event loop (a few ms each; a
#: batch over this also yields once after its validation).
CHUNK = 250
#: Bodies up to this size are validated in one go (a few hundred heartbeats: < 5 ms).
INCREMENTAL_FROM_BYTES = 64 * 1024
_SPACE = re.compile(r"[ \t\n\r]*")


def _skip(text: str, pos: int) -> int:
    """The first position at or after ``pos`` that is not JSON whitespace."""
    return _SPACE.match(text, pos).end()  # type: ignore[union-attr]  # the pattern matches ""


class _NotPlainJsonError(Exception):
    """What the chunked path leaves to pydantic-core's own answer (and its error)."""


def _no_constants(name: str) -> Any:
    raise _NotPlainJsonError(name)  # NaN, Infinity: pydantic-core decides, as for small bodies


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


class _Items:
    """Finds where each top-level item of a JSON array ends, a few at a time, without
    keeping the values (the standard library's C decoder walks them)."""

    def __init__(self, text: str) -> None:
        self.text = text
        pos = _skip(text, 0)
        if text[pos:pos + 1] != "[":
            raise _NotPlainJsonError("not an array")
        self.pos = _skip(text, pos + 1)
        if text[self.pos:self.pos + 1] == "]":
            raise _NotPlainJsonError("empty")
        self.count = 0
        self.done = False

    def next(self, n: int) -> list[tuple[int, int]]:
        """The next ``n`` items' (start, end), fewer at the end of the array."""
        text = self.text
        spans: list[tuple[int, int]] = []
        while not self.done and len(spans) < n:
            try:
                _, end = _DECODER.raw_decode(text, self.pos)
            except ValueError as exc:
                raise _NotPlainJsonError(str(exc)) from None
            spans.append((self.pos, end))
            self.count += 1
            if self.count > MAX_BATCH:
                raise _NotPlainJsonError("too long")
            pos = _skip(text, end)
            sep = text[pos:pos + 1]
            if sep == "]":
                if _skip(text, pos + 1) != len(text):
                    raise _NotPlainJsonError("trailing data")
                self.done = True
            elif sep == ",":
                self.pos = _skip(text, pos + 1)
            else:
                raise _NotPlainJsonError("no comma")
        return spans


class _ChunkInvalidError(Exception):
    def __init__(self, exc: ValidationError, offset: int) -> None:
        self.exc = exc
        self.offset = offset


async def _validate_in_chunks(body: bytes) -> list[Heartbeat]:
    """A big batch, CHUNK items at a time, yielding between chunks; raises
    :class:`_NotPlainJsonError` for anything the one-go path should answer instead."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _NotPlainJsonError("not UTF-8") from exc
    items = _Items(text)
    beats: list[Heartbeat] = []
    while not items.done:
        await asyncio.sleep(0)
        start = items.count
        chunk = "[" + ",".join(text[a:b] for a, b in items.next(CHUNK)) + "]"
        try:
            beats += _CHUNK_OF.validate_json(chunk)
        except ValidationError as exc:
            raise _ChunkInvalidError(exc, start) from None
    return beats

_BODY_SCHEMA: dict[str, Any] = {
    "oneOf": [
        Heartbeat.model_json_schema(),
        {"type": "array", "items": Heartbeat.model_json_schema(), "minItems": 1,
         "maxItems": MAX_BATCH},
    ]
}


def _where(loc: tuple[int | str, ...]) -> str:
    out = "body"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _invalid(exc: ValidationError, offset: int = 0) -> Response:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    if offset:  # errors of a chunk: item indices of the whole batch
        errors = [{**e, "loc": (e["loc"][0] + offset, *e["loc"][1:])} if e["loc"] and isinstance(e["loc"][0], int)
                  else e for e in errors]
    detail = [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in errors]
    first = errors[0]
    message = f"{_where(tuple(first['loc']))}: {first['msg']}"
    return Response(json.dumps({"detail": detail, "message": message}), status_code=422,
                    media_type="application/json")


@router.post(
    "/v1/heartbeats",
    summary="Record one heartbeat or a batch of them",
    response_model=HeartbeatResult,
    responses={401: {"model": Problem}, 413: {"model": Problem}, 415: {"model": Problem},
               422: {"model": Problem}},
    openapi_extra={"requestBody": {"required": True,
                                   "content": {"application/json": {"schema": _BODY_SCHEMA}}}},
)
async def post_heartbeats(request: Request) -> Response:
    # The hot path: the hub straight from app state (one dependency less to solve).
    hub: Hub = request.app.state.hub
    body = await request.body()
    try:
        is_batch = body.lstrip()[:1] == b"["
        beats: list[Heartbeat] | None = None
        if is_batch and len(body) > INCREMENTAL_FROM_BYTES:
            try:
                beats = await _validate_in_chunks(body)
            except _NotPlainJsonError:
                beats = None  # pydantic-core's answer below, exactly as for a small body
        if beats is None:
            beats = _MANY.validate_json(body) if is_batch else [_ONE.validate_json(body)]
    except ValidationError as exc:
        hub.counters.rejected["invalid"] += 1
        return _invalid(exc)
    except _ChunkInvalidError as bad:
        hub.counters.rejected["invalid"] += 1
        return _invalid(bad.exc, bad.offset)
    machine = hub.machine
    accepted: list[str] = []
    unknown: list[str] = []
    foreign: list[str] = []
    rejected: list[dict[str, object]] = []
    for start in range(0, len(beats), CHUNK):
        if start or len(beats) > CHUNK:
            # A 10,000-item batch is 20 chunks: let /health, scrapes and other beats in
            # between instead of holding the loop for the whole batch.
            await asyncio.sleep(0)
        chunk = beats[start:start + CHUNK]
        results = hub.observe_many([
            Observation(agent=hb.agent, machine=machine, status=_STATUS[hb.status],
                        source=_SOURCE[hb.source], latency_seconds=hb.latency_seconds,
                        interval_seconds=hb.interval_seconds,
                        reason=hb.reason, version=hb.version, pid=hb.pid, endpoint=hb.endpoint,
                        container=hb.container, details=hb.details)
            for hb in chunk])
        for i, (hb, (outcome, rec)) in enumerate(zip(chunk, results, strict=True), start):
            name = hb.agent
            if outcome is not Outcome.ACCEPTED or rec is None:
                rejected.append({"index": i, "agent": name, "reason": str(outcome)})
                continue
            accepted.append(name)
            if rec.kind is Kind.UNKNOWN:
                unknown.append(name)
            elif rec.kind is Kind.FOREIGN:
                foreign.append(name)
    result = {"accepted": accepted, "unknown": unknown, "foreign": foreign, "rejected": rejected}
    return Response(json.dumps(result, separators=(",", ":")), media_type="application/json")
