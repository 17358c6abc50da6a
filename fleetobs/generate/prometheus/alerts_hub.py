"""Alerts on the hubs and the link between them: HubDown (and its absent() twin),
PeerHubUnreachable, SyncStale.

A partition must raise PeerHubUnreachable and nothing else: the far hub's series vanish
from this side (no agent alerts for them), ``up`` of the peer hub's scrape is not an
alert (HubDown is about the local hub only), and SyncStale waits longer and is inhibited
by PeerHubUnreachable.
"""

from __future__ import annotations

from fleetobs.generate import links
from fleetobs.generate.prometheus.common import (
    GONE,
    HUB_JOB,
    MACHINE,
    MACHINE_VARS,
    PEER_HUB_JOB,
    Ctx,
    sel,
    steps,
)
from fleetobs.generate.prometheus.model import Alert, AlertGroup, Case, Check, Expected
from fleetobs.topology.alerting import seconds

#: ``up`` of a hub as any Prometheus scrapes it, local or peer, renamed to ``peer`` so it
#: matches ``fleet_peer_up{peer=...}``.
_HUB_SCRAPED_AS_PEER = (f'label_replace(up{{job=~"{HUB_JOB}|{PEER_HUB_JOB}"}} == 1, '
                        '"peer", "$1", "machine", "(.*)")')


def alerts(ctx: Ctx) -> tuple[Alert, ...]:
    stale = ctx.config.thresholds.sync_stale
    # Sync never ran at all (no series, e.g. FLEET_PEERS unset) while the hub is up: one
    # term per machine pair, since absent() needs fixed labels.
    never = [
        f'(absent(fleet_sync_last_success_age_seconds{{machine="{m.name}", peer="{p.name}"}}) '
        f'and on () (max(up{{job=~"{HUB_JOB}|{PEER_HUB_JOB}", machine="{m.name}"}}) == 1))'
        for m in ctx.topology.machines for p in ctx.topology.machines if p.name != m.name]
    return (
        ctx.alert(
            "HubDown", f'up{{job="{HUB_JOB}"}} == 0', "critical",
            f"The hub of {MACHINE} is down",
            f"Prometheus on {MACHINE} cannot scrape its hub ({{{{ $labels.instance }}}}): the hub "
            "process is dead or hung. Nobody judges this machine's agents until it is back; "
            "their alerts are inhibited.",
            links.HUB, MACHINE_VARS),
        ctx.alert(
            "HubAbsent", f'absent(up{{job="{HUB_JOB}"}})', "critical",
            f"Prometheus on {MACHINE} has no hub to scrape",
            f"Prometheus on {MACHINE} has no {HUB_JOB} target at all, so HubDown cannot fire "
            "and no agent alert can: its scrape configuration lost the hub.",
            links.HUB, MACHINE_VARS),
        ctx.alert(
            "PeerHubUnreachable",
            f"(fleet_peer_up == 0) unless on (peer) {_HUB_SCRAPED_AS_PEER}",
            "critical", f"{MACHINE} cannot reach the hub of {{{{ $labels.peer }}}}",
            f"The hub of {MACHINE} cannot sync with the hub of {{{{ $labels.peer }}}} and this "
            "Prometheus cannot scrape it either: the link between the machines is broken, or "
            "that machine is down. Its agents show as unknown here; their alerts are inhibited.",
            links.HUB, MACHINE_VARS),
        ctx.alert(
            "SyncStale",
            " or ".join([f"(fleet_sync_last_success_age_seconds > {seconds(stale):g})", *never]),
            "warning", f"Sync from {MACHINE} to {{{{ $labels.peer }}}} is stale",
            f"The hub of {MACHINE} has not completed a sync exchange with {{{{ $labels.peer }}}} "
            f"for more than {stale} (or never), although both hubs can be scraped (a broken "
            "link raises PeerHubUnreachable instead): FLEET_PEERS, tokens, versions or the peer "
            "address disagree.",
            links.HUB, MACHINE_VARS),
    )


def cases(ctx: Ctx) -> dict[str, tuple[Case, ...]]:
    m = ctx.first_machine()
    others = [x.name for x in ctx.topology.machines if x.name != m]
    hub = {"machine": m, "job": HUB_JOB, "instance": ctx.hub_instance(m)}
    up = sel("up", hub)
    down_at = ctx.fire_at("HubDown")
    out: dict[str, tuple[Case, ...]] = {
        "HubDown": (
            Case("fire", ((up, steps(0, 60)),), (Check(down_at, (Expected({**hub, "severity": "critical"}),)),)),
            Case("no-fire", ((up, steps(1, 60)),), (Check(down_at),)),
            # the hub's target gone: HubAbsent's case, not HubDown's
            Case("vanished", ((up, "0x20 stale"),),
                 (Check(down_at, (Expected({**hub, "severity": "critical"}),)), Check(GONE))),
        ),
    }
    abs_at = ctx.fire_at("HubAbsent")
    other_job = sel("up", {"machine": m, "job": "prometheus", "instance": "localhost:9090"})
    out["HubAbsent"] = (
        Case("fire", ((other_job, steps(1, 60)),),
             (Check(abs_at, (Expected({"job": HUB_JOB, "severity": "critical"}),)),)),
        Case("no-fire", ((up, steps(0, 60)),), (Check(abs_at),)),
        Case("vanished", ((up, "1x20 stale"), (other_job, steps(1, 60))),
             (Check(abs_at), Check(21 * 60 + abs_at, (Expected({"job": HUB_JOB, "severity": "critical"}),)))),
    )
    if not others:
        return out
    peer = others[0]
    peer_hub = {"machine": peer, "job": PEER_HUB_JOB, "instance": ctx.hub_instance(peer)}
    link = {**hub, "peer": peer}
    peer_up = sel("fleet_peer_up", link)
    pu_at = ctx.fire_at("PeerHubUnreachable")
    pu = Expected({**link, "severity": "critical"})
    out["PeerHubUnreachable"] = (
        Case("fire", ((peer_up, steps(0, 60)), (up, steps(1, 60)), (sel("up", peer_hub), steps(0, 60))),
             (Check(pu_at, (pu,)),)),
        # sync fails but this Prometheus scrapes the peer hub fine: SyncStale's case
        Case("no-fire", ((peer_up, steps(0, 60)), (up, steps(1, 60)), (sel("up", peer_hub), steps(1, 60))),
             (Check(pu_at),)),
        Case("vanished", ((peer_up, "0x20 stale"), (up, steps(1, 60)), (sel("up", peer_hub), steps(0, 60))),
             (Check(pu_at, (pu,)), Check(GONE))),
    )
    st = seconds(ctx.config.thresholds.sync_stale)
    age = sel("fleet_sync_last_success_age_seconds", link)
    ss_at = st + ctx.fire_at("SyncStale")
    stale = Expected({**link, "severity": "warning"})
    grow = f"0+60x{int(ss_at // 60) + 60}"
    last = int(ss_at // 60) + 2  # the age series' last step in the vanished case
    out["SyncStale"] = (
        Case("fire", ((age, grow), (up, steps(1, int(ss_at // 60) + 60))), (Check(ss_at, (stale,)),)),
        Case("no-fire", ((age, f"5x{int(ss_at // 60) + 60}"), (up, steps(1, int(ss_at // 60) + 60))), (Check(ss_at),)),
        # never synced (no series) while the hub is up: the per-pair absent() rule fires
        Case("vanished", ((age, f"0+60x{last} stale"), (up, steps(1, 200))),
             (Check(ss_at, (stale,)),
              Check((last + 1) * 60 + ctx.fire_at("SyncStale"),
                    (Expected({"machine": m, "peer": peer, "severity": "warning"}),)))),
    )
    return out


def group(ctx: Ctx) -> AlertGroup:
    return AlertGroup("fleet.hub.alerts", alerts(ctx), cases(ctx))
