from __future__ import annotations

import re
import textwrap
from collections import Counter
from pathlib import Path

import pytest
import yaml

from fleetobs.topology import TopologyError, load_topology
from fleetobs.topology.importer import import_topology
from fleetobs.topology.load import topology_from_text


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def _fixture_ports(mainpc: Path, pc2: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """The real ports, read independently of the importer (plain YAML, offset 0)."""

    def port(v: object) -> int:
        return v if isinstance(v, int) else int(str(v).replace("${PORT_OFFSET}+", ""))

    out: dict[tuple[str, str], tuple[int, int]] = {}
    for agents in yaml.safe_load(mainpc.read_text())["agent_groups"].values():
        for name, spec in (agents or {}).items():
            out[("mainpc", name)] = (port(spec["port"]), port(spec["health_check_port"]))
    for spec in yaml.safe_load(pc2.read_text())["pc2_services"]:
        out[("pc2", spec["name"])] = (port(spec["port"]), port(spec["health_check_port"]))
    return out


def test_fixtures_import_to_the_77_real_agents(mainpc_config: Path, pc2_config: Path, container_plan: Path) -> None:
    result = import_topology([mainpc_config, pc2_config], plan=container_plan)
    t = result.topology
    assert Counter(a.machine for a in t.agents) == {"mainpc": 54, "pc2": 23}
    expected = _fixture_ports(mainpc_config, pc2_config)
    assert {a.key: (a.port, a.health_check_port) for a in t.agents} == expected
    assert t.agent_by_key[("mainpc", "RequestCoordinator")].port == 26002  # a plain number in the file
    # The 6 agents the plan does not list are reported unplaced, nothing else.
    unplaced = {a.name for a in t.agents if a.group is None}
    assert unplaced == {"LearningOrchestrationService", "LearningOpportunityDetector", "LearningManager",
                        "ActiveLearningMonitor", "LearningAdjusterAgent", "AsyncProcessor"}
    assert sum("unplaced" in w.message for w in result.warnings) == 6


def test_import_matches_the_committed_default(mainpc_config: Path, pc2_config: Path, container_plan: Path) -> None:
    imported = import_topology([mainpc_config, pc2_config], plan=container_plan).topology
    default = load_topology()

    def facts(t: object) -> set[tuple[object, ...]]:
        return {(a.machine, a.name, a.port, a.health_check_port, a.required, a.dependencies)
                for a in t.agents}  # type: ignore[attr-defined]

    assert facts(imported) == facts(default)
    placed = {a.key: a.group for a in imported.agents if a.group}
    assert all(default.agent_by_key[k].group == g for k, g in placed.items())
    assert [g.model_dump() for g in imported.groups] == [g.model_dump() for g in default.groups]


def test_required_flags_and_dependencies_come_through(mainpc_config: Path, pc2_config: Path) -> None:
    t = import_topology([mainpc_config, pc2_config]).topology
    assert not t.agent_by_key[("mainpc", "GoTToTAgent")].required
    assert t.agent_by_key[("mainpc", "Responder")].dependencies == (
        "EmotionEngine", "FaceRecognitionAgent", "NLUAgent", "StreamingTTSAgent", "SystemDigitalTwin", "TTSService")
    assert t.agent_by_key[("pc2", "ObservabilityHub")].port == 9100
    # commented-out PC2 agents stay out
    assert ("pc2", "PerformanceMonitor") not in t.agent_by_key


def test_port_offset_shifts_expressions_not_plain_numbers(mainpc_config: Path) -> None:
    t = import_topology([mainpc_config], port_offset=1000).topology
    assert t.agent_by_key[("mainpc", "ServiceRegistry")].port == 8200
    assert t.agent_by_key[("mainpc", "RequestCoordinator")].port == 26002


def test_without_plan_groups_come_from_docker_groups(mainpc_config: Path, pc2_config: Path) -> None:
    result = import_topology([mainpc_config, pc2_config])
    t = result.topology
    assert t.agent_by_key[("mainpc", "NLUAgent")].group == "language_stack"
    # names reused on both machines are disambiguated, with a warning
    assert t.agent_by_key[("pc2", "ResourceManager")].group == "pc2_infra_core"
    assert t.agent_by_key[("mainpc", "ServiceRegistry")].group == "mainpc_infra_core"
    assert any("renamed pc2_infra_core" in w.message for w in result.warnings)
    # hub ports come from the real ObservabilityHub entries
    assert {m.name: m.hub_port for m in t.machines} == {"mainpc": 9000, "pc2": 9100}
    unplaced = {a.name for a in t.agents if a.group is None}
    assert unplaced == {"UnifiedSystemAgent", "TinyLlamaServiceEnhanced"}


def test_output_is_a_loadable_topology(mainpc_config: Path, pc2_config: Path, container_plan: Path) -> None:
    result = import_topology([mainpc_config, pc2_config], plan=container_plan)
    again = topology_from_text(result.to_yaml(), "out.yaml")
    assert again == result.topology


UNIFIED = """\
global_settings: {health_checks: {interval_seconds: 15}}
machine_profiles:
  mainpc: {enabled_groups: [core, speech]}
  pc2: {enabled_groups: [core, vision]}
agent_groups:
  core:
    ObservabilityHub: {port: "${PORT_OFFSET}+9000", health_check_port: "${PORT_OFFSET}+9001"}
  speech:
    STTService: {port: 5800, health_check_port: 6800, dependencies: [ObservabilityHub]}
  vision:
    VisionProcessingAgent: {port: 7150, health_check_port: 8150, required: false}
  disabled:
    Ghost: {port: 1, health_check_port: 2}
docker_groups:
  core_cpu: {description: core, agents: [ObservabilityHub]}
  gpu: {description: gpu, agents: [STTService, VisionProcessingAgent]}
"""


def test_unified_v3_file_with_machine_profiles(tmp_path: Path) -> None:
    result = import_topology([_write(tmp_path, "startup_config.v3.yaml", UNIFIED)])
    t = result.topology
    assert set(t.agent_by_key) == {("mainpc", "ObservabilityHub"), ("pc2", "ObservabilityHub"),
                                   ("mainpc", "STTService"), ("pc2", "VisionProcessingAgent")}
    assert t.defaults.heartbeat_interval_seconds == 15
    assert any("group disabled is enabled on no machine" in w.message for w in result.warnings)
    # one docker group on two machines becomes one group per machine
    assert t.agent_by_key[("mainpc", "STTService")].group == "mainpc_gpu"
    assert t.agent_by_key[("pc2", "VisionProcessingAgent")].group == "pc2_gpu"


NESTED = """\
agent_groups:
  core:
    ServiceRegistry: {port: 7200, health_check_port: 8200}
    infra_core:
      description: nested by an indentation mistake
      agents: [ServiceRegistry]
  docker_groups:
    speech_gpu:
      description: also nested
      agents: [STTService]
  speech:
    STTService: {port: 5800}
"""


def test_docker_groups_nested_in_agent_groups_become_groups_not_agents(tmp_path: Path) -> None:
    result = import_topology([_write(tmp_path, "mainpc.yaml", NESTED)])
    t = result.topology
    assert {a.name for a in t.agents} == {"ServiceRegistry", "STTService"}
    assert {g.name for g in t.groups} == {"infra_core", "speech_gpu"}
    assert t.agent_by_key[("mainpc", "STTService")].group == "speech_gpu"
    nested_warnings = [w for w in result.warnings if "nested" in w.message or "inside agent_groups" in w.message]
    assert len(nested_warnings) == 2
    # missing optional health_check_port: BaseAgent's port + 1, with a warning
    assert t.agent_by_key[("mainpc", "STTService")].health_check_port == 5801
    assert any("no health_check_port" in w.message for w in result.warnings)


def test_pc2_style_list_with_env_defaults(tmp_path: Path) -> None:
    text = """\
    pc2_services:
      - {name: A, host: 0.0.0.0, port: "${BASE:-7000}+1", health_check_port: "${BASE:-7000}+1001"}
      # - {name: Commented, port: 1, health_check_port: 2}
      - {name: B, port: 7002, health_check_port: 8002, dependencies: [A]}
    """
    t = import_topology([_write(tmp_path, "pc2_services.yaml", text)], env={"BASE": "100"}).topology
    assert {a.name: (a.machine, a.port, a.health_check_port) for a in t.agents} == {
        "A": ("pc2", 101, 1101), "B": ("pc2", 7002, 8002)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("agent_groups:\n  g:\n    A: {port: \"${NOPE}+1\", health_check_port: 2}\n",
         r"agent_groups.g.A.port: agent A: variable \$\{NOPE\} is not set"),
        ("agent_groups:\n  g:\n    A: {health_check_port: 2}\n", "required field 'port' is missing"),
        ("agent_groups:\n  g:\n    A: {port: 1, health_check_port: 2, required: maybe}\n",
         "'required' must be true or false"),
        ("agent_groups:\n  g:\n    A: {port: 1, health_check_port: 2, dependencies: B}\n",
         "'dependencies' must be a list"),
        ("agent_groups:\n  g: [1, 2]\n", "agent_groups.g: expected a mapping of agents, got list"),
        ("pc2_services: {A: 1}\n", "pc2_services: expected a list of services"),
        ("hello: world\n", "no agents found"),
        ("", "the file is empty"),
        ("agent_groups: [\n", "malformed YAML"),
    ],
)
def test_bad_startup_configs_give_precise_errors(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, "mainpc.yaml", text)
    with pytest.raises(TopologyError) as exc:
        import_topology([path])
    rendered = "\n".join(str(p) for p in exc.value.problems)
    assert str(path) in rendered
    assert re.search(message, rendered), rendered


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="cannot read"):
        import_topology([tmp_path / "absent.yaml"])


def test_bad_plan_is_an_error(tmp_path: Path, mainpc_config: Path) -> None:
    plan = _write(tmp_path, "plan.yaml", "machines: {}\n")
    with pytest.raises(TopologyError, match="not a container plan"):
        import_topology([mainpc_config], plan=plan)


ANCHORS = """\
common: &common
  required: false
  dependencies: [ServiceRegistry]
agent_groups:
  foundation_services: &foundation
    ServiceRegistry: {port: "${PORT_OFFSET}+7200", health_check_port: "${PORT_OFFSET}+8200"}
    ModelManagerSuite:
      <<: *common
      port: "${PORT_OFFSET}+7211"
      health_check_port: "${PORT_OFFSET}+8211"
  gpu_infrastructure:
    # VRAMOptimizerAgent moved to foundation_services to avoid duplication
docker_groups:
  core: {description: core, agents: [ServiceRegistry, ModelManagerSuite]}
"""


def test_yaml_anchors_and_merge_keys(tmp_path: Path) -> None:
    t = import_topology([_write(tmp_path, "mainpc.startup_config.yaml", ANCHORS)], port_offset=10).topology
    mms = t.agent_by_key[("mainpc", "ModelManagerSuite")]
    assert (mms.port, mms.health_check_port, mms.required, mms.dependencies) == (
        7221, 8221, False, ("ServiceRegistry",))
    assert {a.name for a in t.agents} == {"ServiceRegistry", "ModelManagerSuite"}
