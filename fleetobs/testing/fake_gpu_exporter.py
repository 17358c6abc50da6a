"""A GPU exporter on the fake NVML, as a process of its own, driven over stdin.

pynvml binds one library per process, so two machines' exporters on fake GPUs need two
processes. The child builds a machine's GPU from a plan (compose services' processes
in containers of a fake /proc, cgroup tree and Docker API, a desktop process on the host, one
process gone from /proc), serves /metrics, prints ``url <URL>``, then obeys one
command per stdin line, answering ``ok``:

    xid INDEX CODE        the driver reports an XID error on GPU INDEX
    fail FUNCTION CODE    FUNCTION returns NVML error CODE from now on

EOF on stdin stops it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType


def _serve(machine: str, workdir: Path, plan: Mapping[str, Sequence[int]]) -> None:
    from exporters.app import ExporterConfig, GpuExporter
    from exporters.testing.fake_cgroup import FakeCgroups, Usage
    from exporters.testing.fake_docker import FakeDockerApi, compose_container
    from exporters.testing.fake_nvml import MIB, FakeNvmlLibrary, FakeProcess, rtx_3060, rtx_4090
    from exporters.testing.fake_proc import FakeProc, container_id, host_v2
    from fleetobs.topology.load import load_topology

    topology = load_topology(None)
    groups = {g.name: g for g in topology.groups_on(machine)}
    dev = rtx_4090() if topology.machine(machine).gpu_memory_gib >= 24 else rtx_3060()
    dev.utilization, dev.temperature, dev.power_mw = (37, 21), 61, 182_000
    dev.event_reasons = 0x4  # software power cap
    proc = FakeProc(workdir / "proc")
    cgroups = FakeCgroups(workdir / "cgroup")  # never the host's: its containers are not these
    # AF_UNIX paths are limited to ~108 bytes: keep the Docker socket short.
    with tempfile.TemporaryDirectory(prefix="fleetobs-gpu-") as sock_dir, \
            FakeDockerApi(Path(sock_dir) / "docker.sock") as docker:
        pid = 1000
        for n, (group, sizes) in enumerate(plan.items()):
            cid = container_id(n + 1)
            docker.containers.append(compose_container(cid, groups[group].service_name))
            limit_gib = groups[group].memory_limit_gib or 16.0
            cgroups.set(cid, Usage(cpu_seconds=42.0 * (n + 1), memory_bytes=(n + 1) * 1536 * MIB,
                                   inactive_file_bytes=256 * MIB, limit_bytes=int(limit_gib * 1024 * MIB)))
            for size in sizes:
                pid += 1
                dev.processes.append(FakeProcess(pid, size * MIB))
                proc.add_in_container(pid, cid)
        dev.processes.append(FakeProcess(900, 300 * MIB, "graphics"))  # the desktop, on the host
        proc.add(900, host_v2())
        dev.processes.append(FakeProcess(901, 64 * MIB))  # gone from /proc: not attributable
        lib = FakeNvmlLibrary([dev])
        ex = GpuExporter(ExporterConfig(machine, proc_root=proc.root, docker_socket=docker.socket_path,
                                        cgroup_root=cgroups.root, interval_seconds=0.5), topology, library=lib).start()
        print(f"url {ex.url}", flush=True)
        try:
            for line in sys.stdin:
                words = line.split()
                if words[:1] == ["xid"]:
                    lib.emit_xid(int(words[1]), int(words[2]))
                elif words[:1] == ["fail"]:
                    lib.fail(words[1], int(words[2]))
                print("ok" if words else "", flush=True)
        finally:
            ex.stop()


class FakeGpuExporterProcess:
    """Parent side: ``with FakeGpuExporterProcess(machine, workdir, plan) as ex: ex.url``."""

    def __init__(self, machine: str, workdir: Path, plan: Mapping[str, Sequence[int]]) -> None:
        self.machine = machine
        self.workdir = workdir
        self.plan = dict(plan)
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> FakeGpuExporterProcess:
        return self.spawn().ready()

    def spawn(self) -> FakeGpuExporterProcess:
        """Start the child without waiting for it (start several, then :meth:`ready`)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "exporter.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fleetobs.testing.fake_gpu_exporter", self.machine, str(self.workdir),
             json.dumps(self.plan)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        log.close()
        return self

    def ready(self) -> FakeGpuExporterProcess:
        assert self.proc is not None and self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the child prints its URL once serving, or dies
        if not line.startswith("url "):
            self.__exit__(None, None, None)
            raise RuntimeError(f"fake GPU exporter {self.machine} did not start:\n"
                               f"{(self.workdir / 'exporter.log').read_text()[-3000:]}")
        self.url = line.split()[1]
        return self

    def command(self, *words: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(" ".join(map(str, words)) + "\n")
        self.proc.stdin.flush()
        if self.proc.stdout.readline().strip() != "ok":
            raise RuntimeError(f"fake GPU exporter {self.machine}: {words} failed")

    def xid(self, index: int, code: int) -> None:
        self.command("xid", index, code)

    def fail(self, function: str, code: int) -> None:
        self.command("fail", function, code)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # EOF: the child stops its exporter and exits
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


if __name__ == "__main__":
    _serve(sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3]))
