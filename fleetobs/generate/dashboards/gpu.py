"""GPU per machine: VRAM per compose service and group against budgets (the plan's
over-commit shown, not hidden), the devices, the exporter's health, and the compose
services' container resources."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fleetobs.generate import links
from fleetobs.generate.dashboards.document import GROUP, MACHINE, dashboard
from fleetobs.generate.dashboards.panels import (
    Grid,
    dashed,
    merge_table,
    prom,
    stat,
    state_timeline,
    steps,
    table,
    timeseries,
    value_map,
)

if TYPE_CHECKING:
    from fleetobs.topology.model import Topology

M = f"{{{MACHINE}}}"
MG = f"{{{MACHINE}, {GROUP}}}"
GPU = "{{machine}} GPU {{gpu}}"
UP_MAPPING = value_map({"1": ("up", "green"), "0": ("DOWN", "red")})


def _rate(metric: str, by: str, sel: str = M) -> str:
    return f"sum by ({by}) (rate({metric}{sel}[$__rate_interval]))"


def _increase(metric: str, by: str, sel: str = M) -> str:
    return f"sum by ({by}) (increase({metric}{sel}[$__rate_interval]))"


def _memory(grid: Grid, topology: Topology) -> None:
    budgeted = [g.name for g in topology.groups if g.gpu_memory_budget_bytes > 0]
    grid.row("Memory against budgets")
    grid.add(stat("Budgets over installed VRAM", "The GPU memory budgets of a machine's groups "
                  "added up, as a fraction of its installed VRAM: above 100% the plan over-commits "
                  "the card (it cannot run every group at its budget at once).", "percentunit",
                  [prom(f"machine:fleet_gpu_group_memory_budget:sum{M} / sum by (machine) "
                        f"(fleet_gpu_memory_total_bytes{M})", "{{machine}}")],
                  thresholds=steps((None, "green"), (0.9, "yellow"), (1, "red")), background=True,
                  text_mode="value_and_name"), 6, 5)
    grid.add(stat("VRAM in use", "Fraction of each machine's GPU memory allocated.", "percentunit",
                  [prom(f"machine:fleet_gpu_memory_used:ratio{M}", "{{machine}}")],
                  thresholds=steps((None, "green"), (0.8, "yellow"), (0.95, "red")),
                  text_mode="value_and_name"), 6, 5)
    grid.add(stat("Groups over budget", "Groups using more GPU memory than their budget now.", "short",
                  [prom(f"sum by (machine) (machine_group:fleet_gpu_group_memory_budget_used:ratio{MG} > bool 1)",
                        "{{machine}}")],
                  thresholds=steps((None, "green"), (1, "red")), text_mode="value_and_name"), 6, 5)
    grid.add(stat("Free VRAM", "Device memory free for allocation on each machine.", "bytes",
                  [prom(f"sum by (machine) (fleet_gpu_memory_free_bytes{M})", "{{machine}}")],
                  text_mode="value_and_name"), 6, 5)
    grid.add(timeseries("VRAM per compose service", "Device memory used by each compose service's "
                        "processes (host: processes outside containers), stacked.", "bytes",
                        [prom(f"sum by (machine, service) (fleet_gpu_service_memory_used_bytes{MG})",
                              "{{machine}} {{service}}")], stack=True), 12, 9)
    grid.add(timeseries("VRAM per group against its budget", "Device memory each container group "
                        "uses, and its budget from the topology (dashed); groups without a budget "
                        "are left out.", "bytes",
                        [prom(f"fleet_gpu_group_memory_used_bytes{MG} and on (machine, group) "
                              f"(fleet_gpu_group_memory_budget_bytes{MG} > 0)", "{{group}} used"),
                         prom(f"fleet_gpu_group_memory_budget_bytes{MG} > 0", "{{group}} budget")],
                        overrides=[dashed([f"{name} budget" for name in budgeted])]), 12, 9)
    grid.add(timeseries("Over-commit: budgets against installed VRAM", "The groups' budgets added "
                        "up against the card's installed memory and what is in use.", "bytes",
                        [prom(f"machine:fleet_gpu_group_memory_budget:sum{M}", "{{machine}} budgets added up"),
                         prom(f"sum by (machine) (fleet_gpu_memory_total_bytes{M})", "{{machine}} installed"),
                         prom(f"sum by (machine) (fleet_gpu_memory_used_bytes{M})", "{{machine}} used")],
                        overrides=[dashed([f"{m.name} budgets added up" for m in topology.machines])]), 12, 8)
    grid.add(timeseries("Budget used per group", "GPU memory each group uses as a fraction of its "
                        "budget (recording rule); above 100% (dashed) it is over.", "percentunit",
                        [prom(f"machine_group:fleet_gpu_group_memory_budget_used:ratio{MG}",
                              "{{machine}} {{group}}")], minimum=0, threshold_line=True,
                        thresholds=steps((None, "green"), (1, "red"))), 12, 8)


def _devices(grid: Grid) -> None:
    grid.row("Devices")
    grid.add(timeseries("Utilisation", "Fraction of the last sample period a kernel ran, and in "
                        "which device memory was read or written.", "percentunit",
                        [prom(f"fleet_gpu_utilization_ratio{M}", f"{GPU} kernels"),
                         prom(f"fleet_gpu_memory_bandwidth_utilization_ratio{M}", f"{GPU} memory")],
                        minimum=0, maximum=1), 8, 8)
    grid.add(timeseries("Temperature", "GPU core temperature.", "celsius",
                        [prom(f"fleet_gpu_temperature_celsius{M}", GPU)],
                        thresholds=steps((None, "green"), (83, "red")), threshold_line=True), 8, 8)
    grid.add(timeseries("Power", "Power drawn by the board.", "watt",
                        [prom(f"fleet_gpu_power_watts{M}", GPU)]), 8, 8)
    grid.add(timeseries("Clocks", "Current clock frequency by clock domain.", "hertz",
                        [prom(f"fleet_gpu_clock_hertz{M}", f"{GPU} {{{{clock}}}}")]), 8, 8)
    grid.add(timeseries("Fan speed", "Fan speed as a fraction of its maximum.", "percentunit",
                        [prom(f"fleet_gpu_fan_speed_ratio{M}", GPU)], minimum=0, maximum=1), 8, 8)
    grid.add(timeseries("PCIe throughput", "PCIe traffic by direction (the driver's 20 ms window).",
                        "Bps", [prom(f"fleet_gpu_pcie_throughput_bytes_per_second{M}",
                                     f"{GPU} {{{{direction}}}}")]), 8, 8)
    grid.add(state_timeline("Throttle reasons", "Why clocks are held below their maximum "
                            "(NVML clock event reasons), over time: red while a reason holds.",
                            [prom(f"fleet_gpu_clock_event_reasons{M}",
                                  f"{GPU} {{{{fleet_gpu_clock_event_reasons}}}}")],
                            [value_map({"1": ("active", "red"), "0": ("no", "transparent")})]), 12, 10)
    grid.add(timeseries("XID errors", "XID errors the driver reported, by code (79: fell off the "
                        "bus, 31/43: application faults, 48: double-bit ECC).", "short",
                        [prom(_increase("fleet_gpu_xid_errors_total", "machine, gpu, xid"),
                              f"{GPU} XID {{{{xid}}}}")], bars=True), 6, 10)
    grid.add(timeseries("Uncorrected ECC errors", "Uncorrected ECC errors (cards with ECC only).",
                        "short", [prom(_increase("fleet_gpu_ecc_uncorrected_errors_total", "machine, gpu"), GPU)],
                        bars=True), 6, 10)


def _exporter(grid: Grid) -> None:
    grid.row("Exporter and NVML health")
    grid.add(stat("NVML", "Whether NVML answered the exporter's last collection.", "none",
                  [prom(f"fleet_gpu_exporter_nvml_up{M}", "{{machine}}")], mappings=[UP_MAPPING],
                  thresholds=steps((None, "red"), (1, "green")), background=True,
                  text_mode="value_and_name"), 6, 5)
    grid.add(stat("Docker API", "Whether the Docker Engine API answered: without it services "
                  "are container ids, not compose names.", "none",
                  [prom(f"fleet_gpu_exporter_docker_up{M}", "{{machine}}")], mappings=[UP_MAPPING],
                  thresholds=steps((None, "red"), (1, "green")), background=True,
                  text_mode="value_and_name"), 6, 5)
    grid.add(table("Why NVML is down", "The reason NVML is unavailable, while it is.", "none",
                   [prom(f"max by (machine, reason) (fleet_gpu_exporter_nvml_down_reason{M} == 1)",
                         instant=True, table=True)],
                   transformations=merge_table(hide=("Time", "Value")), no_value="NVML is up"), 12, 5)
    grid.add(timeseries("NVML call errors", "NVML calls that failed, per second, by call and error.",
                        "ops", [prom(_rate("fleet_gpu_exporter_nvml_errors_total", "machine, call, reason"),
                                     "{{machine}} {{call}} {{reason}}")]), 8, 8)
    grid.add(timeseries("Collection time and snapshot age", "p99 of one background collection, "
                        "and the age of the snapshot scrapes are served.", "s",
                        [prom("histogram_quantile(0.99, " + _rate(
                            "fleet_gpu_exporter_collect_duration_seconds_bucket", "le, machine") + ")",
                            "{{machine}} collect p99"),
                         prom(f"fleet_gpu_exporter_snapshot_age_seconds{M}", "{{machine}} snapshot age")]), 8, 8)
    grid.add(timeseries("Unattributed GPU processes", "GPU processes that could not be attributed "
                        "to a compose service, per second, by reason.", "ops",
                        [prom(_rate("fleet_gpu_exporter_attribution_skipped_total", "machine, reason"),
                              "{{machine}} {{reason}}")]), 8, 8)
    grid.add(table("GPUs", "Each machine's GPUs: index, model and UUID.", "none",
                   [prom(f"max by (machine, gpu, name, uuid) (fleet_gpu_info{M})", instant=True, table=True)],
                   transformations=merge_table(hide=("Time", "Value"))), 12, 6)
    grid.add(table("Unsupported NVML calls", "NVML calls a device does not support (their series "
                   "are omitted, so those panels stay empty on purpose).", "none",
                   [prom(f"max by (machine, gpu, call) (fleet_gpu_exporter_unsupported_call{M})",
                         instant=True, table=True)], transformations=merge_table(hide=("Time", "Value"))), 12, 6)


def _containers(grid: Grid) -> None:
    grid.row("Containers (per compose service)")
    grid.add(stat("Containers running", "Compose services' containers running now.", "short",
                  [prom(f"sum by (machine) (fleet_container_running{MG})", "{{machine}}")],
                  text_mode="value_and_name"), 6, 8)
    grid.add(timeseries("Container CPU", "CPU cores each compose service uses (recording rule).",
                        "short", [prom(f"machine_service:fleet_container_cpu:rate5m{MG}", "{{machine}} {{service}}")]),
             9, 8)
    grid.add(timeseries("Container memory against its limit", "Working set of each compose service "
                        "as a fraction of its memory limit: the OOM killer acts at 100%.", "percentunit",
                        [prom(f"machine_service:fleet_container_memory_limit_used:ratio{MG}",
                              "{{machine}} {{service}}")], minimum=0, threshold_line=True,
                        thresholds=steps((None, "green"), (0.9, "red"))), 9, 8)
    grid.add(timeseries("Container working set", "Memory each compose service's container uses "
                        "that cannot be reclaimed.", "bytes",
                        [prom(f"fleet_container_memory_working_set_bytes{MG}", "{{machine}} {{service}}")]), 12, 8)
    grid.add(timeseries("OOM kills and restarts", "Processes killed by the OOM killer and container "
                        "restarts, per compose service.", "short",
                        [prom(_increase("fleet_container_oom_kills_total", "machine, service", MG),
                              "{{machine}} {{service}} OOM kills"),
                         prom(_increase("fleet_container_restarts_total", "machine, service", MG),
                              "{{machine}} {{service}} restarts")], bars=True), 12, 8)


def render(topology: Topology) -> dict[str, Any]:
    grid = Grid()
    _memory(grid, topology)
    _devices(grid)
    _exporter(grid)
    _containers(grid)
    return dashboard(links.GPU, "GPU per machine", "VRAM per compose service and group against "
                     "budgets (the plan's over-commit), devices, exporter and NVML health, "
                     "container resources.", grid.panels, variables=("datasource", "machine", "group"))
