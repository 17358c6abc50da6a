"""Container id -> compose service over a real unix socket (the fake Docker Engine API)."""

from __future__ import annotations

from pathlib import Path

from exporters.docker_api import DockerDirectory
from exporters.testing.clock import StepClock
from exporters.testing.fake_docker import FakeDockerApi, compose_container
from exporters.testing.fake_proc import container_id

A, B = container_id(1), container_id(2)


def test_compose_labels_name_the_service(docker_api: FakeDockerApi, clock: StepClock) -> None:
    docker_api.containers = [compose_container(A, "language-stack-gpu", project="mainpc")]
    d = DockerDirectory(docker_api.socket_path, clock=clock)
    assert d.service_of(A) == ("language-stack-gpu", "mainpc")
    assert d.up and d.reason is None
    d.close()


def test_a_container_without_compose_labels_is_named_by_its_name(
        docker_api: FakeDockerApi, clock: StepClock) -> None:
    docker_api.containers = [{"Id": A, "Names": ["/ollama"], "Labels": {}}]
    d = DockerDirectory(docker_api.socket_path, clock=clock)
    assert d.service_of(A) == ("ollama", None)
    d.close()


def test_the_list_is_cached_and_refreshed(docker_api: FakeDockerApi, clock: StepClock) -> None:
    docker_api.containers = [compose_container(A, "vision-gpu")]
    d = DockerDirectory(docker_api.socket_path, clock=clock, refresh_seconds=30,
                        min_refresh_seconds=2)
    for _ in range(5):
        assert d.service_of(A)[0] == "vision-gpu"
    assert docker_api.requests == ["/containers/json"]
    # A new container shows up: the first lookup after min_refresh_seconds refreshes early.
    docker_api.containers.append(compose_container(B, "reasoning-gpu"))
    assert d.service_of(B) == (B[:12], None)  # too soon after the last refresh
    clock.advance(2)
    assert d.service_of(B)[0] == "reasoning-gpu"
    assert len(docker_api.requests) == 2
    clock.advance(30)  # stale: refreshed even for known ids
    d.service_of(A)
    assert len(docker_api.requests) == 3
    d.close()


def test_no_socket_falls_back_to_the_short_id_and_says_so() -> None:
    d = DockerDirectory(None)
    assert d.service_of(A) == (A[:12], None)
    assert (d.up, d.reason) == (False, "no_socket")


def test_an_unreachable_socket_falls_back(tmp_path: Path, clock: StepClock) -> None:
    d = DockerDirectory(tmp_path / "missing.sock", clock=clock)
    assert d.service_of(A) == (A[:12], None)
    assert d.reason == "unreachable"
    d.close()


def test_http_errors_and_junk_are_reasons_then_recovery(
        docker_api: FakeDockerApi, clock: StepClock) -> None:
    d = DockerDirectory(docker_api.socket_path, clock=clock, min_refresh_seconds=1)
    docker_api.status = 500
    d.refresh()
    assert d.reason == "http_500"
    docker_api.status, docker_api.raw = 200, b"<html>not json"
    d.refresh()
    assert d.reason == "bad_response"
    docker_api.raw = b'[{"Names": ["/x"]}]'
    d.refresh()
    assert d.reason == "bad_response"
    docker_api.raw = None
    docker_api.containers = [compose_container(A, "utility-gpu")]
    clock.advance(1)
    assert d.service_of(A)[0] == "utility-gpu"
    assert d.up
    d.close()
