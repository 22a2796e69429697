"""EventBus.ping fails, within its timeout, when the bus cannot be reached.

The conformance suite checks that ping answers on a live bus; these are the ways each
backend becomes unreachable: a closed in-process bus, a SQLite bus file that vanished
(an unmounted volume), a Pub/Sub endpoint that accepts connections and never answers.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from rvcloud.backends.bus.memory import MemoryBus
from rvcloud.backends.bus.sqlite import SqliteBus


def test_memory_bus_ping_fails_once_closed() -> None:
    bus = MemoryBus()
    bus.ping(timeout=1)
    bus.close()
    with pytest.raises(RuntimeError, match="closed"):
        bus.ping(timeout=1)


def test_sqlite_bus_ping_fails_while_its_file_is_gone(tmp_path: Path) -> None:
    bus = SqliteBus(tmp_path / "bus.db", poll=0.02)
    try:
        bus.publish("t", {"n": 1})
        bus.ping(timeout=1)
        (tmp_path / "bus.db").rename(tmp_path / "bus.db.away")
        # The bus's own open connection still works on the moved file; ping must not.
        assert bus.pending("t") == 1
        with pytest.raises(Exception, match="unable to open database file"):
            bus.ping(timeout=1)
        assert not (tmp_path / "bus.db").exists(), "ping must not create an empty bus in its place"
        (tmp_path / "bus.db.away").rename(tmp_path / "bus.db")
        bus.ping(timeout=1)
    finally:
        bus.close()


def test_pubsub_ping_times_out_on_a_silent_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from rvcloud.backends.bus.pubsub import PubSubBus

    # Accepts TCP connections and never says a word: a hung service, not a refused port.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{silent.getsockname()[1]}")
    bus = PubSubBus("rv-ping-test")
    try:
        t0 = time.monotonic()
        with pytest.raises(Exception) as ei:
            bus.ping(timeout=1)
        assert time.monotonic() - t0 < 5
        assert "DeadlineExceeded" in type(ei.value).__name__ or "Deadline" in str(ei.value)
    finally:
        bus.close()
        silent.close()
