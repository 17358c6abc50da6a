"""``prometheus.yml`` of one machine.

What it scrapes: the local hub, the peer hub(s) (the cross-machine view), the local GPU
exporter, the local agents' own ``/metrics`` through the hub's HTTP SD, Prometheus and the
local Alertmanager. Alerts go to every machine's Alertmanager (a cluster that sends each
notification once).

Why the relabelling: both machines' Prometheus must hold *identical* series for a hub, so
that the two copies of an alert have one label set and Alertmanager deduplicates them.
So every fleet target's ``instance`` is canonical (``<address>:<port>`` from the topology,
whatever address this Prometheus dials), and the peer hub's samples get ``job="fleet-hub"``
like the local hub's. Only ``up`` keeps ``job="fleet-hub-peer"``: HubDown is about the local
hub, and a partition must not raise it for the far one. ``honor_labels`` keeps the
``machine`` label each component sets; the target's ``machine`` label fills it in for
series without one (``up``, the log shipper's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fleetobs.agent.hub_url import HUB_AGENT
from fleetobs.generate.prometheus.common import (
    AGENTS_JOB,
    ALERTMANAGER_JOB,
    GPU_EXPORTER_JOB,
    HUB_JOB,
    PEER_HUB_JOB,
    PROMETHEUS_JOB,
)
from fleetobs.generate.prometheus.rules import rule_file_names
from fleetobs.generate.prometheus.yamltext import dump
from fleetobs.generate.stack import Service, Stack, peers, stacks
from fleetobs.topology.alerting import Alerting, RemoteWrite
from fleetobs.topology.model import Topology

#: Default ``rule_files`` of the committed config: the shared folder beside the machine's.
RULES_GLOB_DIR = "../rules"


def host_key(machine: str, service: str) -> str:
    """Key of ``hosts``: ``"<machine>/<compose service>"``, e.g. ``"pc2/hub"``."""
    return f"{machine}/{service}"


class _Resolver:
    """Where this Prometheus dials each service: ``hosts`` overrides, else compose DNS for
    its own machine and ``<address>:<port>`` for the others."""

    def __init__(self, machine: str, hosts: Mapping[str, str] | None) -> None:
        self.machine = machine
        self.hosts = dict(hosts or {})

    def __call__(self, st: Stack, svc: Service) -> str:
        key = host_key(st.machine.name, svc.name)
        if key in self.hosts:
            return self.hosts[key]
        return svc.local() if st.machine.name == self.machine else st.remote(svc)


def _auth(config: Alerting) -> dict[str, object]:
    if config.hub_bearer_token_file is None:
        return {}
    return {"authorization": {"type": "Bearer", "credentials_file": config.hub_bearer_token_file}}


def _static(job: str, target: str, st: Stack, svc: Service, **extra: object) -> dict[str, object]:
    return {
        "job_name": job,
        **extra,
        "static_configs": [{"targets": [target], "labels": {"machine": st.machine.name}}],
        # canonical instance: identical in every Prometheus, whatever address it dials
        "relabel_configs": [{"target_label": "instance", "replacement": st.remote(svc)}],
    }


def _remote_write(machine: str, rw: RemoteWrite) -> dict[str, object]:
    out: dict[str, object] = {"url": rw.url}
    if rw.name:
        out["name"] = rw.name
    out["remote_timeout"] = rw.remote_timeout
    if rw.basic_auth is not None:
        out["basic_auth"] = {"username": rw.basic_auth.username,
                             "password_file": rw.basic_auth.password_file}
    if rw.bearer_token_file is not None:
        out["authorization"] = {"type": "Bearer", "credentials_file": rw.bearer_token_file}
    # Each Prometheus writes its own machine's series only: the peer hub's series (and the
    # rules computed from them) reach the store from the peer's Prometheus, once.
    relabel: list[dict[str, object]] = [
        {"source_labels": ["machine"], "regex": machine, "action": "keep"}]
    if rw.keep_metrics is not None:
        relabel.append({"source_labels": ["__name__"], "regex": rw.keep_metrics, "action": "keep"})
    out["write_relabel_configs"] = relabel
    return out


def prometheus_config(topology: Topology, machine: str, *, config: Alerting | None = None,
                      hosts: Mapping[str, str] | None = None,
                      alertmanagers: Sequence[str] | None = None,
                      rule_files: Sequence[str] | None = None) -> str:
    """``prometheus.yml`` for ``machine`` (see the package docstring for the arguments)."""
    cfg = config or topology.alerting
    all_stacks = stacks(topology)
    if machine not in all_stacks:
        raise KeyError(f"unknown machine {machine!r} (known: {', '.join(all_stacks)})")
    own = all_stacks[machine]
    at = _Resolver(machine, hosts)
    others = peers(topology, machine)
    hub_opts = {"honor_labels": True, **_auth(cfg)}
    jobs: list[dict[str, object]] = [_static(HUB_JOB, at(own, own.hub), own, own.hub, **hub_opts)]
    if others:
        peer_job = {
            "job_name": PEER_HUB_JOB, **hub_opts,
            "static_configs": [{"targets": [at(p, p.hub)], "labels": {"machine": p.machine.name}}
                               for p in others],
            "relabel_configs": [
                {"source_labels": ["machine"], "regex": p.machine.name, "target_label": "instance",
                 "replacement": p.remote(p.hub)} for p in others],
            # the peer's samples look exactly like its own Prometheus's (up keeps its job)
            "metric_relabel_configs": [{"target_label": "job", "replacement": HUB_JOB}],
        }
        jobs.append(peer_job)
    jobs.append(_static(GPU_EXPORTER_JOB, at(own, own.gpu_exporter), own, own.gpu_exporter,
                        honor_labels=True))
    sd = {"url": f"http://{at(own, own.hub)}/v1/sd/prometheus?machine={machine}",
          "refresh_interval": "1m", **_auth(cfg)}
    jobs.append({"job_name": AGENTS_JOB, "http_sd_configs": [sd],
                 # the SD lists the hub agent too, at the hub's own port: fleet-hub scrapes it
                 "relabel_configs": [{"source_labels": ["agent"], "regex": HUB_AGENT, "action": "drop"}]})
    jobs.append(_static(PROMETHEUS_JOB, at(own, own.prometheus) if host_key(machine, "prometheus") in at.hosts
                        else f"localhost:{own.prometheus.port}", own, own.prometheus))
    jobs.append(_static(ALERTMANAGER_JOB, at(own, own.alertmanager), own, own.alertmanager))
    ams = list(alertmanagers) if alertmanagers is not None else \
        [at(own, own.alertmanager)] + [at(p, p.alertmanager) for p in others]
    files = list(rule_files) if rule_files is not None else \
        [f"{RULES_GLOB_DIR}/{f}" for f in rule_file_names(topology, cfg)]
    doc: dict[str, object] = {
        "global": {
            "scrape_interval": cfg.scrape_interval,
            "scrape_timeout": cfg.scrape_timeout,
            "evaluation_interval": cfg.evaluation_interval,
            # Alerts about a machine's agents carry `machine` already (this adds nothing to
            # them, so both copies stay identical); alerts without it (Watchdog, HubAbsent)
            # get the machine of the Prometheus that raised them.
            "external_labels": {"machine": machine},
        },
        "rule_files": files,
        "alerting": {"alertmanagers": [{"api_version": "v2", "static_configs": [{"targets": ams}]}]},
        "scrape_configs": jobs,
    }
    if cfg.remote_write:
        doc["remote_write"] = [_remote_write(machine, rw) for rw in cfg.remote_write]
    return dump(doc, f"Prometheus of {machine} (fleetobs/generate/prometheus/scrape.py; docs/alerting.md).")
