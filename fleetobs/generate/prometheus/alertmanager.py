"""``alertmanager.yml``, identical on every machine (the two Alertmanagers form a cluster
and deduplicate only what they route identically), and the cluster flags.

Routing: critical pages, warning opens a ticket, info goes nowhere (the Watchdog has its
own route). Alerts about a container group are grouped by (machine, group): a dead
container is one notification. AgentDegraded is grouped by its reason across the fleet:
the real fleet's ready-key expiry (every agent degraded at once, same reason) is one
notification that says why. Alerts without a group are grouped by (machine, alertname).
"""

from __future__ import annotations

from collections.abc import Sequence

from fleetobs.generate.prometheus.yamltext import dump
from fleetobs.generate.stack import ALERTMANAGER_CLUSTER_PORT, peers
from fleetobs.topology.alerting import Alerting, Receiver
from fleetobs.topology.model import Topology

PAGE, TICKET, WATCHDOG, NULL = "page", "ticket", "watchdog", "null"

#: What the hub-level inhibitions silence: everything judged from a hub's series.
AGENT_ALERTS = "AgentDown|AgentDegraded|AgentMissing|AgentFlapping|GroupDown|GroupDegraded|GroupErrorBudgetBurn"


def _webhook(name: str, r: Receiver, url: str | None = None) -> dict[str, object]:
    return {"name": name, "webhook_configs": [{"url": url or r.webhook_url,
                                               "send_resolved": r.send_resolved}]}


def inhibit_rules(topology: Topology) -> list[dict[str, object]]:
    rules: list[dict[str, object]] = [
        # a dead or mostly dead container is one alert, not one per agent
        {"source_matchers": ['alertname="GroupDown"'],
         "target_matchers": ['alertname=~"GroupDegraded|GroupErrorBudgetBurn|AgentDown|AgentMissing|AgentFlapping"'],
         "equal": ["machine", "group"]},
        {"source_matchers": ['alertname="GroupDegraded"'],
         "target_matchers": ['alertname=~"AgentDown|AgentMissing|AgentFlapping"'],
         "equal": ["machine", "group"]},
        # a dead hub: its machine's agents are not judged, nobody can say they are fine
        {"source_matchers": ['alertname="HubDown"'],
         "target_matchers": [f'alertname=~"{AGENT_ALERTS}|SyncStale|PeerHubUnreachable|LogLinesDropped"'],
         "equal": ["machine"]},
        # a broken link: the peer's staleness is the link's fault
        {"source_matchers": ['alertname="PeerHubUnreachable"'],
         "target_matchers": ['alertname="SyncStale"'],
         "equal": ["machine", "peer"]},
    ]
    # The labels to match differ in name (peer= on one side, machine= on the other), which
    # `equal` cannot express: one rule per machine.
    for m in topology.machines:
        rules.append({"source_matchers": ['alertname=~"HubDown|HubAbsent"', f'machine="{m.name}"'],
                      "target_matchers": ['alertname=~"PeerHubUnreachable|SyncStale"', f'peer="{m.name}"']})
        rules.append({"source_matchers": ['alertname="PeerHubUnreachable"', f'peer="{m.name}"'],
                      "target_matchers": [f'alertname=~"{AGENT_ALERTS}"', f'machine="{m.name}"']})
    return rules


def alertmanager_config(topology: Topology, *, config: Alerting | None = None,
                        webhook_url: str | None = None, watchdog_url: str | None = None) -> str:
    """``alertmanager.yml``. ``webhook_url`` sends pages and tickets to one webhook (tests);
    default: the receivers of ``config.alertmanager``. ``watchdog_url`` routes the Watchdog
    there; default: ``config.alertmanager.watchdog`` (none: it is dropped)."""
    cfg = (config or topology.alerting).alertmanager
    watchdog = watchdog_url or (cfg.watchdog.webhook_url if cfg.watchdog else None)
    by_group = {"group_by": ["machine", "group"],
                "routes": [{"matchers": ['group=""'], "group_by": ["machine", "alertname"]}]}
    route = {
        "receiver": NULL,
        "group_by": ["machine", "group"],
        "group_wait": cfg.group_wait,
        "group_interval": cfg.group_interval,
        "repeat_interval": cfg.repeat_interval,
        "routes": [
            {"matchers": ['alertname="Watchdog"'], "receiver": WATCHDOG if watchdog else NULL,
             "group_by": ["machine"], "group_wait": "0s", "group_interval": "1m",
             "repeat_interval": cfg.watchdog_repeat_interval},
            {"matchers": ['alertname="AgentDegraded"'], "receiver": TICKET,
             "group_by": ["alertname", "reason"]},
            {"matchers": ['severity="critical"'], "receiver": PAGE, **by_group},
            {"matchers": ['severity="warning"'], "receiver": TICKET, **by_group},
            {"matchers": ['severity="info"'], "receiver": NULL},
        ],
    }
    receivers: list[dict[str, object]] = [{"name": NULL},
                                          _webhook(PAGE, cfg.page, webhook_url),
                                          _webhook(TICKET, cfg.ticket, webhook_url)]
    if watchdog:
        receivers.append({"name": WATCHDOG, "webhook_configs": [{"url": watchdog, "send_resolved": False}]})
    doc = {"global": {"resolve_timeout": cfg.resolve_timeout}, "route": route,
           "inhibit_rules": inhibit_rules(topology), "receivers": receivers}
    return dump(doc, "Alertmanager of every machine (fleetobs/generate/prometheus/alertmanager.py;\n"
                     "docs/alerting.md shows e-mail, Slack and PagerDuty receivers).")


def cluster_args(topology: Topology, machine: str, *, peers_at: Sequence[str] | None = None,
                 listen: str = f"0.0.0.0:{ALERTMANAGER_CLUSTER_PORT}") -> list[str]:
    """Alertmanager flags that join ``machine``'s Alertmanager to the others' (gossip on
    9094); ``peers_at`` overrides the peers' ``host:port`` (tests on loopback)."""
    at = list(peers_at) if peers_at is not None else \
        [f"{p.machine.address}:{ALERTMANAGER_CLUSTER_PORT}" for p in peers(topology, machine)]
    return [f"--cluster.listen-address={listen}", *(f"--cluster.peer={p}" for p in at)]
