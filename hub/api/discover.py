"""``GET /v1/discover/{name}`` and ``GET /v1/sd/prometheus`` (Prometheus http_sd)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from fleetobs.topology.model import NAME_PATTERN
from hub.api.deps import get_hub
from hub.api.models import LocationView, Problem, SDTarget
from hub.discovery import locate, not_http, prometheus_targets
from hub.service import Hub

router = APIRouter(tags=["discovery"])


class SDLeftOut(BaseModel):
    agent: str
    machine: str
    group: str
    port: int = Field(description="the port a scrape would have used (health_check_port + 1)")
    reason: str


class SDExcluded(BaseModel):
    count: int
    excluded: list[SDLeftOut]


@router.get("/v1/discover/{name}", response_model=LocationView,
            responses={401: {"model": Problem}, 404: {"model": Problem}},
            summary="Where to reach an agent (this machine's agent first, then the only one)")
async def discover(hub: Annotated[Hub, Depends(get_hub)],
                   name: Annotated[str, Path(pattern=NAME_PATTERN)],
                   machine: Annotated[str | None, Query(pattern=NAME_PATTERN,
                                                        description="the agent's machine")] = None,
                   ) -> JSONResponse:
    topo = hub.topology
    if machine is not None:
        agent = topo.agent_by_key.get((machine, name))
    else:
        agent = topo.find_agent(name, prefer_machine=hub.machine)
    if agent is None:
        where = f" on {machine}" if machine else ""
        raise HTTPException(status_code=404, detail=f"the topology has no agent {name!r}{where}")
    loc = locate(agent, topo, hub.machine, hub.settings.discovery_mode)
    return JSONResponse({
        "agent": loc.agent, "machine": loc.machine, "group": loc.group, "mode": str(loc.mode),
        "host": loc.host, "port": loc.port, "health_check_port": loc.health_check_port,
        "metrics_port": loc.metrics_port, "zmq": loc.zmq, "health": loc.health,
        "metrics": loc.metrics,
    })


MachineQuery = Annotated[str | None, Query(pattern=NAME_PATTERN,
                                           description="only agents of this machine (default: all)")]


@router.get("/v1/sd/prometheus", response_model=list[SDTarget],
            responses={401: {"model": Problem}},
            summary="Prometheus HTTP service discovery: every /metrics endpoint that can be HTTP "
                    "(header X-Fleet-SD-Excluded: how many were left out, see /v1/sd/prometheus/excluded)")
async def sd_prometheus(hub: Annotated[Hub, Depends(get_hub)], machine: MachineQuery = None,
                        ) -> JSONResponse:
    excluded = len(not_http(hub.topology, machine))
    return JSONResponse(prometheus_targets(hub.topology, hub.machine,
                                           hub.settings.discovery_mode, machine),
                        headers={"X-Fleet-SD-Excluded": str(excluded)})


@router.get("/v1/sd/prometheus/excluded", response_model=SDExcluded,
            responses={401: {"model": Problem}},
            summary="Agents left out of Prometheus discovery, each with why")
async def sd_excluded(hub: Annotated[Hub, Depends(get_hub)], machine: MachineQuery = None,
                      ) -> JSONResponse:
    excluded = not_http(hub.topology, machine)
    return JSONResponse({"count": len(excluded), "excluded": excluded})
