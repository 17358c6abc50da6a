"""The fleetobs image on the real daemon: one image for every role, non-root, an init that
passes signals on, a HEALTHCHECK that turns healthy on the hub's /ready."""

from __future__ import annotations

import time

from fleetobs.testing.docker.compose import health
from fleetobs.testing.docker.fleet import DockerSession

ROLES = ("hub", "gpu-exporter", "sidecar", "probe", "simulate", "simulate-group", "heartbeat")


def test_the_image_runs_as_a_non_root_user_with_an_init(docker_session: DockerSession) -> None:
    d, image = docker_session.docker, docker_session.images.fleetobs
    [info] = d.inspect(image, kind="image")
    config = info["Config"]
    assert config["User"] == "fleetobs:fleetobs"
    assert config["Entrypoint"][0] == "tini"
    assert config["Healthcheck"]["Test"] == ["CMD", "fleetobs-ready"]
    assert d("run", "--rm", image, "id", "-u", timeout=60).strip() == "10001"


def test_one_image_serves_every_role(docker_session: DockerSession) -> None:
    d, image = docker_session.docker, docker_session.images.fleetobs
    script = " && ".join(f"fleetobs {role} --help >/dev/null" for role in ROLES)
    # python3 on PATH imports fleetobs (the group healthcheck and relay run `python3 -m ...`).
    script += " && python3 -c 'import fleetobs, hub, exporters, zmq'"
    d("run", "--rm", "--entrypoint", "sh", image, "-c", script, timeout=120)


def test_the_hub_turns_healthy_and_stops_on_sigterm_at_once(docker_session: DockerSession) -> None:
    d, image = docker_session.docker, docker_session.images.fleetobs
    name = docker_session.run.project("image-hub")  # swept with the run if this test dies
    d("rm", "-f", name, check=False, timeout=60)
    d("run", "-d", "--name", name, "--label", f"com.docker.compose.project={name}", image, timeout=60)
    try:
        deadline = time.monotonic() + 60
        state = "starting"
        while time.monotonic() < deadline:
            state = health(d.inspect(name)[0])
            if state in ("healthy", "unhealthy"):
                break
            time.sleep(0.5)
        assert state == "healthy", d("logs", name, timeout=30, check=False)
        started = time.monotonic()
        d("stop", "--time", "10", name, timeout=60)
        stopped = time.monotonic() - started
        [info] = d.inspect(name)
        # SIGTERM reached Python through tini: a clean exit, not the SIGKILL after 10 s (137).
        assert info["State"]["ExitCode"] in (0, 143), info["State"]
        assert stopped < 5, f"docker stop took {stopped:.1f}s"
    finally:
        d("rm", "-f", name, check=False, timeout=60)
