"""URL factory, and behaviour specific to the embedded implementations (not in the conformance suites)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import BinaryIO

import fastavro
import pytest

from rvcloud.backends.blob.file import FileBlobStore
from rvcloud.backends.bus.memory import MemoryBus
from rvcloud.backends.bus.sqlite import SqliteBus
from rvcloud.backends.factory import open_blob_store, open_event_bus, open_status_store, open_warehouse
from rvcloud.backends.warehouse.duckdb import DuckDBWarehouse
from rvcloud.metadata.archive_path import InvalidKey
from rvcloud.metadata.sqlite import SqliteStatusStore
from rvcloud.mrt.schema import avro_schema, empty_row

# ---- factory ------------------------------------------------------------------------


def test_open_blob_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_blob_store(f"file://{tmp_path}/blobs")
    assert isinstance(store, FileBlobStore) and store.root == tmp_path / "blobs"
    monkeypatch.chdir(tmp_path)
    rel = open_blob_store("file://rel/dir")
    assert isinstance(rel, FileBlobStore) and rel.root == tmp_path / "rel" / "dir"
    with rel.writer("k") as w:
        w.write(b"v")
        w.commit()
    # Opening by URI, as the warehouse does.
    assert rel.open(rel.key_for_uri(rel.uri("k"))).read() == b"v"
    assert rel.uri("k") == f"file://{tmp_path}/rel/dir/k"


def test_open_event_bus(tmp_path: Path) -> None:
    a = open_event_bus("memory://shared-test")
    assert isinstance(a, MemoryBus)
    assert open_event_bus("memory://shared-test") is a  # one bus per name in a process
    assert open_event_bus("memory://other-test") is not a
    a.close()
    fresh = open_event_bus("memory://shared-test")  # a closed bus is not handed out again
    assert fresh is not a
    fresh.publish("t", {})
    fresh.close()
    b = open_event_bus(f"sqlite://{tmp_path}/bus.db?lease=5&poll=0.05&backoff=0.5")
    assert isinstance(b, SqliteBus)
    assert (b.path, b.lease, b.poll, b.backoff) == (tmp_path / "bus.db", 5.0, 0.05, 0.5)
    b.close()
    with pytest.raises(ValueError, match="unknown parameter"):
        open_event_bus(f"sqlite://{tmp_path}/bus.db?lease_seconds=5")
    with pytest.raises(ValueError, match="must be a number"):
        open_event_bus(f"sqlite://{tmp_path}/bus.db?lease=long")


def test_open_status_store_and_warehouse(tmp_path: Path) -> None:
    s = open_status_store(f"sqlite://{tmp_path}/status.db")
    assert isinstance(s, SqliteStatusStore) and s.path == tmp_path / "status.db"
    s.ping()
    s.close()
    blobs = open_blob_store(f"file://{tmp_path}/blobs")
    wh = open_warehouse(f"duckdb://{tmp_path}/wh.duckdb", blobs)
    assert isinstance(wh, DuckDBWarehouse) and wh.path == tmp_path / "wh.duckdb"


@pytest.mark.parametrize(
    ("fn", "url", "match"),
    [
        (open_blob_store, "s3://bucket", "expected file:///abs/dir or gs://"),
        (open_event_bus, "kafka://x", "expected memory://"),
        (open_status_store, "/no/scheme.db", "expected sqlite://"),
        (open_status_store, "sqlite://", "names no path"),
    ],
)
def test_unknown_schemes(fn: object, url: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fn(url)  # type: ignore[operator]


def test_unknown_warehouse_scheme(tmp_path: Path) -> None:
    blobs = open_blob_store(f"file://{tmp_path}/b")
    with pytest.raises(ValueError, match="bigquery://PROJECT/DATASET"):
        open_warehouse("snowflake://x", blobs)


# ---- file blob store ----------------------------------------------------------------


def test_file_store_reserved_and_overlong_keys(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    for key in (".tmp/x", ".meta/x", "a/" + "x" * 256):
        with pytest.raises(InvalidKey):
            store.writer(key)
    with store.writer("a/" + "x" * 255, metadata={"m": "1"}) as w:  # longest file name, sidecar fits
        w.write(b"v")
        w.commit()
    assert store.stat("a/" + "x" * 255).metadata == {"m": "1"}


def test_file_store_list_skips_internal_and_stray_files(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    with store.writer("k", metadata={"a": "b"}) as w:
        w.write(b"v")
        w.commit()
        leftover = store.writer("in-progress")
        leftover.write(b"x")
    (tmp_path / "stray file").write_text("not a valid key")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "by-hand").write_text("hand-placed")
    assert [(i.key, i.size) for i in store.list()] == [("dir/by-hand", 11), ("k", 1)]
    # An object placed by hand has the default content type and no metadata.
    assert (store.stat("dir/by-hand").content_type, dict(store.stat("dir/by-hand").metadata)) == (
        "application/octet-stream",
        {},
    )
    leftover.abort()
    assert os.listdir(tmp_path / ".tmp") == []


def test_file_store_directory_is_not_an_object(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    with store.writer("a/b") as w:
        w.write(b"v")
        w.commit()
    assert not store.exists("a")
    with pytest.raises(KeyError):
        store.open("a")
    store.delete("a")  # a directory: nothing happens
    assert store.exists("a/b")


def test_file_store_replace_removes_old_sidecar(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    for i in range(5):
        with store.writer("k", metadata={"v": str(i)}) as w:
            w.write(b"x" * i)
            w.commit()
    sidecars = [p for p in (tmp_path / ".meta").rglob("*.json")]
    assert len(sidecars) == 1
    assert store.stat("k").metadata == {"v": "4"}
    store.delete("k")
    assert list((tmp_path / ".meta").rglob("*.json")) == []


# ---- memory bus ---------------------------------------------------------------------


def test_memory_bus_join_waits_for_the_pipeline() -> None:
    bus = MemoryBus(backoff=0.01)
    seen: list[int] = []

    def stage1(msg: object) -> None:
        bus.publish("b", {"n": msg.data["n"] * 10})  # type: ignore[attr-defined]

    def stage2(msg: object) -> None:
        seen.append(msg.data["n"])  # type: ignore[attr-defined]

    bus.subscribe("a", stage1, concurrency=2)
    bus.subscribe("b", stage2)
    for i in range(20):
        bus.publish("a", {"n": i})
    bus.join(10)
    assert sorted(seen) == [i * 10 for i in range(20)]
    assert bus.pending("a") == bus.pending("b") == 0
    bus.close()


def test_memory_bus_join_times_out_on_a_stuck_handler() -> None:
    bus = MemoryBus()
    release = threading.Event()
    bus.subscribe("a", lambda m: release.wait(10) and None)
    bus.publish("a", {})
    with pytest.raises(TimeoutError, match="'a'"):
        bus.join(0.2)
    release.set()
    bus.join(5)
    bus.close()


# ---- DuckDB warehouse: other processes get their turn ----------------------------------

READER = textwrap.dedent(
    """
    import sys
    from rvcloud.backends.warehouse.duckdb import DuckDBWarehouse

    wh = DuckDBWarehouse(sys.argv[1], lambda uri: open(uri, "rb"))
    print(wh.query("SELECT count(*) FROM updates")[0][0])
    """
)


def test_other_process_can_query_between_loads(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path / "blobs")
    wh = DuckDBWarehouse(tmp_path / "wh.duckdb", lambda uri: blobs.open(blobs.key_for_uri(uri)))
    wh.ensure_tables()
    r = empty_row()
    r.update(
        timestamp=0,
        project="routeviews",
        collector="rrc00",
        source_file="rrc00/x",
        elem_type="STATE",
        peer_ip="192.0.2.1",
        peer_asn=1,
        record_index=0,
        record_offset=0,
    )
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(avro_schema("updates")), [r, r])
    with blobs.writer("x.avro") as w:
        w.write(buf.getvalue())
        w.commit()
    wh.load("updates", [blobs.uri("x.avro")], replace_sources=[], load_id="1")
    # This process holds no connection now, so another process can open the file.
    out = subprocess.run(
        [sys.executable, "-c", READER, str(tmp_path / "wh.duckdb")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"
    # And loading again afterwards works (the reader released its lock).
    res = wh.load("updates", [blobs.uri("x.avro")], replace_sources=[("routeviews", "rrc00/x")], load_id="2")
    assert res.rows == 2
    assert wh.query("SELECT count(*) FROM updates") == [(2,)]


def no_avro(uri: str) -> BinaryIO:
    raise AssertionError("these tests load nothing")


HOLDER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
    """
)


def test_operations_wait_for_another_process_lock(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    wh = DuckDBWarehouse(path, no_avro, lock_timeout=20, query_lock_timeout=20)
    wh.ensure_tables()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), "1.0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        assert wh.query("SELECT count(*) FROM ribs") == [(0,)]
        waited = time.monotonic() - t0
    finally:
        holder.wait(30)
    assert 0.3 < waited < 15
    short = DuckDBWarehouse(path, no_avro, query_lock_timeout=0.2)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), "1.5"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(Exception, match=r"(?i)lock"):
            short.query("SELECT 1")
    finally:
        holder.wait(30)
