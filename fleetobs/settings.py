"""Settings from the environment (pydantic-settings).

Names from the container plan are honoured as they are (``MACHINE_TYPE``,
``CONTAINER_ROLE``, ...); fleetobs' own settings use the ``FLEET_`` prefix.
docs/configuration.md lists every variable. The environment is an argument
(``load_settings(environ)``) so tests never touch ``os.environ``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleetobs.errors import InputError


class DiscoveryMode(StrEnum):
    CONTAINER_DNS = "container_dns"  # compose service name of the agent's group
    HOST = "host"  # everything on 127.0.0.1 (bare processes, one machine)
    STATIC = "static"  # the machine address from the topology


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """'8GB', '8GiB', '512M', '1024' -> bytes. GPU 'GB' in the plan means GiB (cards are sold so)."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"cannot read {text!r} as a size (examples: 8GB, 512MiB, 1073741824)")
    unit = (m.group(2) or "").upper().rstrip("B").rstrip("I")
    return int(float(m.group(1)) * _UNITS[unit])


def _env(*names: str) -> Any:
    return AliasChoices(*names)


class FleetSettings(BaseSettings):
    """Every setting fleetobs reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True,
                                      case_sensitive=True)

    # --- the container plan's names -------------------------------------------------
    machine: str = Field("mainpc", validation_alias=_env("MACHINE_TYPE"),
                         description="which machine this process runs on (topology machine name)")
    container_role: str | None = Field(None, validation_alias=_env("CONTAINER_ROLE"),
                                       description="the container group this process belongs to")
    bind_address: str = Field("127.0.0.1", validation_alias=_env("BIND_ADDRESS"),
                              description="address servers listen on (0.0.0.0 in containers)")
    discovery_mode: DiscoveryMode = Field(DiscoveryMode.HOST, validation_alias=_env("SERVICE_DISCOVERY_MODE"))
    cross_machine_endpoint: str | None = Field(None, validation_alias=_env("CROSS_MACHINE_DISCOVERY_ENDPOINT"),
                                               description="URL of the peer hub")
    mainpc_endpoint: str | None = Field(None, validation_alias=_env("MAINPC_OBSERVABILITY_ENDPOINT"))
    pc2_endpoint: str | None = Field(None, validation_alias=_env("PC2_OBSERVABILITY_ENDPOINT"))
    port_offset: int = Field(0, ge=0, le=60000, validation_alias=_env("PORT_OFFSET"))
    gpu_memory_limit_bytes: int | None = Field(None, ge=0, validation_alias=_env("GPU_MEMORY_LIMIT"),
                                               description="this group's VRAM budget, e.g. 8GB")

    # --- fleetobs' own ---------------------------------------------------------------
    topology: Path | None = Field(None, validation_alias=_env("FLEET_TOPOLOGY"),
                                  description="topology YAML; unset: the committed default (the real fleet)")
    data_dir: Path = Field(Path(".fleetobs"), validation_alias=_env("FLEET_DATA_DIR"))
    hub_port: int | None = Field(None, ge=1, le=65535, validation_alias=_env("FLEET_HUB_PORT"))
    hub_url: str | None = Field(None, validation_alias=_env("FLEET_HUB_URL"),
                                description="where agents send heartbeats; unset: derived")
    token: str | None = Field(None, validation_alias=_env("FLEET_TOKEN"), repr=False)
    read_token: str | None = Field(None, validation_alias=_env("FLEET_READ_TOKEN"), repr=False)
    peers: tuple[str, ...] = Field((), validation_alias=_env("FLEET_PEERS"))
    # --- cross-machine sync (hub/sync/) ---
    sync_stale_after_seconds: float = Field(
        8.0, ge=1, le=3600, validation_alias=_env("FLEET_SYNC_STALE_AFTER"),
        description="hub: a peer silent this long is stale (its agents show unknown)")
    test_clock_skew_seconds: float = Field(
        0.0, ge=-86400, le=86400, validation_alias=_env("FLEET_TEST_CLOCK_SKEW_SECONDS"),
        description="TESTS ONLY: shift the hub's clocks by this much (proves skew changes nothing)")
    loki_url: str | None = Field(None, validation_alias=_env("FLEET_LOKI_URL"))
    loki_tenant: str | None = Field(None, validation_alias=_env("FLEET_LOKI_TENANT"))
    loki_username: str | None = Field(None, validation_alias=_env("FLEET_LOKI_USERNAME"),
                                      description="basic auth user for Loki")
    loki_password: str | None = Field(None, validation_alias=_env("FLEET_LOKI_PASSWORD"), repr=False)
    loki_bearer_token: str | None = Field(None, validation_alias=_env("FLEET_LOKI_BEARER_TOKEN"),
                                          repr=False)
    loki_structured_metadata: bool = Field(False, validation_alias=_env("FLEET_LOKI_STRUCTURED_METADATA"),
                                           description="send level as structured metadata (Loki >= 3)")
    loki_buffer_max_bytes: int = Field(16 * 1024**2, gt=0, validation_alias=_env("FLEET_LOKI_BUFFER_MAX_BYTES"),
                                       description="memory buffer for log lines, e.g. 16MiB")
    loki_spool_max_bytes: int = Field(256 * 1024**2, ge=0, validation_alias=_env("FLEET_LOKI_SPOOL_MAX_BYTES"),
                                      description="disk spool under FLEET_DATA_DIR/loki-spool; 0: none")
    log_level: str = Field("INFO", validation_alias=_env("FLEET_LOG_LEVEL"))
    # --- probing of legacy agents (hub/probing.py, fleetobs sidecar) ---
    probe_enabled: bool = Field(True, validation_alias=_env("FLEET_PROBE_ENABLED"),
                                description="hub: probe agents whose topology probe is zmq/http")
    probe_interval_seconds: float | None = Field(
        None, gt=0, le=3600, validation_alias=_env("FLEET_PROBE_INTERVAL"),
        description="seconds between probe cycles; unset: the agents' heartbeat interval, at most 15")
    probe_timeout_seconds: float = Field(2.0, gt=0, le=60, validation_alias=_env("FLEET_PROBE_TIMEOUT"),
                                         description="per probe")
    probe_concurrency: int | None = Field(
        None, ge=1, le=4096, validation_alias=_env("FLEET_PROBE_CONCURRENCY"),
        description="probes in flight at once; unset: enough for a cycle of silent agents to fit")
    # --- the status page (GET /, fleetobs status) ---
    prometheus_url: str | None = Field(None, validation_alias=_env("FLEET_PROMETHEUS_URL"),
                                       description="hub: Prometheus to link from the status page")
    grafana_url: str | None = Field(None, validation_alias=_env("FLEET_GRAFANA_URL"),
                                    description="hub: Grafana to link from the status page")
    status_banner: str | None = Field(None, max_length=200, validation_alias=_env("FLEET_STATUS_BANNER"),
                                      description="hub: a line shown atop the status page "
                                                  "(fleetobs demo: 'simulated')")
    max_body_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024,
                                validation_alias=_env("FLEET_MAX_BODY_BYTES"),
                                description="hub: larger request bodies get 413")
    http_idle_timeout_seconds: float = Field(
        10.0, ge=0.1, le=3600, validation_alias=_env("FLEET_HTTP_IDLE_TIMEOUT"),
        description="hub: close a connection without a complete request head this long after "
                    "it opened or after its last response")
    http_body_timeout_seconds: float = Field(
        30.0, ge=0.1, le=3600, validation_alias=_env("FLEET_HTTP_BODY_TIMEOUT"),
        description="hub: a request body not complete this long after its head gets 408")

    # --- GPU exporter (exporters/, fleetobs gpu-exporter) and the hub's GPU view ---
    gpu_exporter_port: int = Field(9400, ge=0, le=65535, validation_alias=_env("FLEET_GPU_EXPORTER_PORT"),
                                   description="GPU exporter: port for /metrics and /v1/gpus")
    gpu_interval_seconds: float = Field(1.0, gt=0, le=3600, validation_alias=_env("FLEET_GPU_INTERVAL"),
                                        description="GPU exporter: seconds between NVML collections")
    gpu_proc_root: Path = Field(Path("/proc"), validation_alias=_env("FLEET_GPU_PROC_ROOT"),
                                description="GPU exporter: the host's /proc (pid: host, or mounted)")
    docker_socket: Path | None = Field(None, validation_alias=_env("FLEET_DOCKER_SOCKET"),
                                       description="GPU exporter: Docker API socket; unset: "
                                                   "/var/run/docker.sock when present")
    cgroup_root: Path = Field(Path("/sys/fs/cgroup"), validation_alias=_env("FLEET_CGROUP_ROOT"),
                              description="GPU exporter: the host's /sys/fs/cgroup (mounted read-only "
                                          "in compose), for container CPU, memory and OOM kills")
    compose_project: str | None = Field(None, validation_alias=_env("FLEET_COMPOSE_PROJECT"),
                                        description="GPU exporter: container metrics for this compose "
                                                    "project only; unset: every container")
    container_interval_seconds: float = Field(
        5.0, gt=0, le=3600, validation_alias=_env("FLEET_CONTAINER_INTERVAL"),
        description="GPU exporter: seconds between container state and cgroup reads")
    gpu_exporter_url: str | None = Field(None, validation_alias=_env("FLEET_GPU_EXPORTER_URL"),
                                         description="hub: this machine's GPU exporter; unset: "
                                                     "127.0.0.1 on FLEET_GPU_EXPORTER_PORT; off: no GPU view")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: Any,
                                   env_settings: Any, dotenv_settings: Any,
                                   file_secret_settings: Any) -> tuple[Any, ...]:
        # load_settings() hands the environment in explicitly: no hidden reads of os.environ.
        return (init_settings,)

    @field_validator("gpu_memory_limit_bytes", "loki_buffer_max_bytes", "loki_spool_max_bytes",
                     mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        return parse_size(v) if isinstance(v, str) else v

    @field_validator("token", "read_token")
    @classmethod
    def _token(cls, v: str | None) -> str | None:
        # An empty token silently meant "no auth": refuse it, so a templating slip
        # (FLEET_TOKEN=${UNSET}) cannot open a hub that was meant to be closed.
        if v is not None and not v.strip():
            raise ValueError("set but empty: unset it for no token, or set a token")
        return v

    @field_validator("compose_project", mode="before")
    @classmethod
    def _blank_is_unset(cls, v: Any) -> Any:
        # compose interpolates '${COMPOSE_PROJECT_NAME:-}' to "" where it is not set
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("peers", mode="before")
    @classmethod
    def _peers(cls, v: Any) -> Any:
        if isinstance(v, str):
            return tuple(p.strip() for p in v.split(",") if p.strip())
        return v

    @field_validator("discovery_mode", mode="before")
    @classmethod
    def _mode(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v

    def peer_urls(self) -> tuple[str, ...]:
        """FLEET_PEERS, else the plan's endpoint variables for the other machine(s)."""
        if self.peers:
            return self.peers
        found = [self.cross_machine_endpoint]
        if self.machine != "mainpc":
            found.append(self.mainpc_endpoint)
        if self.machine != "pc2":
            found.append(self.pc2_endpoint)
        return tuple(dict.fromkeys(u for u in found if u))


#: Environment variable -> field, the documented surface (docs/configuration.md).
ENV_VARS: dict[str, str] = {
    alias: name
    for name, f in FleetSettings.model_fields.items()
    if isinstance(f.validation_alias, AliasChoices)
    for alias in f.validation_alias.choices
    if isinstance(alias, str)
}


class SettingsError(InputError):
    pass


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> FleetSettings:
    """Settings from ``environ`` (default: the process environment) plus explicit overrides.

    Raises :class:`SettingsError` naming the variable and what is wrong.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {k: v for k, v in env.items() if k in ENV_VARS}
    # Overrides (CLI options) are given by field name; store them under the variable's
    # name so they replace, not compete with, what the environment said.
    by_field = {field: var for var, field in ENV_VARS.items()}
    values.update({by_field.get(k, k): v for k, v in overrides.items() if v is not None})
    try:
        return FleetSettings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        var = next((k for k, v in ENV_VARS.items() if field in (k, v)), field)
        got = err.get("input")
        raise SettingsError(f"{var}={got!r}: {err['msg']}") from None
