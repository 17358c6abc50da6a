"""Generator of the top-level ``prometheus/`` folder (see fleetobs/generate/__init__.py).

Public API (stable; end-to-end tests render the same files with loopback addresses and
short intervals, the committed files use the topology's ``alerting`` section and compose
DNS names)::

    from fleetobs.generate.prometheus.scrape import prometheus_config
    prometheus_config(topology: Topology, machine: str, *,
                      config: Alerting | None = None,          # default topology.alerting
                      hosts: Mapping[str, str] | None = None,  # {"<machine>/<service>": "host:port"}
                      alertmanagers: Sequence[str] | None = None,  # host:port of each Alertmanager
                      rule_files: Sequence[str] | None = None,     # paths as Prometheus reads them
                      ) -> str                                     # prometheus.yml

    from fleetobs.generate.prometheus.rules import rule_files
    rule_files(topology: Topology, config: Alerting | None = None) -> dict[str, str]
        # {"recording.yml": ..., "agents-alerts.yml": ..., ...}: file name -> YAML

    from fleetobs.generate.prometheus.alertmanager import alertmanager_config, cluster_args
    alertmanager_config(topology: Topology, *, config: Alerting | None = None,
                        webhook_url: str | None = None,   # pages and tickets to this URL
                        watchdog_url: str | None = None,  # the Watchdog to this URL (default: dropped)
                        ) -> str                          # alertmanager.yml
    cluster_args(topology: Topology, machine: str, *, peers_at: Sequence[str] | None = None,
                 listen: str = "0.0.0.0:9094") -> list[str]  # --cluster.* flags

    from fleetobs.generate.prometheus.unittests import rule_tests
    rule_tests(topology, config=None, rules_dir="../rules") -> dict[str, str]  # <Alert>.yml

    from fleetobs.topology.alerting import Alerting
    topology.alerting.fast(interval="1s", for_="2s", group_wait="1s", group_interval="2s")
        # the same Alerting with short scrape/evaluation intervals and `for` durations

``hosts`` keys are ``"<machine>/<compose service>"`` (services of
fleetobs/generate/stack.py: ``hub``, ``gpu-exporter``, ``prometheus``, ``alertmanager``);
unlisted services are dialled at their compose DNS name on ``machine`` and at the
topology ``address`` elsewhere. Labels never depend on ``hosts``: every fleet target's
``instance`` is the canonical ``<address>:<port>``.

Output: ``<machine>/prometheus.yml`` per machine, the shared ``rules/*.yml``,
``tests/<Alert>.yml`` (promtool unit tests) and ``alertmanager/alertmanager.yml``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleetobs.generate.build import readme

if TYPE_CHECKING:
    from fleetobs.topology.model import Topology

_README = """
What Prometheus and Alertmanager run, generated from the topology and its `alerting:`
section (docs/alerting.md documents every alert and knob; docs/runbooks/ has a page per alert).

| path | what |
| --- | --- |
| `<machine>/prometheus.yml` | that machine's Prometheus: scrape config, rule files, Alertmanagers |
| `rules/*.yml` | recording and alerting rules, the same on every machine |
| `tests/<Alert>.yml` | `promtool test rules` for each alert: fire, no-fire, vanished |
| `alertmanager/alertmanager.yml` | every machine's Alertmanager (a cluster: same file) |

Run a machine's Prometheus with `--config.file=<machine>/prometheus.yml` and this folder
mounted whole (rule files are read from `../rules/`). Check everything with:

```
promtool check config mainpc/prometheus.yml
promtool test rules tests/*.yml
amtool check-config alertmanager/alertmanager.yml
```
"""


def render(topology: Topology) -> dict[str, str]:
    """Files of ``prometheus/``, relative to it."""
    from fleetobs.generate.prometheus.alertmanager import alertmanager_config
    from fleetobs.generate.prometheus.rules import rule_files
    from fleetobs.generate.prometheus.scrape import prometheus_config
    from fleetobs.generate.prometheus.unittests import rule_tests

    out = {"README.md": readme("prometheus", _README)}
    for m in topology.machines:
        out[f"{m.name}/prometheus.yml"] = prometheus_config(topology, m.name)
    out.update({f"rules/{name}": text for name, text in rule_files(topology).items()})
    out.update({f"tests/{name}": text for name, text in rule_tests(topology).items()})
    out["alertmanager/alertmanager.yml"] = alertmanager_config(topology)
    return out
