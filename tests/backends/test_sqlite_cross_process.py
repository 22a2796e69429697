"""Cross-process behaviour of the SQLite bus and status store (what the embedded service relies on).

Consumers run in real subprocesses: leases, SIGKILL recovery and compare-and-set must
hold between processes, not only between threads.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from rvcloud.backends.bus.base import Message
from rvcloud.backends.bus.sqlite import SqliteBus
from rvcloud.metadata.record import FileRecord
from rvcloud.metadata.sqlite import SqliteStatusStore
from tests.conformance.conformance_support import wait_until

CONSUMER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from rvcloud.backends.factory import open_event_bus

    url, topic, out_dir, mode = sys.argv[1:5]
    out = Path(out_dir)
    bus = open_event_bus(url)

    def handler(msg):
        if mode == "hang":
            (out / f"started-{os.getpid()}").write_text(json.dumps([msg.id, msg.attempt]))
            time.sleep(3600)
        # Real handlers take time; an instant one lets a single process drain the topic
        # before its competitor's first poll on a loaded machine.
        time.sleep(0.05)
        (out / f"{msg.id}-{os.getpid()}-{msg.attempt}").write_text(json.dumps(msg.data))

    sub = bus.subscribe(topic, handler, concurrency=2)
    (out / f"ready-{os.getpid()}").write_text("")
    while not (out / "stop").exists():
        time.sleep(0.02)
    sub.stop(timeout=10)
    bus.close()
    """
)


def start_consumer(url: str, topic: str, out: Path, mode: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", CONSUMER, url, topic, str(out), mode])


def test_killed_consumer_message_is_redelivered_after_lease(tmp_path: Path) -> None:
    db = tmp_path / "bus.db"
    url = f"sqlite://{db}?lease=1&poll=0.02"
    out = tmp_path / "out"
    out.mkdir()
    bus = SqliteBus(db, lease=1.0, poll=0.02)
    mid = bus.publish("stored", {"file": "rrc00/2001.01/updates.20010101.0000.gz"})
    proc = start_consumer(url, "stored", out, "hang")
    try:
        wait_until(lambda: any(out.glob("started-*")), timeout=20)
        started = json.loads(next(out.glob("started-*")).read_text())
        assert started == [mid, 1]
        time.sleep(1.5)  # beyond one lease: the live consumer keeps extending it
        assert bus.pending("stored") == 1
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    got: list[Message] = []
    killed_at = time.monotonic()
    sub = bus.subscribe("stored", got.append)
    try:
        wait_until(lambda: len(got) == 1, timeout=10)
        redelivered_after = time.monotonic() - killed_at
    finally:
        sub.stop(timeout=5)
    assert (got[0].id, got[0].attempt, dict(got[0].data)) == (
        mid,
        2,
        {"file": "rrc00/2001.01/updates.20010101.0000.gz"},
    )
    assert redelivered_after < 5
    wait_until(lambda: bus.pending("stored") == 0, timeout=5)
    bus.close()


def test_long_handler_keeps_its_lease(tmp_path: Path) -> None:
    # A handler running 3 leases long must not see its message handed to a competitor.
    db = tmp_path / "bus.db"
    bus1 = SqliteBus(db, lease=1.0, poll=0.02)
    bus2 = SqliteBus(db, lease=1.0, poll=0.02)
    deliveries: list[tuple[str, int]] = []
    lock = threading.Lock()

    def slow(msg: Message) -> None:
        with lock:
            deliveries.append(("slow", msg.attempt))
        time.sleep(3.0)

    def fast(msg: Message) -> None:
        with lock:
            deliveries.append(("fast", msg.attempt))

    s1 = bus1.subscribe("t", slow)
    bus1.publish("t", {"n": 1})
    wait_until(lambda: len(deliveries) == 1, timeout=5)
    s2 = bus2.subscribe("t", fast)
    wait_until(lambda: bus1.pending("t") == 0, timeout=10)
    time.sleep(0.3)
    s1.stop(timeout=5)
    s2.stop(timeout=5)
    assert deliveries == [("slow", 1)]
    bus1.close()
    bus2.close()


def test_competing_consumer_processes(tmp_path: Path) -> None:
    db = tmp_path / "bus.db"
    url = f"sqlite://{db}?poll=0.02"
    out = tmp_path / "out"
    out.mkdir()
    bus = SqliteBus(db)
    procs = [start_consumer(url, "work", out, "ok") for _ in range(2)]
    try:
        wait_until(lambda: len(list(out.glob("ready-*"))) == 2, timeout=20)
        ids = {bus.publish("work", {"i": i}) for i in range(120)}
        wait_until(lambda: bus.pending("work") == 0, timeout=60)
        (out / "stop").write_text("")
        for p in procs:
            assert p.wait(30) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    done = [f.name.split("-") for f in out.iterdir() if f.name[0] not in "rs"]
    handled_ids = [d[0] for d in done]
    assert sorted(handled_ids) == sorted(ids)  # each exactly once
    assert {d[2] for d in done} == {"1"}
    pids = {d[1] for d in done}
    assert len(pids) == 2, "both processes should have taken part"
    bus.close()


STATUS_WORKER = textwrap.dedent(
    """
    import dataclasses, sys
    from rvcloud.metadata.record import FileRecord
    from rvcloud.metadata.sqlite import SqliteStatusStore

    store = SqliteStatusStore(sys.argv[1])
    n = int(sys.argv[2])

    def incr(r):
        if r is None:
            return FileRecord(project="routeviews", filename="f", attempts=1)
        return dataclasses.replace(r, attempts=r.attempts + 1)

    for _ in range(n):
        store.update("routeviews", "f", incr)
    store.close()
    """
)


def test_status_store_cas_across_processes(tmp_path: Path) -> None:
    db = tmp_path / "status.db"
    store = SqliteStatusStore(db)
    n = 150
    procs = [subprocess.Popen([sys.executable, "-c", STATUS_WORKER, str(db), str(n)]) for _ in range(3)]

    def incr(r: FileRecord | None) -> FileRecord | None:
        if r is None:
            return FileRecord(project="routeviews", filename="f", attempts=1)
        return dataclasses.replace(r, attempts=r.attempts + 1)

    for _ in range(n):
        store.update("routeviews", "f", incr)
    for p in procs:
        assert p.wait(120) == 0
    rec = store.get("routeviews", "f")
    assert rec is not None and rec.attempts == 4 * n
    store.close()
