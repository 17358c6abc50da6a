"""Alerts on the GPUs, the GPU exporter, and the compose services' containers (the
exporter's CONTAINERS section). Each machine's Prometheus scrapes only its own exporter.
"""

from __future__ import annotations

from fleetobs.generate import links
from fleetobs.generate.prometheus.common import (
    GONE,
    GPU_EXPORTER_JOB,
    GROUP_VARS,
    MACHINE,
    MACHINE_VARS,
    Ctx,
    sel,
    steps,
)
from fleetobs.generate.prometheus.model import Alert, AlertGroup, Case, Check, Expected
from fleetobs.topology.alerting import seconds

GPU_VARS = MACHINE_VARS
_GPU = "GPU {{ $labels.gpu }} on {{ $labels.machine }}"
_SERVICE = "{{ $labels.service }} ({{ $labels.group }} on {{ $labels.machine }})"
#: Clock event reasons that mean the hardware is protecting itself.
SLOWDOWNS = ("hw_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown", "sw_thermal_slowdown")


def _new_or_increased(metric: str, window: str, matcher: str = "") -> str:
    """A counter that went up within ``window``, including a series born with a non-zero
    value (the exporter creates an XID series at its first error: increase() misses that)."""
    s = f"{metric}{{{matcher}}}" if matcher else metric
    return f"(increase({s}[{window}]) > 0) or ((({s} unless {s} offset {window})) > 0)"


def gpu_alerts(ctx: Ctx) -> tuple[Alert, ...]:
    t = ctx.config.thresholds
    xids = "|".join(str(x) for x in t.critical_xids)
    xid_summary = f"XID {{{{ $labels.xid }}}} error on {_GPU}"
    xid_text = (f"The NVIDIA driver reported XID {{{{ $labels.xid }}}} on {_GPU} in the last 10m "
                "(the runbook lists what each code means).")
    out = [
        ctx.alert(
            "GpuGroupOverBudget", "machine_group:fleet_gpu_group_memory_budget_used:ratio > 1",
            "warning", "Container group {{ $labels.group }} uses more GPU memory than its budget",
            "{{ $labels.group }} on {{ $labels.machine }} uses "
            "{{ $value | humanizePercentage }} of its GPU memory budget (topology "
            "gpu_memory_budget_gib): the machine's GPU may run out for the other groups.",
            links.GPU, GROUP_VARS),
        ctx.alert(
            "GpuMemoryNearFull",
            f"1 - fleet_gpu_memory_free_bytes / fleet_gpu_memory_total_bytes > {t.gpu_memory_full_ratio}",
            "warning", f"{_GPU} memory is nearly full",
            f"{{{{ $value | humanizePercentage }}}} of the memory of {_GPU} is allocated: the next "
            "model load will fail with out of memory.",
            links.GPU, GPU_VARS),
        ctx.alert(
            "GpuTemperatureHigh", f"fleet_gpu_temperature_celsius > {t.gpu_temperature_celsius:g}",
            "warning", f"{_GPU} is hot",
            f"{_GPU} runs above {t.gpu_temperature_celsius:g} °C: check its fans and airflow "
            "before it throttles.",
            links.GPU, GPU_VARS),
        ctx.alert(
            "GpuThrottled",
            f'fleet_gpu_clock_event_reasons{{fleet_gpu_clock_event_reasons=~"{"|".join(SLOWDOWNS)}"}} == 1',
            "warning", f"{_GPU} is throttled ({{{{ $labels.fleet_gpu_clock_event_reasons }}}})",
            f"The clocks of {_GPU} are held down by {{{{ $labels.fleet_gpu_clock_event_reasons }}}} "
            "(hardware slowdown or thermal protection): everything on it runs slower.",
            links.GPU, GPU_VARS),
        ctx.alert("GpuXidErrors",
                  _new_or_increased("fleet_gpu_xid_errors_total", "10m", f'xid=~"{xids}"'),
                  "critical", xid_summary, xid_text, links.GPU, GPU_VARS),
        ctx.alert("GpuXidErrors",
                  _new_or_increased("fleet_gpu_xid_errors_total", "10m", f'xid!~"{xids}"'),
                  "warning", xid_summary, xid_text, links.GPU, GPU_VARS),
        ctx.alert(
            "GpuEccErrors", _new_or_increased("fleet_gpu_ecc_uncorrected_errors_total", "10m"),
            "critical", f"Uncorrected ECC errors on {_GPU}",
            f"{_GPU} reported uncorrected ECC memory errors: data on it may be corrupt; drain it.",
            links.GPU, GPU_VARS),
        ctx.alert(
            "GpuExporterDown", f'up{{job="{GPU_EXPORTER_JOB}"}} == 0', "warning",
            f"The GPU exporter of {MACHINE} is down",
            f"Prometheus on {MACHINE} cannot scrape the GPU exporter ({{{{ $labels.instance }}}}): "
            "GPU and container metrics and their alerts are blind.",
            links.GPU, MACHINE_VARS),
    ]
    gpus = ctx.gpu_machines()
    if gpus:  # a machine without a GPU has no NVML to lose
        on = f'machine=~"{"|".join(gpus)}"'
        down = f"(fleet_gpu_exporter_nvml_up{{{on}}} == 0)"
        out.append(ctx.alert(
            "NvmlDown",
            f"({down} * on (machine, job, instance) group_left (reason) fleet_gpu_exporter_nvml_down_reason) "
            f"or on (machine, job, instance) {down}",
            "warning", f"NVML is unavailable on {MACHINE}",
            f"The GPU exporter of {MACHINE} cannot read the GPU through NVML "
            "(reason: {{ $labels.reason }}): the driver is missing, was upgraded without a "
            "reboot, or the container lacks the GPU.",
            links.GPU, MACHINE_VARS))
    return tuple(out)


def container_alerts(ctx: Ctx) -> tuple[Alert, ...]:
    t = ctx.config.thresholds
    return (
        ctx.alert(
            "ContainerMemoryNearLimit",
            f"machine_service:fleet_container_memory_limit_used:ratio > {t.container_memory_ratio}",
            "warning", f"{_SERVICE} is near its memory limit",
            f"The container of {_SERVICE} uses {{{{ $value | humanizePercentage }}}} of its memory "
            "limit: the OOM killer is next.",
            links.OVERVIEW, GROUP_VARS),
        ctx.alert(
            "ContainerOomKilled", "increase(fleet_container_oom_kills_total[10m]) > 0", "warning",
            f"{_SERVICE} was OOM-killed",
            f"The OOM killer ended processes in the container of {_SERVICE} in the last 10m: raise "
            "memory_limit_gib in the topology or find the leak.",
            links.OVERVIEW, GROUP_VARS),
        ctx.alert(
            "ContainerRestartLoop",
            # increase() extrapolates: n restarts can read as a little less than n
            f"increase(fleet_container_restarts_total[{t.container_restart_window}]) "
            f"> {t.container_restarts - 0.5:g}",
            "warning", f"{_SERVICE} is in a restart loop",
            f"Docker restarted the container of {_SERVICE} at least {t.container_restarts} times "
            f"in {t.container_restart_window}.",
            links.OVERVIEW, GROUP_VARS),
    )


def gpu_cases(ctx: Ctx) -> dict[str, tuple[Case, ...]]:
    t = ctx.config.thresholds
    m = ctx.first_machine()
    exp = {"machine": m, "job": GPU_EXPORTER_JOB, "instance": ctx.exporter_instance(m)}
    gpu = {**exp, "gpu": "0"}
    grp = {**exp, "group": "g1"}
    used, budget = sel("fleet_gpu_group_memory_used_bytes", grp), sel("fleet_gpu_group_memory_budget_bytes", grp)

    def at(name: str) -> float:
        return ctx.fire_at(name)

    gib = 1024 ** 3
    total = 24 * gib
    full_free = int(total * (1 - t.gpu_memory_full_ratio) / 2)
    hot = t.gpu_temperature_celsius + 5
    reason = sel("fleet_gpu_clock_event_reasons", {**gpu, "fleet_gpu_clock_event_reasons": "hw_thermal_slowdown"})
    idle = sel("fleet_gpu_clock_event_reasons", {**gpu, "fleet_gpu_clock_event_reasons": "gpu_idle"})
    crit_xid = str(ctx.config.thresholds.critical_xids[0]) if t.critical_xids else "79"
    xid = sel("fleet_gpu_xid_errors_total", {**gpu, "xid": crit_xid})
    other_xid = sel("fleet_gpu_xid_errors_total", {**gpu, "xid": "13"})
    ecc = sel("fleet_gpu_ecc_uncorrected_errors_total", gpu)
    exporter_up = sel("up", exp)
    out: dict[str, tuple[Case, ...]] = {
        "GpuGroupOverBudget": (
            Case("fire", ((used, steps(9 * gib, 60)), (budget, steps(8 * gib, 60))),
                 (Check(at("GpuGroupOverBudget"), (Expected({**grp, "severity": "warning"}, 9 / 8),)),)),
            # budget 0 means none: never over it
            Case("no-fire", ((used, steps(9 * gib, 60)), (budget, steps(0, 60)),
                             (sel("fleet_gpu_group_memory_used_bytes", {**grp, "group": "g2"}), steps(gib, 60)),
                             (sel("fleet_gpu_group_memory_budget_bytes", {**grp, "group": "g2"}), steps(8 * gib, 60))),
                    (Check(at("GpuGroupOverBudget")),)),
            _gone(ctx, "GpuGroupOverBudget", ((used, f"{9 * gib}x20 stale"), (budget, f"{8 * gib}x20 stale")),
                  (Expected({**grp, "severity": "warning"}, 9 / 8),)),
        ),
        "GpuMemoryNearFull": (
            Case("fire", ((sel("fleet_gpu_memory_free_bytes", gpu), steps(full_free, 60)),
                          (sel("fleet_gpu_memory_total_bytes", gpu), steps(total, 60))),
                 (Check(at("GpuMemoryNearFull"), (Expected({**gpu, "severity": "warning"}, 1 - full_free / total),)),)),
            Case("no-fire", ((sel("fleet_gpu_memory_free_bytes", gpu), steps(total // 2, 60)),
                             (sel("fleet_gpu_memory_total_bytes", gpu), steps(total, 60))),
                 (Check(at("GpuMemoryNearFull")),)),
            _gone(ctx, "GpuMemoryNearFull", ((sel("fleet_gpu_memory_free_bytes", gpu), f"{full_free}x20 stale"),
                                             (sel("fleet_gpu_memory_total_bytes", gpu), f"{total}x20 stale")),
                  (Expected({**gpu, "severity": "warning"}, 1 - full_free / total),)),
        ),
        "GpuTemperatureHigh": (
            Case("fire", ((sel("fleet_gpu_temperature_celsius", gpu), steps(hot, 60)),),
                 (Check(at("GpuTemperatureHigh"), (Expected({**gpu, "severity": "warning"}),)),)),
            Case("no-fire", ((sel("fleet_gpu_temperature_celsius", gpu), steps(60, 60)),),
                 (Check(at("GpuTemperatureHigh")),)),
            _gone(ctx, "GpuTemperatureHigh", ((sel("fleet_gpu_temperature_celsius", gpu), f"{hot}x20 stale"),),
                  (Expected({**gpu, "severity": "warning"}),)),
        ),
        "GpuThrottled": (
            Case("fire", ((reason, steps(1, 60)), (idle, steps(0, 60))),
                 (Check(at("GpuThrottled"), (Expected({**gpu, "fleet_gpu_clock_event_reasons": "hw_thermal_slowdown",
                                                       "severity": "warning"}),)),)),
            # an idle GPU clocks down by design
            Case("no-fire", ((reason, steps(0, 60)), (idle, steps(1, 60))), (Check(at("GpuThrottled")),)),
            _gone(ctx, "GpuThrottled", ((reason, "1x20 stale"),),
                  (Expected({**gpu, "fleet_gpu_clock_event_reasons": "hw_thermal_slowdown",
                             "severity": "warning"}),)),
        ),
        "GpuXidErrors": (
            # a series born at its first XID, and one that grows later
            Case("fire", ((xid, "_x5 1x60"), (other_xid, "0x5 2x60")),
                 (Check(5 * 60 + at("GpuXidErrors"),
                        (Expected({**gpu, "xid": crit_xid, "severity": "critical"}),
                         Expected({**gpu, "xid": "13", "severity": "warning"}, 2))),)),
            # an old XID, no new one within 10m
            Case("no-fire", ((xid, "1x60"), (other_xid, "0x60")), (Check(30 * 60 + 7),)),
            Case("vanished", ((xid, "_x5 1x10 stale"),),
                 (Check(5 * 60 + at("GpuXidErrors"), (Expected({**gpu, "xid": crit_xid, "severity": "critical"}),)),
                  Check(40 * 60 + 7))),
        ),
        "GpuEccErrors": (
            Case("fire", ((ecc, "0x5 3x60"),),
                 (Check(5 * 60 + at("GpuEccErrors"), (Expected({**gpu, "severity": "critical"}, 3),)),)),
            # a card with ECC and no errors: its zero series is born, nothing fires
            Case("no-fire", ((ecc, "_x5 0x60"),), (Check(5 * 60 + at("GpuEccErrors")),)),
            Case("vanished", ((ecc, "0x5 3x10 stale"),),
                 (Check(5 * 60 + at("GpuEccErrors"), (Expected({**gpu, "severity": "critical"}, 3),)),
                  Check(40 * 60 + 7))),
        ),
        "GpuExporterDown": (
            Case("fire", ((exporter_up, steps(0, 60)),),
                 (Check(at("GpuExporterDown"), (Expected({**exp, "severity": "warning"}),)),)),
            Case("no-fire", ((exporter_up, steps(1, 60)),), (Check(at("GpuExporterDown")),)),
            _gone(ctx, "GpuExporterDown", ((exporter_up, "0x20 stale"),),
                  (Expected({**exp, "severity": "warning"}),)),
        ),
    }
    gpus = ctx.gpu_machines()
    if gpus:
        gm = gpus[0]
        gexp = {"machine": gm, "job": GPU_EXPORTER_JOB, "instance": ctx.exporter_instance(gm)}
        nvml_up = sel("fleet_gpu_exporter_nvml_up", gexp)
        why = sel("fleet_gpu_exporter_nvml_down_reason", {**gexp, "reason": "driver_not_loaded"})
        out["NvmlDown"] = (
            Case("fire", ((nvml_up, steps(0, 60)), (why, steps(1, 60))),
                 (Check(at("NvmlDown"), (Expected({**gexp, "reason": "driver_not_loaded", "severity": "warning"}, 0),)),)),
            Case("no-fire", ((nvml_up, steps(1, 60)),), (Check(at("NvmlDown")),)),
            # the reason series gone (an older exporter): the alert still fires, without one
            Case("vanished", ((nvml_up, steps(0, 60)), (why, "1x20 stale")),
                 (Check(at("NvmlDown"), (Expected({**gexp, "reason": "driver_not_loaded", "severity": "warning"}, 0),)),
                  Check(GONE + ctx.for_s("NvmlDown"), (Expected({**gexp, "severity": "warning"}, 0),)))),
        )
    return out


def container_cases(ctx: Ctx) -> dict[str, tuple[Case, ...]]:
    t = ctx.config.thresholds
    m = ctx.first_machine()
    svc = {"machine": m, "service": "svc-one", "group": "svc_one", "job": GPU_EXPORTER_JOB,
           "instance": ctx.exporter_instance(m)}
    gib = 1024 ** 3
    ws, limit = sel("fleet_container_memory_working_set_bytes", svc), sel("fleet_container_memory_limit_bytes", svc)
    high = int(2 * gib * (1 + t.container_memory_ratio) / 2)
    oom, restarts = sel("fleet_container_oom_kills_total", svc), sel("fleet_container_restarts_total", svc)
    window = int(seconds(t.container_restart_window) // 60)
    per_step = max(1, -(-t.container_restarts * 2 // window))  # twice the threshold over the window
    warn = {**svc, "severity": "warning"}

    def at(name: str) -> float:
        return ctx.fire_at(name)

    return {
        "ContainerMemoryNearLimit": (
            Case("fire", ((ws, steps(high, 60)), (limit, steps(2 * gib, 60))),
                 (Check(at("ContainerMemoryNearLimit"), (Expected(warn, high / (2 * gib)),)),)),
            # no limit (0) is never near it
            Case("no-fire", ((ws, steps(high, 60)), (limit, steps(0, 60))),
                 (Check(at("ContainerMemoryNearLimit")),)),
            _gone(ctx, "ContainerMemoryNearLimit", ((ws, f"{high}x20 stale"), (limit, f"{2 * gib}x20 stale")),
                  (Expected(warn, high / (2 * gib)),)),
        ),
        "ContainerOomKilled": (
            Case("fire", ((oom, "0x5 1x60"),), (Check(5 * 60 + at("ContainerOomKilled"), (Expected(warn, 0),)),)),
            Case("no-fire", ((oom, "0x60"),), (Check(5 * 60 + at("ContainerOomKilled")),)),
            Case("vanished", ((oom, "0x5 1x10 stale"),),
                 (Check(5 * 60 + at("ContainerOomKilled"), (Expected(warn, 0),)), Check(40 * 60 + 7))),
        ),
        "ContainerRestartLoop": (
            Case("fire", ((restarts, f"0+{per_step}x60"),),
                 (Check(window * 60 + at("ContainerRestartLoop"), (Expected(warn, 0),)),)),
            # one restart long ago
            Case("no-fire", ((restarts, "0x5 1x60"),), (Check(window * 60 + 30 * 60 + 7),)),
            Case("vanished", ((restarts, f"0+{per_step}x{window + 10} stale"),),
                 (Check(window * 60 + at("ContainerRestartLoop"), (Expected(warn, 0),)),
                  Check((2 * window + 20) * 60 + 7))),
        ),
    }


def _gone(ctx: Ctx, name: str, series: tuple[tuple[str, str], ...], expect: tuple[Expected, ...]) -> Case:
    return Case("vanished", series, (Check(ctx.fire_at(name), expect), Check(GONE)))


def groups(ctx: Ctx) -> tuple[AlertGroup, AlertGroup]:
    return (AlertGroup("fleet.gpu.alerts", gpu_alerts(ctx), gpu_cases(ctx)),
            AlertGroup("fleet.containers.alerts", container_alerts(ctx), container_cases(ctx)))
