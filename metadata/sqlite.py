"""Status store on one SQLite file (URL ``sqlite:///path/status.db``), for the embedded setup.

One row per (project, filename): the columns the list filters use are real indexed
columns, the full record is JSON, and ``version`` makes ``update`` an optimistic
compare-and-set (``UPDATE ... WHERE version = ?``; an INSERT that loses a race hits the
primary key and is retried as an update). The mutator runs outside any transaction,
so a slow mutator never holds SQLite's write lock; this is safe across threads and
processes, the same contract Datastore transactions give the cloud backend.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rvcloud.metadata.record import FileRecord
from rvcloud.metadata.store import ListFilter, Mutator, Page, StatusStore

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
MAX_CAS_TRIES = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS file_status (
  project TEXT NOT NULL,
  filename TEXT NOT NULL,
  collector TEXT NOT NULL,
  mrt_type TEXT NOT NULL,
  status TEXT NOT NULL,
  file_time INTEGER,
  version INTEGER NOT NULL,
  record TEXT NOT NULL,
  PRIMARY KEY (project, filename)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS file_status_collector ON file_status (collector, project, filename);
CREATE INDEX IF NOT EXISTS file_status_status ON file_status (status, project, filename);
CREATE INDEX IF NOT EXISTS file_status_mrt_type ON file_status (mrt_type, project, filename);
CREATE INDEX IF NOT EXISTS file_status_file_time ON file_status (file_time);
"""


class ConcurrentUpdateError(RuntimeError):
    """update() lost the compare-and-set race too many times in a row."""


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA busy_timeout = 30000")
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = FULL")
    return con


def _filter_fingerprint(flt: ListFilter) -> str:
    raw = json.dumps(
        [flt.project, flt.collector, flt.mrt_type, flt.status, flt.file_time_from, flt.file_time_to]
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def encode_page_token(flt: ListFilter, project: str, filename: str) -> str:
    """Opaque token: the last key returned, bound to the filter it was produced for."""
    raw = json.dumps({"f": _filter_fingerprint(flt), "k": [project, filename]}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(flt: ListFilter, token: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        d = json.loads(raw)
        project, filename = d["k"]
        fp = d["f"]
    except (binascii.Error, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"invalid page token {token!r}") from e
    if fp != _filter_fingerprint(flt):
        raise ValueError("page token was issued for a different filter")
    return str(project), str(filename)


class SqliteStatusStore(StatusStore):
    """See the module docstring. Thread-safe (one connection per thread)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._con().executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"SqliteStatusStore({str(self.path)!r})"

    def _con(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = _connect(self.path)
            self._local.con = con
            with self._all_lock:
                self._all.append(con)
        return con

    def _read(self, project: str, filename: str) -> tuple[FileRecord | None, int]:
        row = (
            self._con()
            .execute(
                "SELECT record, version FROM file_status WHERE project = ? AND filename = ?",
                (project, filename),
            )
            .fetchone()
        )
        if row is None:
            return None, 0
        return FileRecord.from_dict(json.loads(row[0])), int(row[1])

    def get(self, project: str, filename: str) -> FileRecord | None:
        return self._read(project, filename)[0]

    def update(self, project: str, filename: str, mutate: Mutator) -> tuple[FileRecord | None, bool]:
        con = self._con()
        for attempt in range(MAX_CAS_TRIES):
            current, version = self._read(project, filename)
            # The mutator gets its own copy (a fresh decode), so even an in-place
            # change cannot leak into `current`.
            arg = None if current is None else FileRecord.from_dict(json.loads(json.dumps(current.to_dict())))
            new = mutate(arg)
            if new is None or new == current:
                return current, False
            if new.project != project or new.filename != filename:
                raise ValueError(
                    f"mutator changed the record key to ({new.project!r}, {new.filename!r}); "
                    f"expected ({project!r}, {filename!r})"
                )
            cols = self._columns(new)
            if current is None:
                cur = con.execute(
                    "INSERT INTO file_status (project, filename, collector, mrt_type, status, file_time, "
                    "version, record) VALUES (?, ?, ?, ?, ?, ?, 1, ?) ON CONFLICT DO NOTHING",
                    (project, filename, *cols),
                )
            else:
                cur = con.execute(
                    "UPDATE file_status SET collector = ?, mrt_type = ?, status = ?, file_time = ?, "
                    "record = ?, version = version + 1 WHERE project = ? AND filename = ? AND version = ?",
                    (*cols, project, filename, version),
                )
            if cur.rowcount == 1:
                return new, True
            # Lost the race: someone else wrote in between. Re-read and re-apply; a
            # little jitter after repeated losses keeps hot records from live-locking.
            if attempt >= 3:
                time.sleep(random.uniform(0, 0.002 * min(attempt, 50)))
        raise ConcurrentUpdateError(f"update of ({project!r}, {filename!r}) lost {MAX_CAS_TRIES} races")

    @staticmethod
    def _columns(r: FileRecord) -> tuple[Any, ...]:
        return (r.collector, r.mrt_type, r.status, r.file_time, json.dumps(r.to_dict(), sort_keys=True))

    def list(self, flt: ListFilter, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = "") -> Page:
        if page_size <= 0:
            page_size = DEFAULT_PAGE_SIZE
        page_size = min(page_size, MAX_PAGE_SIZE)
        where: list[str] = []
        params: list[Any] = []
        for col, val in (
            ("project", flt.project),
            ("collector", flt.collector),
            ("mrt_type", flt.mrt_type),
            ("status", flt.status),
        ):
            if val:
                where.append(f"{col} = ?")
                params.append(val)
        if flt.file_time_from is not None:
            where.append("file_time >= ?")
            params.append(flt.file_time_from)
        if flt.file_time_to is not None:
            where.append("file_time < ?")
            params.append(flt.file_time_to)
        if page_token:
            where.append("(project, filename) > (?, ?)")
            params.extend(decode_page_token(flt, page_token))
        sql = "SELECT record FROM file_status"
        if where:
            sql += " WHERE " + " AND ".join(where)
        # One row more than asked tells whether another page exists.
        sql += " ORDER BY project, filename LIMIT ?"
        params.append(page_size + 1)
        rows = self._con().execute(sql, params).fetchall()
        records = [FileRecord.from_dict(json.loads(r[0])) for r in rows[:page_size]]
        token = ""
        if len(rows) > page_size:
            last = records[-1]
            token = encode_page_token(flt, last.project, last.filename)
        return Page(records, token)

    def ping(self) -> None:
        # A fresh connection to the path (mode=rw: a missing file is an error, not a new
        # empty store), not this thread's open one: an open connection keeps working on
        # a file that was deleted, moved or whose volume went away, while every later
        # open (another process, a restart) would not find it.
        uri = "file:" + quote(str(self.path.resolve())) + "?mode=rw"
        con = sqlite3.connect(uri, uri=True, timeout=5.0, isolation_level=None)
        try:
            con.execute("SELECT 1 FROM file_status LIMIT 1").fetchall()
        finally:
            con.close()

    def close(self) -> None:
        with self._all_lock:
            cons, self._all = self._all, []
        for c in cons:
            c.close()
        self._local = threading.local()
