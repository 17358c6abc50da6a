"""Issue 13, finding 3: no state file can crash-loop the hub.

A damaged or foreign state database gave a 50-line traceback and exit 3 after "listening
on"; the schema version was never checked; a garbage WAL dropped all state silently.
Now: an unusable file is set aside with one warning and the hub starts empty; a row
that does not decode is skipped with one warning; a data dir where no database can be
made is exit 2 with one line. The fuzz test throws random bytes, truncations, byte
flips, foreign schemas, bad rows and garbage WALs at it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loguru import logger

from fleetobs.settings import load_settings
from fleetobs.topology.load import load_topology
from hub.api.agents import view
from hub.metrics import render_agents
from hub.observation import Observation
from hub.service import Hub, HubConfig
from hub.statefile import APPLICATION_ID, SCHEMA_VERSION, wal_problem
from hub.store import Store, StoreError
from hub.testing import FakeClock, HubHarness

GOOD_ROW = ("NLUAgent", "mainpc", "expected", "up", "ok", "heartbeat", 10.0, 1_799_999_990.0,
            1_799_999_990.0, None, "1.0", 42, None, None, '{"gpu": 0}')


def make_state(data_dir: Path, rows: int = 40) -> Path:
    """A real state file with ``rows`` agents, checkpointed (no WAL)."""
    store = Store(data_dir, "mainpc")
    store.open()
    store.write([(f"Agent{i}", *GOOD_ROW[1:]) for i in range(rows)] + [GOOD_ROW])
    store.close()
    return store.path


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """Warnings logged meanwhile (loguru), one string each."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING", format="{name} {message}")
    yield lines
    logger.remove(sink)


class Snapshot(bytes):
    """The bytes of a good state file (short repr: hypothesis prints test arguments)."""

    def __repr__(self) -> str:
        return f"<state file, {len(self)} bytes>"


@pytest.fixture(scope="module")
def good_db(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    return Snapshot(make_state(tmp_path_factory.mktemp("good")).read_bytes())


async def core_serves(data_dir: Path) -> None:
    """The hub core (no HTTP, for speed) starts on ``data_dir``, renders every record as
    the API and /metrics would, and flushes a change."""
    hub = Hub(load_topology(None), "mainpc", load_settings({}), data_dir, clock=FakeClock(),
              config=HubConfig(background=False))
    await hub.start()
    try:
        assert hub.ready
        for rec in hub.registry:
            json.dumps(view(rec, hub.now()), allow_nan=False).encode()
        render_agents(hub.registry.snapshot(), "mainpc", hub.now()).encode()
        hub.observe(Observation(agent="NLUAgent", machine="mainpc"))
        assert await hub.flush() >= 1
        assert not hub.counters.flush_failures
    finally:
        await hub.stop()


async def serves(data_dir: Path) -> int:
    """Start a hub on ``data_dir``; every read answers, a new beat is flushed. Returns rows restored."""
    async with HubHarness.build(data_dir) as h:
        restored = sum(1 for r in h.hub.registry if r.last_seen_wall is not None and r.name != "ObservabilityHub")
        for path in ("/v1/agents", "/v1/agents/NLUAgent", "/metrics", "/ready"):
            r = await h.client.get(path)
            assert r.status_code == 200, (path, r.text[:300])
        assert (await h.client.post("/v1/heartbeats", json={"agent": "NLUAgent"})).status_code == 200
        assert await h.hub.flush() >= 1
        assert not h.hub.counters.flush_failures
    return restored


# --- the regressions -------------------------------------------------------------------
@pytest.mark.asyncio
async def test_a_row_that_does_not_decode_is_skipped_with_a_warning(tmp_path: Path, logged: list[str]) -> None:
    path = make_state(tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE agents SET interval_seconds = 'thirty' WHERE name = 'Agent3'")
        db.execute("UPDATE agents SET state = 'sleeping' WHERE name = 'Agent4'")
        db.execute("UPDATE agents SET name = 'a\"b' WHERE name = 'Agent5'")  # would break /metrics
        db.execute("UPDATE agents SET last_seen_wall = 'yesterday' WHERE name = 'Agent6'")
    store = Store(tmp_path, "mainpc")
    store.open()
    rows = store.load()
    store.close()
    assert len(rows) == 41 - 4
    assert sorted(why for _, why in store.skipped_rows) == [
        "interval_seconds='thirty' is not a number", "last_seen_wall='yesterday' is not a number",
        "name='a\"b' is not an agent name", "state='sleeping' is not a state"]
    assert sum("skipped 4 row(s) that do not decode (first: " in m for m in logged) == 1, logged
    assert await serves(tmp_path) == 41 - 4
    text = (tmp_path / "hub-mainpc.sqlite3").read_bytes()
    assert text  # the file stayed (rows are skipped, the database is not set aside)


def test_text_that_is_not_utf8_is_restored_with_replacement_characters(tmp_path: Path) -> None:
    # sqlite3 refuses a whole query over one such value: the store reads again, replacing.
    path = make_state(tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE agents SET reason = CAST(X'6469736bff2066756c6c' AS TEXT) WHERE name = 'Agent3'")
    store = Store(tmp_path, "mainpc")
    store.open()
    try:
        rows = {r["name"]: r for r in store.load()}
        assert len(rows) == 41 and store.skipped_rows == []
        assert rows["Agent3"]["reason"] == "disk\ufffd full"
        assert store.load()[0]["name"]  # the connection reads normally afterwards
    finally:
        store.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(("ddl", "kind"), [
    # Another program's database in our file name.
    ("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);", "foreign"),
    # Our table names, another layout (a schema version that never existed).
    ("CREATE TABLE agents (name TEXT, status INTEGER); CREATE TABLE meta (key TEXT, value TEXT);"
     "INSERT INTO meta VALUES ('schema_version', '1');", "foreign"),
    # Written by a newer fleetobs.
    (f"CREATE TABLE agents (name TEXT); CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
     f"INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION + 1}');", "version"),
    # No version at all.
    ("CREATE TABLE agents (name TEXT); CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);", "foreign"),
    # Some other SQLite application, by its application_id.
    ("PRAGMA application_id = 1234; CREATE TABLE t (x);", "foreign"),
])
async def test_a_foreign_or_other_version_database_is_set_aside(tmp_path: Path, ddl: str, kind: str) -> None:
    path = tmp_path / "hub-mainpc.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(ddl)
    before = path.read_bytes()
    store = Store(tmp_path, "mainpc")
    store.open()
    assert store.set_aside_to is not None and store.set_aside_to.name.startswith(f"hub-mainpc.sqlite3.{kind}-")
    assert store.set_aside_to.read_bytes() == before  # kept as it was, for a human
    assert store.load() == []
    store.close()
    assert await serves(tmp_path) == 0
    with sqlite3.connect(path) as db:  # the new file is ours and versioned
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)


@pytest.mark.asyncio
async def test_a_database_of_the_first_release_is_still_read(tmp_path: Path) -> None:
    # Release 1 wrote no application_id: same tables, same version, so it is ours.
    path = make_state(tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA application_id = 0")
    assert await serves(tmp_path) == 41


@pytest.mark.parametrize("garbage", [b"\x00" * 4096, os.urandom(8192), b"SQLite format 3\x00" + b"\xff" * 5000])
def test_random_bytes_are_set_aside(tmp_path: Path, garbage: bytes) -> None:
    (tmp_path / "hub-mainpc.sqlite3").write_bytes(garbage)
    store = Store(tmp_path, "mainpc")
    store.open()
    assert store.set_aside_to is not None and store.set_aside_to.name.startswith("hub-mainpc.sqlite3.damaged-")
    assert store.load() == []
    store.close()


def test_a_garbage_wal_is_reported_and_moved_aside(tmp_path: Path, logged: list[str]) -> None:
    path = make_state(tmp_path)
    wal = path.with_name(path.name + "-wal")
    wal.write_bytes(os.urandom(40_000))
    assert wal_problem(wal) == "not a write-ahead log (bad magic number)"
    store = Store(tmp_path, "mainpc")
    store.open()
    assert store.set_aside_to is not None and store.set_aside_to.name.startswith("hub-mainpc.sqlite3-wal.damaged-")
    assert len(store.load()) == 41  # the checkpointed state is still there
    store.close()
    assert len(logged) == 1 and "write-ahead log" in logged[0]
    assert "is damaged (not a write-ahead log (bad magic number))" in logged[0]


def test_a_real_wal_left_by_a_crash_is_replayed_not_reported(tmp_path: Path) -> None:
    path = make_state(tmp_path, rows=3)
    # A crash: a second connection keeps the WAL from being checkpointed and removed.
    keep = sqlite3.connect(path)
    keep.execute("SELECT 1 FROM agents").fetchall()
    store = Store(tmp_path, "mainpc")
    store.open()
    store.write([("Late", *GOOD_ROW[1:])])
    wal = path.with_name(path.name + "-wal")
    copy = tmp_path / "crash"
    copy.mkdir()
    shutil.copy(path, copy / path.name)
    shutil.copy(wal, copy / wal.name)
    store.close()
    keep.close()
    assert wal_problem(copy / wal.name) is None
    after = Store(copy, "mainpc")
    after.open()
    assert after.set_aside_to is None
    assert "Late" in {r["name"] for r in after.load()}
    # The same WAL with its first frame's checksum broken: every change in it would be lost.
    data = bytearray((copy / wal.name).read_bytes())
    data[32 + 24 + 100] ^= 0xFF
    (copy / wal.name).write_bytes(bytes(data))
    assert wal_problem(copy / wal.name) == "first frame checksum mismatch"
    after.close()


def test_a_data_dir_where_nothing_can_be_created_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(StoreError, match="cannot open the hub state database"):
        Store(blocker / "sub", "mainpc").open()


# --- the command: starts (one warning) or exits 2 (one line) ---------------------------
@contextmanager
def hub_process(data_dir: Path) -> Iterator[subprocess.Popen[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    env.update({"FLEET_PROBE_ENABLED": "false", "FLEET_GPU_EXPORTER_URL": "off", "FLEET_LOG_LEVEL": "INFO"})
    proc = subprocess.Popen([sys.executable, "-m", "fleetobs.cli.main", "hub", "--port", "0",
                             "--data-dir", str(data_dir)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def start_and_read_log(data_dir: Path) -> list[str]:
    """Run the hub until /ready answers 200; returns its stderr lines."""
    with hub_process(data_dir) as proc:
        assert proc.stderr is not None
        lines: list[str] = []
        deadline = time.monotonic() + 90
        url = None
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if " listening on " in line:
                url = line.rsplit(" ", 1)[1].strip()
        assert url is not None, "\n".join(lines)
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("never ready:\n" + "\n".join(lines))
        assert httpx.get(url + "/v1/agents", timeout=5).status_code == 200
        proc.terminate()
        _, rest = proc.communicate(timeout=30)
        lines += rest.splitlines()
        assert proc.returncode in (0, -15), "\n".join(lines)  # uvicorn re-raises SIGTERM
    return lines


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["bytes", "foreign", "version", "row", "wal"])
def test_the_hub_command_starts_with_one_warning_line(tmp_path: Path, damage: str) -> None:
    path = make_state(tmp_path)
    if damage == "bytes":
        path.write_bytes(os.urandom(20_000))
    elif damage in ("foreign", "version"):
        path.unlink()
        with sqlite3.connect(path) as db:
            db.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
                             "CREATE TABLE agents (name TEXT);"
                             f"INSERT INTO meta VALUES ('schema_version', '{99 if damage == 'version' else 1}');")
    elif damage == "row":
        with sqlite3.connect(path) as db:
            db.execute("UPDATE agents SET interval_seconds = 'thirty' WHERE name = 'NLUAgent'")
    else:
        path.with_name(path.name + "-wal").write_bytes(os.urandom(10_000))
    lines = start_and_read_log(tmp_path)
    warnings = [ln for ln in lines if " WARNING " in ln and "hub.store" in ln]
    assert len(warnings) == 1, "\n".join(lines)
    assert not any("Traceback" in ln or " ERROR " in ln for ln in lines), "\n".join(lines)


def test_the_hub_command_exits_2_with_one_line_when_no_database_can_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with hub_process(blocker / "data") as proc:
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert len(err.strip().splitlines()) == 1 and "--data-dir/FLEET_DATA_DIR: " in err, err


# --- fuzz ------------------------------------------------------------------------------
def _rows_strategy() -> st.SearchStrategy[list[tuple[object, ...]]]:
    value = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True),
                      st.text(max_size=40), st.binary(max_size=20),
                      st.sampled_from(["up", "down", "ok", "error", "NLUAgent", "mainpc", "{", "[]",
                                       '{"a": NaN}', '{"x": "\\ud800"}', "thirty"]))
    return st.lists(st.tuples(*([value] * 15)), min_size=1, max_size=5)


damage = st.one_of(
    st.tuples(st.just("bytes"), st.binary(max_size=2048)),
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=30)),
    st.tuples(st.just("rows"), _rows_strategy()),
    st.tuples(st.just("wal"), st.binary(min_size=1, max_size=2048)),
    st.tuples(st.just("schema"), st.sampled_from([
        "CREATE TABLE agents (x)", "CREATE TABLE meta (key, value); INSERT INTO meta VALUES ('schema_version', 'x')",
        "CREATE VIEW agents AS SELECT 1", "PRAGMA user_version = 7; CREATE TABLE z (a)",
    ])),
)


def apply_damage(path: Path, good: bytes, how: tuple[object, ...]) -> None:
    kind = how[0]
    path.write_bytes(good)
    if kind == "bytes":
        assert isinstance(how[1], bytes)
        path.write_bytes(how[1])
    elif kind == "truncate":
        assert isinstance(how[1], float)
        path.write_bytes(good[: int(len(good) * how[1])])
    elif kind == "flip":
        data = bytearray(good)
        for where, xor in how[1]:  # type: ignore[attr-defined]
            data[min(int(where * len(data)), len(data) - 1)] ^= xor
        path.write_bytes(bytes(data))
    elif kind == "rows":
        with sqlite3.connect(path) as db:
            db.executemany("INSERT OR IGNORE INTO agents VALUES (" + ",".join("?" * 15) + ")",
                           how[1])  # type: ignore[arg-type]
    elif kind == "wal":
        assert isinstance(how[1], bytes)
        path.with_name(path.name + "-wal").write_bytes(how[1])
    else:
        path.unlink()
        with sqlite3.connect(path) as db:
            db.executescript(str(how[1]))


@given(how=damage)
@settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_state_file_stops_the_hub(good_db: Snapshot, tmp_path_factory: pytest.TempPathFactory,
                                     how: tuple[object, ...]) -> None:
    data_dir = tmp_path_factory.mktemp("fuzz")
    apply_damage(data_dir / "hub-mainpc.sqlite3", good_db, how)
    store = Store(data_dir, "mainpc")
    try:
        store.open()  # sets aside what it cannot use; never anything but StoreError
        store.load()
    except StoreError as exc:
        raise AssertionError(f"a data dir that works was refused: {exc}") from exc
    finally:
        store.close()
    asyncio.run(core_serves(data_dir))
