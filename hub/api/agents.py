"""``GET /v1/agents`` and ``GET /v1/agents/{name}``: what the hub thinks of each agent."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from fleetobs.topology.model import NAME_PATTERN
from hub.api.deps import get_hub
from hub.api.models import AgentList, AgentView, Problem
from hub.api.responses import SafeJSONResponse as JSONResponse
from hub.liveness import State
from hub.registry import Record
from hub.service import Hub

router = APIRouter(tags=["agents"])

NameQuery = Annotated[str | None, Query(pattern=NAME_PATTERN)]


def view(rec: Record, now: float) -> dict[str, Any]:
    t = rec.timing
    seen = t.last_seen is not None
    return {
        "name": rec.name, "machine": rec.machine, "group": rec.group, "kind": str(rec.kind),
        "expected_machine": rec.expected_machine, "state": str(t.state),
        "last_status": str(t.status) if seen else None, "reason": rec.reason,
        "source": str(rec.source) if rec.source is not None else None,
        "required": rec.required, "probe": str(rec.agent.probe) if rec.agent else None,
        "interval_seconds": t.interval,
        "age_seconds": round(max(now - t.last_seen, 0.0), 3) if t.last_seen is not None else None,
        "last_seen": rec.last_seen_wall, "state_since": rec.state_since_wall,
        "endpoint": rec.endpoint, "version": rec.version, "pid": rec.pid,
        "container": rec.container, "details": dict(rec.details),
    }


@router.get("/v1/agents", response_model=AgentList, responses={401: {"model": Problem}},
            summary="This machine's expected agents plus unknown agents that sent heartbeats, "
                    "then other machines' agents learned by sync")
async def list_agents(hub: Annotated[Hub, Depends(get_hub)], machine: NameQuery = None,
                      group: NameQuery = None, state: State | None = None) -> JSONResponse:
    now = hub.now()
    agents = [
        view(rec, now) for rec in hub.registry
        if (machine is None or rec.machine == machine)
        and (group is None or rec.group == group)
        and (state is None or rec.timing.state is state)
    ]
    if hub.peer_agents is not None:  # other machines' agents, as their hubs judged them (sync)
        agents += [
            a for a in hub.peer_agents()
            if (machine is None or a["machine"] == machine)
            and (group is None or a["group"] == group)
            and (state is None or a["state"] == state)
        ]
    return JSONResponse({"machine": hub.machine, "agents": agents})


@router.get("/v1/agents/{name}", response_model=AgentView,
            responses={401: {"model": Problem}, 404: {"model": Problem}},
            summary="One agent: this machine's, else another machine's last known record "
                    "(its owner and age) as sync holds it")
async def get_agent(hub: Annotated[Hub, Depends(get_hub)],
                    name: Annotated[str, Path(pattern=NAME_PATTERN)],
                    machine: NameQuery = None) -> JSONResponse:
    rec = hub.registry.get(name)
    if rec is not None and machine in (None, hub.machine):
        return JSONResponse(view(rec, hub.now()))
    # Another machine's agent (ObservabilityHub runs on each: ?machine= picks one).
    for row in hub.peer_agents() if hub.peer_agents is not None else ():
        if row["name"] == name and machine in (None, row["machine"]):
            return JSONResponse(row)
    where = f" on {machine}" if machine else ""
    elsewhere = sorted(a.machine for a in hub.topology.agents
                       if a.name == name and machine in (None, a.machine))
    hint = (f"; the topology places it on {', '.join(elsewhere)}, whose hub this one has no "
            f"record from (sync is off)" if elsewhere else "")
    raise HTTPException(status_code=404, detail=f"no agent {name!r}{where} known to the hub of "
                                                f"{hub.machine}{hint}")
