"""GPU exporter benchmark with the fake NVML library (no GPU needed).

Prints, for 1 GPU / 50 processes and 4 GPUs / 200 processes:

* collect time (one background collection: NVML calls through nvidia-ml-py's real
  bindings, /proc reads, Docker API cache, attribution), median and p95, beside an
  anchor: the bare NVML calls alone, so the ratio is the exporter's own overhead;
* scrape time (GET /metrics over real HTTP), with a fast driver and with a slow one
  (every NVML call +2 ms, PCIe +20 ms): the ratio shows scrapes do not depend on NVML;
* resident memory of a running exporter process, beside a bare interpreter.

Goals (issue 6): collect <= 5 ms, scrape independent of NVML, RSS <= 60 MB.
Run: python bench/gpu_exporter_bench.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from exporters.app import ExporterConfig, GpuExporter
from exporters.nvml import Nvml
from exporters.testing.fake_docker import FakeDockerApi, compose_container
from exporters.testing.fake_nvml import MIB, FakeNvmlLibrary, FakeProcess, rtx_4090
from exporters.testing.fake_proc import FakeProc, container_id, host_v2
from fleetobs.topology.load import load_topology

SERVICES = ["language-stack-gpu", "vision-gpu", "reasoning-gpu", "utility-gpu",
            "model-manager-gpu", "audio-emotion"]


def _timings(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    for _ in range(min(20, rounds)):
        fn()  # warm-up: imports, caches, the Docker list
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def _setup(root: Path, docker: FakeDockerApi, gpus: int, processes: int) -> FakeNvmlLibrary:
    proc = FakeProc(root / "proc")
    devices = [rtx_4090(f"GPU-bench-{i}") for i in range(gpus)]
    docker.containers = [compose_container(container_id(i), s) for i, s in enumerate(SERVICES)]
    forms = ["v2_systemd", "v1_cgroupfs", "v2_cgroupfs", "v2_private_namespace"]
    for n in range(processes):
        pid = 10_000 + n
        devices[n % gpus].processes.append(FakeProcess(pid, (n % 7 + 1) * 64 * MIB,
                                                       "graphics" if n % 10 == 0 else "compute"))
        if n % 9 == 0:
            proc.add(pid, host_v2())
        else:
            proc.add_in_container(pid, container_id(n % len(SERVICES)), forms[n % len(forms)])
    return FakeNvmlLibrary(devices)


def _bare_nvml(lib: FakeNvmlLibrary) -> Callable[[], object]:
    """The anchor: the NVML calls a collection makes, and nothing else."""
    nvml = Nvml(lib)
    nvml.init()
    handles = [nvml.handle(i) for i in range(nvml.device_count())]

    def run() -> None:
        for h in handles:
            nvml.memory(h)
            nvml.utilization(h)
            nvml.temperature(h)
            nvml.power_milliwatts(h)
            nvml.energy_millijoules(h)
            for c in ("graphics", "sm", "memory"):
                nvml.clock_mhz(h, c)
            nvml.fan_percent(h)
            nvml.performance_state(h)
            nvml.clock_event_reasons(h)
            nvml.processes(h)

    return run


def bench_config(gpus: int, processes: int, rounds: int) -> None:
    topology = load_topology(None)
    with tempfile.TemporaryDirectory(prefix="fleetobs-bench-") as d:
        root = Path(d)
        with FakeDockerApi(root / "docker.sock") as docker:
            lib = _setup(root, docker, gpus, processes)
            bare = _timings(_bare_nvml(lib), rounds)
            ex = GpuExporter(ExporterConfig("mainpc", proc_root=root / "proc",
                                            docker_socket=docker.socket_path), topology,
                             library=lib)
            collect = _timings(ex.collector.collect_once, rounds)
            snap = ex.collector.snapshot()
            attributed = sum(u.processes for u in snap.attribution.services)
            assert attributed == processes, (attributed, processes)
            ex.server.start()
            with httpx.Client(base_url=ex.url) as client:
                scrape_fast = _timings(lambda: client.get("/metrics").raise_for_status(),
                                       rounds)
                size = len(client.get("/metrics").content)
                lib.call_delay_seconds, lib.pcie_delay_seconds = 0.002, 0.02
                slow_collect = _timings(ex.collector.collect_once, max(5, rounds // 20))
                scrape_slow = _timings(lambda: client.get("/metrics").raise_for_status(),
                                       rounds)
            ex.stop()
    ms = 1000.0
    print(f"\n{gpus} GPU(s) / {processes} processes ({attributed} attributed, "
          f"/metrics {size} bytes), {rounds} rounds")
    print(f"  collect           median {collect[0] * ms:7.3f} ms   p95 {collect[1] * ms:7.3f} ms"
          f"   goal <= 5 ms: {'OK' if collect[0] <= 0.005 else 'MISSED'}")
    print(f"  anchor: bare NVML median {bare[0] * ms:7.3f} ms   p95 {bare[1] * ms:7.3f} ms"
          f"   collect/anchor = {collect[0] / bare[0]:.2f}x")
    print(f"  scrape, fast NVML median {scrape_fast[0] * ms:7.3f} ms   p95 "
          f"{scrape_fast[1] * ms:7.3f} ms")
    print(f"  scrape, slow NVML median {scrape_slow[0] * ms:7.3f} ms   p95 "
          f"{scrape_slow[1] * ms:7.3f} ms   slow/fast = {scrape_slow[0] / scrape_fast[0]:.2f}x "
          f"(slow collect: {slow_collect[0] * ms:.1f} ms)")


_RSS_CHILD = textwrap.dedent("""
    import sys, tempfile, time, httpx
    from pathlib import Path
    def rss():
        for line in open('/proc/self/status'):
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    if sys.argv[1] == 'anchor':
        import pynvml  # the interpreter plus the NVML bindings
        print(rss()); sys.exit(0)
    sys.path.insert(0, sys.argv[2])
    from gpu_exporter_bench import _setup
    from exporters.app import ExporterConfig, GpuExporter
    from exporters.testing.fake_docker import FakeDockerApi
    from fleetobs.topology.load import load_topology
    with tempfile.TemporaryDirectory(prefix='fleetobs-rss-') as d, \\
            FakeDockerApi(Path(d) / 'docker.sock') as docker:
        lib = _setup(Path(d), docker, 4, 200)
        ex = GpuExporter(ExporterConfig('mainpc', proc_root=Path(d) / 'proc',
                         docker_socket=docker.socket_path, interval_seconds=0.05),
                         load_topology(None), library=lib).start()
        with httpx.Client(base_url=ex.url) as c:
            for _ in range(40):
                c.get('/metrics'); c.get('/v1/gpus'); time.sleep(0.05)
        print(rss())
        ex.stop()
""")


def bench_rss() -> None:
    here = str(Path(__file__).resolve().parent)
    out = {}
    for mode in ("anchor", "exporter"):
        r = subprocess.run([sys.executable, "-c", _RSS_CHILD, mode, here], capture_output=True,
                           text=True, check=True, timeout=120)
        out[mode] = int(r.stdout.strip().splitlines()[-1])
    mb = 1e6
    print("\nRSS of a running exporter (4 GPUs / 200 processes, HTTP server, collector, "
          "PCIe and XID threads, the fake Docker API in-process)")
    print(f"  exporter {out['exporter'] / mb:6.1f} MB   goal <= 60 MB: "
          f"{'OK' if out['exporter'] <= 60 * mb else 'MISSED'}")
    print(f"  anchor: python + pynvml {out['anchor'] / mb:6.1f} MB   "
          f"exporter/anchor = {out['exporter'] / out['anchor']:.2f}x")


def bench_cli_rss() -> None:
    """The production process: ``fleetobs gpu-exporter`` (real NVML if this machine has one)."""
    with tempfile.TemporaryDirectory(prefix="fleetobs-cli-") as d:
        cmd = [sys.executable, "-m", "fleetobs.cli.main", "gpu-exporter", "--port", "0",
               "--docker-socket", str(Path(d) / "absent.sock")]
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            url = None
            while url is None:
                line = proc.stderr.readline()
                if not line:
                    raise RuntimeError("fleetobs gpu-exporter exited before serving")
                if " on http://" in line:
                    url = line.split(" on ", 1)[1].split()[0]
            with httpx.Client(base_url=url) as c:
                for _ in range(20):
                    c.get("/metrics")
                    time.sleep(0.1)
            rss = next(int(x.split()[1]) * 1024 for x in
                       Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                       if x.startswith("VmRSS:"))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"  fleetobs gpu-exporter process (the CLI, after 20 scrapes) {rss / 1e6:6.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}; fake NVML under nvidia-ml-py's real bindings")
    bench_config(1, 50, args.rounds)
    bench_config(4, 200, args.rounds)
    bench_rss()
    bench_cli_rss()


if __name__ == "__main__":
    main()
