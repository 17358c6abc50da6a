"""Variables are chained and shared; links between dashboards (and alerts') land on
dashboards that have the variables they set."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from fleetobs.generate import links
from fleetobs.generate.dashboards.queries import panels, variables_in


def variables(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in doc["templating"]["list"]}


def test_every_dashboard_has_the_five_variables_chained(docs: dict[str, dict[str, Any]]) -> None:
    for uid, doc in docs.items():
        v = variables(doc)
        assert list(v) == list(links.VARIABLES), uid
        assert variables_in(v["machine"]["query"]) == set()
        assert variables_in(v["group"]["query"]) == {"machine"}
        assert variables_in(v["agent"]["query"]) == {"machine", "group"}
        for name in ("machine", "group", "agent"):
            assert v[name]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert "fleetobs" in doc["tags"]
        (link,) = doc["links"]
        assert (link["type"], link["tags"], link["includeVars"], link["keepTime"]) == \
            ("dashboards", ["fleetobs"], True, True)


def test_unused_variables_are_hidden_and_the_agent_dashboard_picks_one_agent(docs: dict[str, dict[str, Any]]) -> None:
    assert variables(docs[links.GPU])["agent"]["hide"] == 2
    assert variables(docs[links.GPU])["group"]["hide"] == 0
    agent = variables(docs[links.AGENT])["agent"]
    assert (agent["hide"], agent.get("includeAll", False), agent.get("multi", False)) == (0, False, False)
    assert variables(docs[links.LOGS])["agent"]["allValue"] == ".+"


def _targets(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    m = re.fullmatch(r"/d/([\w-]+)", parts.path)
    assert m, url
    return m.group(1), dict(parse_qsl(parts.query))


def test_links_inside_panels_land_on_dashboards_with_those_variables(docs: dict[str, dict[str, Any]]) -> None:
    found = 0
    for uid, doc in docs.items():
        for p in panels(doc):
            for link in p.get("links", []) + p["fieldConfig"]["defaults"].get("links", []):
                target, query = _targets(link["url"])
                assert target in docs, f"{uid}/{p['title']}: {link['url']}"
                for key in query:
                    assert key.removeprefix("var-") in variables(docs[target]), link["url"]
                found += 1
    assert found >= 3
    assert links.dashboard_path(links.AGENT, {"agent": "${__data.fields.agent}"}) == \
        "/d/fleet-agent?var-agent=${__data.fields.agent}"


@pytest.mark.parametrize("uid", links.DASHBOARD_UIDS)
def test_alert_dashboard_urls_fill_in_variables_the_dashboard_has(docs: dict[str, dict[str, Any]], uid: str) -> None:
    url = links.dashboard_path(uid, {"machine": "{{ $labels.machine }}", "group": "{{ $labels.group }}",
                                     "agent": "{{ $labels.agent }}"})
    target, query = _targets(url.replace(" ", "%20"))
    assert target == docs[uid]["uid"]
    assert {k.removeprefix("var-") for k in query} <= set(variables(docs[uid]))
