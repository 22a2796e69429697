"""The batching loader and the batch collector, on embedded backends in one process."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import fastavro

from rvcloud.backends.blob.file import FileBlobStore
from rvcloud.backends.bus.base import Message
from rvcloud.backends.bus.batch import subscribe_batch
from rvcloud.backends.bus.memory import MemoryBus
from rvcloud.backends.factory import blob_opener
from rvcloud.backends.warehouse.duckdb import DuckDBWarehouse
from rvcloud.loader_worker.worker import Loader
from rvcloud.metadata.record import FileRecord
from rvcloud.metadata.sqlite import SqliteStatusStore
from rvcloud.mrt.schema import avro_schema, empty_row


def _avro(blobs: FileBlobStore, key: str, source: str, n: int) -> str:
    rows = []
    for i in range(n):
        r = empty_row()
        r.update(
            timestamp=1_600_000_000_000_000 + i,
            project="routeviews",
            collector="c",
            source_file=source,
            elem_type="ANNOUNCE",
            peer_ip="192.0.2.1",
            peer_asn=64500,
            prefix=f"10.{i // 256}.{i % 256}.0/24",
            record_index=i,
            record_offset=i * 10,
        )
        rows.append(r)
    with blobs.writer(key) as w:
        import io

        buf = io.BytesIO()
        fastavro.writer(buf, fastavro.parse_schema(avro_schema("updates")), rows)
        w.write(buf.getvalue())
        w.commit()
    return blobs.uri(key)


def _converted(status: SqliteStatusStore, name: str, sha: str, replaced: str = "") -> None:
    def mutate(_: FileRecord | None) -> FileRecord:
        return FileRecord(
            project="routeviews",
            filename=name,
            status="IN_PROGRESS",
            stage="converted",
            sha256=sha,
            replaced_sha256=replaced,
            updated_at=time.time(),
        )

    status.update("routeviews", name, mutate)


def _setup(tmp_path: Path) -> tuple[FileBlobStore, SqliteStatusStore, DuckDBWarehouse, Loader]:
    blobs = FileBlobStore(tmp_path / "blobs")
    status = SqliteStatusStore(str(tmp_path / "status.db"))
    wh = DuckDBWarehouse(tmp_path / "wh.duckdb", blob_opener(blobs))
    wh.ensure_tables()
    return blobs, status, wh, Loader(wh, status)


def test_many_files_one_job(tmp_path: Path) -> None:
    blobs, status, wh, loader = _setup(tmp_path)
    msgs = []
    for i in range(30):
        name = f"rv/bgpdata/2020.01/UPDATES/updates.20200101.{i:04d}.bz2"
        _converted(status, name, f"{i:064x}")
        uri = _avro(blobs, f"a/{i}.avro", name, i + 1)
        data = {
            "project": "routeviews",
            "filename": name,
            "sha256": f"{i:064x}",
            "upload_id": "u",
            "avro": {"updates": uri},
        }
        msgs.append(Message(id=str(i), topic="t", data=data, attempt=1))
    assert loader.handle_batch(msgs) == set()
    assert wh.query("SELECT count(*) FROM _loads") == [(1,)]
    assert wh.query("SELECT count(*) FROM updates") == [(sum(range(1, 31)),)]
    for m in msgs:
        rec = status.get("routeviews", str(m.data["filename"]))
        assert rec is not None and rec.status == "DONE" and rec.warehouse_tables == ["updates"]
    # The same batch delivered again changes nothing.
    assert loader.handle_batch(msgs) == set()
    assert wh.query("SELECT count(*) FROM updates") == [(sum(range(1, 31)),)]


def test_failed_batch_isolates_the_bad_file(tmp_path: Path) -> None:
    blobs, status, wh, loader = _setup(tmp_path)
    msgs = []
    for i in range(3):
        name = f"rv/bgpdata/2020.01/UPDATES/updates.20200101.{i:04d}.bz2"
        _converted(status, name, f"{i:064x}")
        uri = _avro(blobs, f"a/{i}.avro", name, 5) if i != 1 else blobs.uri("a/missing.avro")
        data = {
            "project": "routeviews",
            "filename": name,
            "sha256": f"{i:064x}",
            "upload_id": "u",
            "avro": {"updates": uri},
        }
        msgs.append(Message(id=str(i), topic="t", data=data, attempt=1))
    assert loader.handle_batch(msgs) == {"1"}
    assert wh.query("SELECT count(*) FROM updates") == [(10,)]
    bad = status.get("routeviews", str(msgs[1].data["filename"]))
    assert bad is not None and bad.stage == "converted" and "stage loading" in bad.error


def test_replacement_deletes_the_old_version(tmp_path: Path) -> None:
    blobs, status, wh, loader = _setup(tmp_path)
    name = "rv/bgpdata/2020.01/UPDATES/updates.20200101.0000.bz2"
    _converted(status, name, "a" * 64)
    d = {
        "project": "routeviews",
        "filename": name,
        "sha256": "a" * 64,
        "upload_id": "1",
        "avro": {"updates": _avro(blobs, "v1.avro", name, 7)},
    }
    loader.handle_batch([Message("1", "t", d, 1)])
    _converted(status, name, "b" * 64, replaced="a" * 64)
    d2 = {**d, "sha256": "b" * 64, "upload_id": "2", "avro": {"updates": _avro(blobs, "v2.avro", name, 3)}}
    loader.handle_batch([Message("2", "t", d2, 1)])
    assert wh.query("SELECT count(*) FROM updates WHERE source_file = ?", [name]) == [(3,)]


def test_collector_forms_batches_by_size_and_age() -> None:
    bus = MemoryBus(backoff=0.01)
    seen: list[int] = []
    lock = threading.Lock()

    def handle(batch: list[Message]) -> set[str]:
        with lock:
            seen.append(len(batch))
        return {m.id for m in batch if m.data.get("fail") and m.attempt == 1}

    sub = subscribe_batch(bus, "t", handle, max_messages=10, max_wait_s=0.5)
    for i in range(25):
        bus.publish("t", {"i": i, "fail": i == 3})
    bus.join(timeout=20)
    sub.stop()
    # 25 messages + 1 redelivery, in batches of at most 10: far fewer batches than messages.
    assert sum(seen) == 26
    assert max(seen) <= 10 and len(seen) <= 6


def test_collector_without_window_loads_at_once_and_batches_what_waits() -> None:
    """max_wait_s=0: a lone message is handled at once; messages arriving during a
    handling form ONE next batch (never two handled at the same time)."""
    bus = MemoryBus(backoff=0.01)
    seen: list[list[int]] = []
    active = 0
    overlap = False
    lock = threading.Lock()
    first_started = threading.Event()
    release_first = threading.Event()

    def handle(batch: list[Message]) -> set[str]:
        nonlocal active, overlap
        with lock:
            active += 1
            overlap |= active > 1
            seen.append(sorted(m.data["i"] for m in batch))
        if batch[0].data["i"] == 0:
            first_started.set()
            release_first.wait(10)
        with lock:
            active -= 1
        return set()

    sub = subscribe_batch(bus, "t", handle, max_messages=10, max_wait_s=0)
    t = time.monotonic()
    bus.publish("t", {"i": 0})
    assert first_started.wait(5)
    assert time.monotonic() - t < 1.0  # not held back by any window
    for i in range(1, 8):
        bus.publish("t", {"i": i})
    time.sleep(0.3)  # all seven are parked while the first batch is being handled
    release_first.set()
    bus.join(timeout=20)
    sub.stop()
    assert seen == [[0], [1, 2, 3, 4, 5, 6, 7]]
    assert not overlap


def test_long_load_keeps_every_lease(tmp_path: Path) -> None:
    """A load slower than the lease: the claims stay alive, nobody can take the files over."""
    from rvcloud.metadata import stages

    blobs, status, wh, _ = _setup(tmp_path)
    loader = Loader(wh, status, lease_seconds=1.0)
    seen_live: list[bool] = []
    real_load = wh.load

    def slow_load(*a: object, **kw: object) -> object:
        time.sleep(3.0)  # three leases long
        names = [f"rv/bgpdata/2020.01/UPDATES/updates.20200101.{i:04d}.bz2" for i in range(2)]
        for n in names:  # a rival claim now must fail: every lease is still held
            seen_live.append(
                stages.claim(
                    status,
                    "routeviews",
                    n,
                    f"{names.index(n):064x}",
                    from_stage="converted",
                    to_stage="loading",
                    owner="rival",
                    lease_seconds=1.0,
                )
                is None
            )
        return real_load(*a, **kw)  # type: ignore[arg-type]

    wh.load = slow_load  # type: ignore[method-assign]
    msgs = []
    for i in range(2):
        name = f"rv/bgpdata/2020.01/UPDATES/updates.20200101.{i:04d}.bz2"
        _converted(status, name, f"{i:064x}")
        data = {
            "project": "routeviews",
            "filename": name,
            "sha256": f"{i:064x}",
            "upload_id": "u",
            "avro": {"updates": _avro(blobs, f"a/{i}.avro", name, 2)},
        }
        msgs.append(Message(id=str(i), topic="t", data=data, attempt=1))
    assert loader.handle_batch(msgs) == set()
    assert seen_live and all(seen_live)
    for m in msgs:
        rec = status.get("routeviews", str(m.data["filename"]))
        assert rec is not None and rec.status == "DONE"
