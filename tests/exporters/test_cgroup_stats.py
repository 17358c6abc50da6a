"""A container's CPU, working set, limit and OOM kills from cgroup v2 and v1 files."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from exporters.cgroup_stats import CgroupTree
from exporters.testing.fake_cgroup import FakeCgroups, Usage
from exporters.testing.fake_proc import FakeProc, container_id

CID = container_id(7)
MIB = 1024**2

LAYOUTS: list[tuple[Literal[1, 2], Literal["systemd", "cgroupfs"], str]] = [
    (2, "systemd", "cpu,cpuacct"), (2, "cgroupfs", "cpu,cpuacct"),
    (1, "cgroupfs", "cpu,cpuacct"), (1, "cgroupfs", "cpuacct"), (1, "systemd", "cpuacct"),
]


@pytest.mark.parametrize(("version", "driver", "cpu_dir"), LAYOUTS)
def test_every_layout_reads_the_same_figures(tmp_path: Path, version: Literal[1, 2],
                                             driver: Literal["systemd", "cgroupfs"], cpu_dir: str) -> None:
    fake = FakeCgroups(tmp_path / "cg", version, driver, cpu_dir)
    fake.set(CID, Usage(cpu_seconds=12.5, memory_bytes=300 * MIB, inactive_file_bytes=100 * MIB,
                        limit_bytes=512 * MIB, oom_kills=2))
    s = CgroupTree(fake.root).stats(CID)
    assert s is not None
    assert s.cpu_seconds == pytest.approx(12.5)
    assert s.memory_working_set_bytes == 200 * MIB  # usage minus inactive file cache
    assert s.memory_limit_bytes == 512 * MIB
    assert s.oom_kills == 2


@pytest.mark.parametrize("version", [1, 2])
def test_no_limit_reads_as_zero(tmp_path: Path, version: Literal[1, 2]) -> None:
    fake = FakeCgroups(tmp_path / "cg", version)
    fake.set(CID, Usage(memory_bytes=10 * MIB))
    s = CgroupTree(fake.root).stats(CID)
    assert s is not None and s.memory_limit_bytes == 0


def test_a_stopped_container_has_no_cgroup(tmp_path: Path) -> None:
    fake = FakeCgroups(tmp_path / "cg", 2)
    fake.set(CID, Usage())
    fake.remove(CID)
    assert CgroupTree(fake.root).stats(CID) is None
    assert CgroupTree(tmp_path / "nothing-mounted").stats(CID) is None


def test_a_missing_file_leaves_only_its_figure_out(tmp_path: Path) -> None:
    fake = FakeCgroups(tmp_path / "cg", 2)
    fake.set(CID, Usage(cpu_seconds=1.0, memory_bytes=5 * MIB, oom_kills=1))
    (fake.dirs(CID)[0] / "memory.events").unlink()
    (fake.dirs(CID)[0] / "cpu.stat").write_text("garbage\n")
    s = CgroupTree(fake.root).stats(CID)
    assert s is not None
    assert (s.cpu_seconds, s.oom_kills) == (None, None)
    assert s.memory_working_set_bytes == 5 * MIB


def test_a_cgroup_parent_elsewhere_is_found_through_the_main_pid(tmp_path: Path) -> None:
    """``--cgroup-parent``: the container's cgroup is wherever its main process says."""
    root = tmp_path / "cg"
    (root / "custom.slice" / "mine").mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpu memory\n")
    d = root / "custom.slice" / "mine"
    (d / "memory.current").write_text("4096\n")
    proc = FakeProc(tmp_path / "proc")
    proc.add(77, "0::/custom.slice/mine\n")
    assert CgroupTree(root, proc.root).stats(CID, pid=77) is not None
    # A namespace-relative path (the exporter in a private cgroup namespace) is useless.
    proc.add(78, "0::/../custom.slice/mine\n")
    assert CgroupTree(root, proc.root).stats(CID, pid=78) is None
    # The root cgroup is the host's own, never a container's.
    proc.add(79, "0::/\n")
    assert CgroupTree(root, proc.root).stats(CID, pid=79) is None
