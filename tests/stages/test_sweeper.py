"""The sweeper puts stuck files back on their way, and only stuck ones."""

from __future__ import annotations

import time
from pathlib import Path

from rvcloud.backends.bus.base import Message
from rvcloud.backends.bus.memory import MemoryBus
from rvcloud.metadata.record import FileRecord
from rvcloud.metadata.sqlite import SqliteStatusStore
from rvcloud.metadata.sweeper import sweep_once


def _put(store: SqliteStatusStore, name: str, **kw: object) -> None:
    store.update("routeviews", name, lambda _: FileRecord("routeviews", name, sha256="a" * 64, **kw))  # type: ignore[arg-type]


def test_sweep(tmp_path: Path) -> None:
    status = SqliteStatusStore(str(tmp_path / "s.db"))
    bus = MemoryBus()
    got: list[Message] = []
    for topic in ("stored", "converted"):
        bus.subscribe(topic, got.append)
    old = time.time() - 3600
    _put(status, "lost-publish", status="IN_PROGRESS", stage="stored", updated_at=old)
    _put(status, "dead-converter", status="IN_PROGRESS", stage="converting", lease_owner="x", lease_until=old)
    _put(
        status,
        "dead-loader",
        status="IN_PROGRESS",
        stage="loading",
        lease_owner="y",
        lease_until=old,
        avro_uris=["file:///b/k.aaaa.updates.avro"],
    )
    _put(
        status,
        "dead-uploader",
        status="IN_PROGRESS",
        stage="receiving",
        lease_owner="u",
        lease_until=old,
        bytes_received=1234,
    )
    _put(
        status,
        "busy",
        status="IN_PROGRESS",
        stage="converting",
        lease_owner="z",
        lease_until=time.time() + 600,
    )
    _put(status, "fresh", status="IN_PROGRESS", stage="stored", updated_at=time.time())
    _put(status, "done", status="DONE", stage="loaded", updated_at=old)
    _put(status, "hopeless", status="IN_PROGRESS", stage="stored", updated_at=old, sweeps=5)

    r = sweep_once(status, bus, topic_stored="stored", topic_converted="converted", stale_s=60, max_sweeps=5)
    bus.join(timeout=5)
    assert r.republished == {"stored": 1, "converting": 1, "loading": 1}
    assert r.failed == 2
    by_name = {(m.topic, m.data["filename"]) for m in got}
    assert by_name == {("stored", "lost-publish"), ("stored", "dead-converter"), ("converted", "dead-loader")}
    loader_msg = next(m for m in got if m.data["filename"] == "dead-loader")
    assert loader_msg.data["avro"] == {"updates": "file:///b/k.aaaa.updates.avro"}
    up = status.get("routeviews", "dead-uploader")
    assert up is not None and up.status == "FAILED" and "upload interrupted at byte 1234" in up.error
    hopeless = status.get("routeviews", "hopeless")
    assert hopeless is not None and hopeless.status == "FAILED" and "no progress" in hopeless.error
    conv = status.get("routeviews", "dead-converter")
    assert conv is not None and conv.lease_owner == "" and conv.sweeps == 1
    # A second sweep right away finds nothing stuck (the re-published ones were just touched).
    again = sweep_once(status, bus, topic_stored="stored", topic_converted="converted", stale_s=60)
    assert again.republished == {} and again.failed == 0
