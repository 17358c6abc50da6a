"""``POST /v1/heartbeats``: one heartbeat or a batch.

The body is parsed by pydantic-core straight from bytes (no FastAPI body model) so
a 1,000-heartbeat batch costs microseconds per item; the OpenAPI schema still
documents it (``openapi_extra``). Errors are 422 with FastAPI's ``detail`` list plus
a one-line ``message`` naming the first bad field, e.g. ``body[3].agent: ...``.
"""

from __future__ import annotations

import asyncio
import json
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
_STATUS = {s.value: s for s in Status}
_SOURCE = {"agent": Source.HEARTBEAT, "sidecar": Source.SIDECAR}
#: Heartbeats recorded between two yields to the event loop (~2-3 ms of work; a
#: batch over this also yields once after its validation).
CHUNK = 500

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


def _invalid(exc: ValidationError) -> Response:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
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
        beats = _MANY.validate_json(body) if is_batch else [_ONE.validate_json(body)]
    except ValidationError as exc:
        hub.counters.rejected["invalid"] += 1
        return _invalid(exc)
    machine = hub.machine
    accepted: list[str] = []
    unknown: list[str] = []
    foreign: list[str] = []
    rejected: list[dict[str, object]] = []
    results: list[tuple[Outcome, Any]] = []
    for start in range(0, len(beats), CHUNK):
        if start or len(beats) > CHUNK:
            # A 10,000-item batch is 20 chunks: let /health, scrapes and other beats in
            # between instead of holding the loop for the whole batch.
            await asyncio.sleep(0)
        results += hub.observe_many([
            Observation(agent=hb.agent, machine=machine, status=_STATUS[hb.status],
                        source=_SOURCE[hb.source], latency_seconds=hb.latency_seconds,
                        interval_seconds=hb.interval_seconds,
                        reason=hb.reason, version=hb.version, pid=hb.pid, endpoint=hb.endpoint,
                        container=hb.container, details=hb.details)
            for hb in beats[start:start + CHUNK]])
    for i, (outcome, rec) in enumerate(results):
        name = beats[i].agent
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
