"""The suite needs nothing beside the checkout: a bare clone (committed files only, no
../shared, no build outputs) runs a quick part of it, the part that reads test data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleetobs.testing.binaries import in_ci

REPO = Path(__file__).resolve().parent.parent
#: Tests that read tests/fixtures (real startup configs, the plan, schemas) and the README.
SUBSET = ["tests/test_readme.py", "tests/fleetobs/topology/test_importer.py",
          "tests/fleetobs/topology/test_checks.py", "tests/hub/test_sd_http_only.py"]


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                          timeout=120).stdout.strip()


@pytest.mark.slow
def test_a_bare_clone_runs_the_tests_that_need_data(tmp_path: Path) -> None:
    try:
        head = _git("rev-parse", "HEAD", cwd=REPO)
    except (OSError, subprocess.CalledProcessError):
        if in_ci():
            pytest.fail("CI=true and the checkout is not a git repository")
        pytest.skip("not a git checkout")
    alone = tmp_path / "alone"  # nothing beside the clone: no ../shared
    alone.mkdir()
    clone = alone / "fleetobs"
    _git("clone", "-q", "--no-hardlinks", str(REPO), str(clone), cwd=tmp_path)
    _git("checkout", "-q", head, cwd=clone)
    assert sorted(p.name for p in alone.iterdir()) == ["fleetobs"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "PYTEST_"))}
    env["PYTHONPATH"] = str(clone)  # the clone's code, not this checkout's editable install
    where = subprocess.run([sys.executable, "-c", "import fleetobs, hub; print(fleetobs.__file__, hub.__file__)"],
                           cwd=clone, env=env, capture_output=True, text=True, check=True, timeout=60)
    assert all(p.startswith(str(clone)) for p in where.stdout.split()), where.stdout
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUBSET],
                         cwd=clone, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout.splitlines()[-1]
