"""Container states from the Docker API (the fake, on a real unix socket)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from exporters.docker_state import DockerStateError, DockerStates, parse_time
from exporters.testing.fake_docker import FakeDockerApi, inspect
from exporters.testing.fake_proc import container_id

A, B = container_id(1), container_id(2)


def test_every_container_is_inspected_stopped_ones_too(docker_api: FakeDockerApi) -> None:
    docker_api.set(inspect(A, "hub", "mainpc", restart_count=3, memory_limit=256 * 1024**2, pid=99),
                   inspect(B, "vision-gpu", "mainpc", running=False, oom_killed=True,
                           finished_at="2026-01-01T11:00:00Z"))
    d = DockerStates(docker_api.socket_path)
    by_service = {s.service: s for s in d.states()}
    d.close()
    hub, vision = by_service["hub"], by_service["vision-gpu"]
    assert (hub.running, hub.restart_count, hub.pid, hub.memory_limit_bytes) == (True, 3, 99, 256 * 1024**2)
    assert hub.project == "mainpc"
    assert (vision.running, vision.oom_killed, vision.pid) == (False, True, 0)
    assert vision.finished_at == datetime(2026, 1, 1, 11, tzinfo=UTC)
    assert f"/containers/{A}/json" in docker_api.requests


def test_a_restarting_container_is_not_running(docker_api: FakeDockerApi) -> None:
    docker_api.set(inspect(A, "hub", restarting=True, restart_count=5))
    d = DockerStates(docker_api.socket_path)
    [s] = d.states()
    d.close()
    assert (s.running, s.restart_count, s.pid) == (False, 5, 0)


def test_the_project_filter_goes_to_the_api(docker_api: FakeDockerApi) -> None:
    docker_api.set(inspect(A, "hub", "mainpc"), inspect(B, "hub", "pc2"))
    d = DockerStates(docker_api.socket_path)
    assert [s.id for s in d.states("pc2")] == [B]
    assert len(d.states()) == 2
    d.close()


def test_a_container_removed_between_list_and_inspect_is_left_out(docker_api: FakeDockerApi) -> None:
    docker_api.set(inspect(A, "hub"), inspect(B, "gone"))
    docker_api.vanished.add(B)  # listed, then 404 for its inspect
    d = DockerStates(docker_api.socket_path)
    assert [s.id for s in d.states()] == [A]
    d.close()


def test_api_failures_name_a_reason(tmp_path: Path, docker_api: FakeDockerApi) -> None:
    with pytest.raises(DockerStateError) as err:
        DockerStates(tmp_path / "missing.sock").states()
    assert err.value.reason == "unreachable"
    docker_api.status = 500
    d = DockerStates(docker_api.socket_path)
    with pytest.raises(DockerStateError) as err:
        d.states()
    assert err.value.reason == "http_500"
    docker_api.status = 200
    docker_api.raw = b"{not json"
    with pytest.raises(DockerStateError) as err:
        d.states()
    assert err.value.reason == "bad_response"
    d.close()


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-01-01T10:00:00.123456789Z", datetime(2026, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)),
    ("2026-01-01T10:00:00Z", datetime(2026, 1, 1, 10, tzinfo=UTC)),
    ("2026-01-01T12:00:00.5+02:00", datetime(2026, 1, 1, 10, 0, 0, 500000, tzinfo=UTC)),
])
def test_docker_times_keep_their_order(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


def test_the_zero_time_and_garbage_are_the_zero_time() -> None:
    zero = parse_time("0001-01-01T00:00:00Z")
    assert zero == parse_time("garbage") == parse_time(None)
    assert zero < parse_time("2026-01-01T10:00:00Z")
