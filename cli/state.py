"""The uploader's local state: a hash cache, what the service confirmed DONE, and a journal.

One SQLite file (``<state dir>/state.db``) per archive host, shared by ``backfill``
and ``watch``:

- ``hashes``: absolute path → (size, mtime_ns, sha256). A file whose size and mtime_ns
  are unchanged is not read again, so a re-run of a backfill over millions of files
  costs one ``stat`` per file instead of reading terabytes.
- ``done``: (gateway, project, archive path) → sha256 the service answered DONE for.
  ``watch`` uses it to ignore events for files it already delivered (a touch, a
  re-scan) without a call; ``backfill`` still asks the service (one CheckFiles call per
  1000 files), which stays the source of truth, and refreshes this table from the
  answers.
- ``journal``: files ``watch`` has seen but not yet delivered (with the last error and
  the number of tries), so that after a restart or a long outage it knows what is
  still owed, and ``rvcloud watch`` can say why a file is stuck.

The connection is shared by the worker threads behind one lock: each statement is
microseconds, far below the cost of hashing or uploading a file.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Final

SCHEMA_VERSION: Final = 1

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS hashes (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS done (
    gateway TEXT NOT NULL,
    project TEXT NOT NULL,
    filename TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (gateway, project, filename)
);
CREATE TABLE IF NOT EXISTS journal (
    path TEXT PRIMARY KEY,
    first_seen REAL NOT NULL,
    updated REAL NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT ''
);
"""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    path: str
    first_seen: float
    tries: int
    last_error: str


class StateStore:
    """The state database; thread-safe, one instance per process."""

    def __init__(self, state_dir: str) -> None:
        os.makedirs(state_dir, exist_ok=True)
        self.path = os.path.join(state_dir, "state.db")
        self._lock = threading.Lock()
        # isolation_level=None: autocommit, each statement is its own transaction; the
        # WAL journal lets a running `watch` and a manual `backfill` share the file.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- hash cache ----------------------------------------------------------------

    def cached_sha256(self, path: str, size: int, mtime_ns: int) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT size, mtime_ns, sha256 FROM hashes WHERE path = ?", (path,)
            ).fetchone()
        if row is None or row[0] != size or row[1] != mtime_ns:
            return None
        return str(row[2])

    def remember_sha256(self, path: str, size: int, mtime_ns: int, sha256: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO hashes (path, size, mtime_ns, sha256) VALUES (?, ?, ?, ?)",
                (path, size, mtime_ns, sha256),
            )

    # ---- files the service holds DONE ------------------------------------------------

    def is_done(self, gateway: str, project: str, filename: str, sha256: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT sha256 FROM done WHERE gateway = ? AND project = ? AND filename = ?",
                (gateway, project, filename),
            ).fetchone()
        return row is not None and row[0] == sha256

    def mark_done(self, gateway: str, project: str, filename: str, sha256: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO done (gateway, project, filename, sha256, at) VALUES (?, ?, ?, ?, ?)",
                (gateway, project, filename, sha256, time.time()),
            )

    def forget_done(self, gateway: str, project: str, filename: str) -> None:
        with self._lock:
            self._db.execute(
                "DELETE FROM done WHERE gateway = ? AND project = ? AND filename = ?",
                (gateway, project, filename),
            )

    # ---- watch journal ------------------------------------------------------------------

    def journal_add(self, path: str) -> None:
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO journal (path, first_seen, updated) VALUES (?, ?, ?) "
                "ON CONFLICT(path) DO NOTHING",
                (path, now, now),
            )

    def journal_failed(self, path: str, error: str) -> None:
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO journal (path, first_seen, updated, tries, last_error) VALUES (?, ?, ?, 1, ?) "
                "ON CONFLICT(path) DO UPDATE SET updated = excluded.updated, tries = tries + 1, "
                "last_error = excluded.last_error",
                (path, now, now, error),
            )

    def journal_remove(self, path: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM journal WHERE path = ?", (path,))

    def journal(self) -> list[JournalEntry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT path, first_seen, tries, last_error FROM journal ORDER BY first_seen"
            ).fetchall()
        return [JournalEntry(str(p), float(t), int(n), str(e)) for p, t, n, e in rows]
