from __future__ import annotations

from pathlib import Path

import pytest

from fleetobs.settings import ENV_VARS, DiscoveryMode, SettingsError, load_settings, parse_size

PLAN_NAMES = {"MACHINE_TYPE", "CONTAINER_ROLE", "BIND_ADDRESS", "SERVICE_DISCOVERY_MODE",
              "CROSS_MACHINE_DISCOVERY_ENDPOINT", "PORT_OFFSET", "GPU_MEMORY_LIMIT"}


def test_embedded_defaults_need_no_environment() -> None:
    s = load_settings({})
    assert (s.machine, s.bind_address, s.discovery_mode, s.port_offset, s.topology, s.data_dir) == (
        "mainpc", "127.0.0.1", DiscoveryMode.HOST, 0, None, Path(".fleetobs"))


def test_container_plan_names_are_honoured() -> None:
    s = load_settings({"MACHINE_TYPE": "pc2", "CONTAINER_ROLE": "infra_core_cpu", "BIND_ADDRESS": "0.0.0.0",
                       "SERVICE_DISCOVERY_MODE": "container_dns",
                       "CROSS_MACHINE_DISCOVERY_ENDPOINT": "http://mainpc-observability:9000",
                       "PORT_OFFSET": "100", "GPU_MEMORY_LIMIT": "8GB"})
    assert (s.machine, s.container_role, s.bind_address, s.discovery_mode, s.port_offset) == (
        "pc2", "infra_core_cpu", "0.0.0.0", DiscoveryMode.CONTAINER_DNS, 100)
    assert s.gpu_memory_limit_bytes == 8 * 1024**3
    assert s.peer_urls() == ("http://mainpc-observability:9000",)


def test_every_plan_name_and_fleet_prefix_is_mapped() -> None:
    assert set(ENV_VARS) >= PLAN_NAMES
    assert all(n in PLAN_NAMES or n.startswith("FLEET_") or n.endswith("_OBSERVABILITY_ENDPOINT")
               for n in ENV_VARS)


def test_every_variable_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    missing = [n for n in ENV_VARS if f"`{n}`" not in doc]
    assert missing == []


def test_the_process_environment_is_not_read_when_one_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MACHINE_TYPE", "pc2")
    assert load_settings({}).machine == "mainpc"
    assert load_settings().machine == "pc2"


def test_overrides_win_over_the_environment() -> None:
    assert load_settings({"MACHINE_TYPE": "pc2"}, machine="mainpc").machine == "mainpc"


def test_peers_from_fleet_peers_or_plan_names() -> None:
    assert load_settings({"FLEET_PEERS": "http://a:1, http://b:2,"}).peer_urls() == ("http://a:1", "http://b:2")
    s = load_settings({"MACHINE_TYPE": "pc2", "MAINPC_OBSERVABILITY_ENDPOINT": "http://m:9000",
                       "PC2_OBSERVABILITY_ENDPOINT": "http://p:9100"})
    assert s.peer_urls() == ("http://m:9000",)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT_OFFSET": "abc"}, "PORT_OFFSET='abc': Input should be a valid integer"),
        ({"PORT_OFFSET": "-1"}, "PORT_OFFSET='-1': Input should be greater than or equal to 0"),
        ({"SERVICE_DISCOVERY_MODE": "dns"},
         "SERVICE_DISCOVERY_MODE='dns': Input should be 'container_dns', 'host' or 'static'"),
        ({"GPU_MEMORY_LIMIT": "lots"}, "GPU_MEMORY_LIMIT='lots': Value error, cannot read 'lots' as a size"),
        ({"FLEET_HUB_PORT": "99999"}, "FLEET_HUB_PORT='99999': Input should be less than or equal to 65535"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as exc:
        load_settings(env)
    assert str(exc.value).startswith(message)


@pytest.mark.parametrize(("text", "expected"), [("8GB", 8 * 1024**3), ("8GiB", 8 * 1024**3), ("512M", 512 * 1024**2),
                                                ("1024", 1024), ("1.5G", int(1.5 * 1024**3)), ("10 KB", 10240)])
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected
