"""Durable cross-process event bus on one SQLite file (URL ``sqlite:///path/bus.db``).

It mimics Pub/Sub pull subscriptions closely enough that the stages behave the same:

- ``publish`` inserts a row and returns once the transaction is committed.
- Subscribers poll the table (and are woken at once by publishes in the same process).
  A message is *claimed* by one atomic ``UPDATE ... WHERE visible_at <= now`` that moves
  its visibility into the future (the lease) and stamps a random lease token; competing
  consumers in any process therefore never run the same message concurrently.
- While the handler runs, a heartbeat thread keeps extending the lease, so a long
  conversion is not redelivered; a consumer that dies (even SIGKILL) stops extending, and
  the message becomes visible to the others when its lease runs out.
- Ack deletes the row; a handler exception makes it visible again after an exponential
  back-off; after ``max_attempts`` deliveries (crashes included, as in Pub/Sub) it is
  moved to ``<topic>.dead``. Ack/nack/extend only act while the lease token still
  matches: a consumer whose lease has expired cannot touch another consumer's claim.

URL query parameters: ``lease`` (seconds, default 30), ``poll`` (idle poll interval,
default 0.1), ``backoff`` (first retry delay, default 1.0, doubling up to 60).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rvcloud.backends.bus.base import EventBus, Handler, Message, Subscription

log = logging.getLogger(__name__)

DEAD_SUFFIX = ".dead"
MAX_BACKOFF = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bus_messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  topic TEXT NOT NULL,
  data TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  visible_at REAL NOT NULL,
  lease_token TEXT,
  published_at REAL NOT NULL,
  last_error TEXT
);
CREATE INDEX IF NOT EXISTS bus_messages_topic_visible ON bus_messages (topic, visible_at);
"""


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with WAL and a busy timeout."""
    con = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA busy_timeout = 30000")
    con.execute("PRAGMA journal_mode = WAL")
    # FULL: publish promises durability when it returns, also across power loss.
    con.execute("PRAGMA synchronous = FULL")
    return con


@contextlib.contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    # IMMEDIATE takes the write lock up front, so two writers never deadlock upgrading
    # a read lock (SQLITE_BUSY that busy_timeout cannot resolve).
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


class _Claim:
    __slots__ = ("data", "id", "seq", "token")

    def __init__(self, seq: int, id: str, token: str, data: str) -> None:
        self.seq, self.id, self.token, self.data = seq, id, token, data


class _SqliteSubscription(Subscription):
    def __init__(
        self, bus: SqliteBus, topic: str, handler: Handler, concurrency: int, max_attempts: int
    ) -> None:
        self._bus = bus
        self._topic = topic
        self._handler = handler
        self._max_attempts = max_attempts
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._in_flight: dict[int, _Claim] = {}
        self._hb_stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"sqlite-bus-{topic}-{i}", daemon=True)
            for i in range(concurrency)
        ]
        # Runs until the workers are gone, so a handler still running at stop() keeps its lease.
        self._hb = threading.Thread(target=self._heartbeat, name=f"sqlite-bus-{topic}-hb", daemon=True)
        for t in [*self._threads, self._hb]:
            t.start()

    # ---- worker -----------------------------------------------------------------

    def _run(self) -> None:
        con = connect(self._bus.path)
        try:
            while not self._stop.is_set():
                try:
                    got = self._claim(con)
                except sqlite3.OperationalError:
                    log.warning("claim on %s failed; retrying", self._topic, exc_info=True)
                    got = None
                if got is None:
                    self._bus._wait_for_publish(self._bus.poll)
                    continue
                claim, msg = got
                if msg is None:
                    continue  # was dead-lettered on claim
                with self._lock:
                    self._in_flight[claim.seq] = claim
                try:
                    self._handler(msg)
                except Exception as e:
                    log.warning(
                        "handler for %s failed on message %s (attempt %d)",
                        self._topic,
                        msg.id,
                        msg.attempt,
                        exc_info=True,
                    )
                    self._settle(con, claim, msg, f"{type(e).__name__}: {e}")
                else:
                    self._settle(con, claim, msg, None)
                finally:
                    with self._lock:
                        self._in_flight.pop(claim.seq, None)
        finally:
            con.close()

    def _claim(self, con: sqlite3.Connection) -> tuple[_Claim, Message | None] | None:
        now = time.time()
        token = uuid.uuid4().hex
        # One statement, so the claim is atomic under SQLite's write lock: whoever
        # updates the row first owns it; the others' WHERE no longer matches.
        rows = con.execute(
            """
            UPDATE bus_messages SET visible_at = ?, lease_token = ?, attempts = attempts + 1
            WHERE seq = (
              SELECT seq FROM bus_messages WHERE topic = ? AND visible_at <= ?
              ORDER BY visible_at, seq LIMIT 1
            ) AND visible_at <= ?
            RETURNING seq, id, data, attempts, published_at
            """,
            (now + self._bus.lease, token, self._topic, now, now),
        ).fetchall()  # fetchall steps the statement to its end, which commits it
        if not rows:
            return None
        seq, mid, data, attempts, published_at = rows[0]
        claim = _Claim(seq, mid, token, data)
        if attempts > self._max_attempts:
            # Earlier deliveries ended without ack or nack (the consumer died): treat
            # the message as poison instead of killing consumers forever.
            self._dead_letter(con, claim, data, "consumer died during the last delivery")
            return claim, None
        return claim, Message(mid, self._topic, json.loads(data), attempts, float(published_at))

    def _settle(self, con: sqlite3.Connection, claim: _Claim, msg: Message, error: str | None) -> None:
        for attempt in range(10):
            try:
                if error is None:
                    con.execute(
                        "DELETE FROM bus_messages WHERE seq = ? AND lease_token = ?", (claim.seq, claim.token)
                    )
                elif msg.attempt >= self._max_attempts:
                    self._dead_letter(con, claim, claim.data, error)
                else:
                    delay = min(self._bus.backoff * 2 ** (msg.attempt - 1), MAX_BACKOFF)
                    con.execute(
                        "UPDATE bus_messages SET visible_at = ?, lease_token = NULL, last_error = ? "
                        "WHERE seq = ? AND lease_token = ?",
                        (time.time() + delay, error, claim.seq, claim.token),
                    )
                return
            except sqlite3.OperationalError:
                # Database locked beyond busy_timeout: retry; if we give up, the lease
                # expires and the message is redelivered (at-least-once holds).
                log.warning("settling message %s failed (try %d)", claim.id, attempt + 1, exc_info=True)
                time.sleep(0.1 * (attempt + 1))

    def _dead_letter(self, con: sqlite3.Connection, claim: _Claim, data: str, error: str) -> None:
        log.error(
            "message %s on %s moved to %s%s: %s", claim.id, self._topic, self._topic, DEAD_SUFFIX, error
        )
        with transaction(con):
            cur = con.execute(
                "DELETE FROM bus_messages WHERE seq = ? AND lease_token = ?", (claim.seq, claim.token)
            )
            if cur.rowcount == 1:
                now = time.time()
                con.execute(
                    "INSERT INTO bus_messages (id, topic, data, visible_at, published_at, last_error) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (uuid.uuid4().hex, self._topic + DEAD_SUFFIX, data, now, now, error),
                )

    # ---- lease extension --------------------------------------------------------

    def _heartbeat(self) -> None:
        interval = max(self._bus.lease / 3.0, 0.05)
        con = connect(self._bus.path)
        try:
            while not self._hb_stop.wait(interval):
                with self._lock:
                    claims = list(self._in_flight.values())
                for c in claims:
                    try:
                        con.execute(
                            "UPDATE bus_messages SET visible_at = ? WHERE seq = ? AND lease_token = ?",
                            (time.time() + self._bus.lease, c.seq, c.token),
                        )
                    except sqlite3.OperationalError:
                        log.warning("extending the lease of %s failed", c.id, exc_info=True)
        finally:
            con.close()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._bus._wake_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            if t is threading.current_thread():
                continue
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if not any(t.is_alive() for t in self._threads):
            # A handler that outlives the timeout keeps its lease extended.
            self._hb_stop.set()
            self._hb.join(5)
        self._bus._forget(self)


class SqliteBus(EventBus):
    """See the module docstring. Safe to share between threads; one per process is enough."""

    def __init__(
        self, path: str | os.PathLike[str], *, lease: float = 30.0, poll: float = 0.1, backoff: float = 1.0
    ) -> None:
        if lease <= 0 or poll <= 0 or backoff < 0:
            raise ValueError("lease and poll must be > 0, backoff >= 0")
        self.path = Path(path)
        self.lease = lease
        self.poll = poll
        self.backoff = backoff
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = connect(self.path)
        self._con_lock = threading.Lock()
        with self._con_lock:
            self._con.executescript(_SCHEMA)
        self._cond = threading.Condition()
        self._generation = 0
        self._subs: list[_SqliteSubscription] = []

    def __repr__(self) -> str:
        return f"SqliteBus({str(self.path)!r}, lease={self.lease})"

    def publish(self, topic: str, data: Mapping[str, Any]) -> str:
        if not topic:
            raise ValueError("topic must not be empty")
        body = json.dumps(dict(data))
        mid = uuid.uuid4().hex
        now = time.time()
        with self._con_lock:
            self._con.execute(
                "INSERT INTO bus_messages (id, topic, data, visible_at, published_at) VALUES (?, ?, ?, ?, ?)",
                (mid, topic, body, now, now),
            )
        self._wake_all()
        return mid

    def ping(self, timeout: float = 5.0) -> None:
        # A fresh read-write connection (mode=rw: a missing file is an error, not a new
        # empty bus) with the caller's timeout instead of the 30 s busy timeout, so a
        # locked or vanished file shows up as a failed probe.
        uri = "file:" + quote(str(self.path.resolve())) + "?mode=rw"
        con = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
        try:
            con.execute("SELECT 1 FROM bus_messages LIMIT 1").fetchall()
        finally:
            con.close()

    def subscribe(
        self, topic: str, handler: Handler, *, concurrency: int = 1, max_attempts: int = 5
    ) -> Subscription:
        if concurrency < 1 or max_attempts < 1:
            raise ValueError("concurrency and max_attempts must be >= 1")
        sub = _SqliteSubscription(self, topic, handler, concurrency, max_attempts)
        with self._cond:
            self._subs.append(sub)
        return sub

    def _wake_all(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def _wait_for_publish(self, timeout: float) -> None:
        # Local publishes wake pollers at once; other processes' are seen by polling.
        with self._cond:
            gen = self._generation
            self._cond.wait_for(lambda: self._generation != gen, timeout)

    def _forget(self, sub: _SqliteSubscription) -> None:
        with self._cond:
            if sub in self._subs:
                self._subs.remove(sub)

    def pending(self, topic: str) -> int:
        """Messages of ``topic`` not yet acknowledged (visible, leased or waiting to retry)."""
        with self._con_lock:
            (n,) = self._con.execute("SELECT count(*) FROM bus_messages WHERE topic = ?", (topic,)).fetchone()
        return int(n)

    def close(self) -> None:
        with self._cond:
            subs = list(self._subs)
        for s in subs:
            s.stop(timeout=10)
        with self._con_lock:
            self._con.close()
