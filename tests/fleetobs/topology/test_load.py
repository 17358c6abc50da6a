from __future__ import annotations

from pathlib import Path

import pytest

from fleetobs.topology.load import TopologyError, format_loc, load_topology, topology_from_text

GOOD = """\
machines:
  - {name: m1, hub_port: 9000, address: m1}
groups:
  - {name: g1, machine: m1}
agents:
  - {name: A, machine: m1, group: g1, port: 1000, health_check_port: 1001}
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(TopologyError) as exc:
        topology_from_text(text, "t.yaml")
    return [str(p) for p in exc.value.problems]


def test_good_document_loads() -> None:
    t = topology_from_text(GOOD, "t.yaml")
    assert [a.name for a in t.agents] == ["A"]


def test_malformed_yaml_reports_a_line() -> None:
    (problem,) = _problems("machines:\n  - name: a\n   bad: [\n")
    assert problem.startswith("t.yaml:") and "malformed YAML" in problem
    assert problem.split(":")[1].isdigit()


def test_empty_file_is_a_precise_error() -> None:
    assert _problems("") == [
        "t.yaml: the file is empty: expected a mapping with 'machines', 'groups' and 'agents'"]
    assert _problems("# only a comment\n")[0].startswith("t.yaml: the file is empty")


def test_top_level_must_be_a_mapping() -> None:
    assert _problems("- a\n- b\n") == ["t.yaml:1: expected a mapping at the top level, got list"]


def test_wrong_type_names_path_line_agent_and_value() -> None:
    text = GOOD.replace("port: 1000", "port: lots")
    (problem,) = _problems(text)
    assert problem.startswith("t.yaml:6: agents[0].port (A): ")
    assert "valid integer" in problem and "'lots'" in problem


def test_unknown_key_is_rejected_with_its_name() -> None:
    text = GOOD.replace("health_check_port: 1001}", "health_check_port: 1001, colour: red}")
    assert _problems(text) == ["t.yaml:6: agents[0].colour (A): unknown key 'colour'"]


def test_missing_required_key() -> None:
    text = GOOD.replace("hub_port: 9000, ", "")
    assert _problems(text) == ["t.yaml:2: machines[0].hub_port (m1): required key 'hub_port' is missing"]


def test_every_problem_is_reported_not_just_the_first() -> None:
    text = GOOD.replace("port: 1000", "port: 0").replace("hub_port: 9000", "hub_port: -1")
    problems = _problems(text)
    assert len(problems) == 2
    assert any("machines[0].hub_port" in p for p in problems)
    assert any("agents[0].port" in p for p in problems)


def test_bad_name_is_rejected() -> None:
    (problem,) = _problems(GOOD.replace("name: A,", "name: 'has space',"))
    assert "agents[0].name" in problem and "pattern" in problem


def test_reference_errors_are_located() -> None:
    (problem,) = _problems(GOOD.replace("group: g1, port", "group: nope, port"))
    assert problem == "t.yaml:6: agents[0] (A): unknown group 'nope'"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="no such file"):
        load_topology(tmp_path / "absent.yaml")
    with pytest.raises(TopologyError, match="is a directory"):
        load_topology(tmp_path)


def test_non_utf8_file(tmp_path: Path) -> None:
    p = tmp_path / "t.yaml"
    p.write_bytes(b"machines: \xff\xfe\n")
    with pytest.raises(TopologyError, match="not UTF-8"):
        load_topology(p)


def test_error_message_counts_the_rest() -> None:
    text = GOOD.replace("port: 1000", "port: 0").replace("hub_port: 9000", "hub_port: -1")
    with pytest.raises(TopologyError, match=r"\(and 1 more\)$"):
        topology_from_text(text, "t.yaml")


def test_format_loc() -> None:
    assert format_loc(("agents", 3, "port")) == "agents[3].port"
    assert format_loc(()) == ""
