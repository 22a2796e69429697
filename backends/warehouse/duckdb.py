"""Warehouse on one DuckDB file (URL ``duckdb:///path/warehouse.duckdb``), for the embedded setup.

Tables ``ribs`` and ``updates`` come from the row model (``mrt.schema.duckdb_ddl``);
``_loads`` remembers applied load ids so a retried load is a no-op.

A load is one DuckDB transaction: check ``_loads``, delete the rows of the replaced
source files, insert the Avro rows with ONE INSERT reading a stream of Arrow batches
(~50k rows each, so memory stays bounded whatever the file size; decoded in a thread ahead
of the insert by the C decoder of ``avro_columns``, or by polars' Avro reader for other
schemas and without the accelerator: see ``avro_chunks``), record the load id.

DuckDB lets one process open a file for writing, and no other process may open it at
the same time (not even read-only). So every operation opens its own connection and
closes it at once, and opening retries on lock errors for a while: the workers, the
CLI's ``rvcloud query`` and the demo take turns on the file.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from rvcloud.backends.warehouse import avro_columns
from rvcloud.backends.warehouse.avro_chunks import ContainerReader
from rvcloud.backends.warehouse.avro_columns import ARROW_SCHEMA, ARROW_TYPES
from rvcloud.backends.warehouse.base import LoadResult, Warehouse
from rvcloud.mrt.schema import COLUMNS, TABLES, duckdb_ddl

log = logging.getLogger(__name__)

BATCH_ROWS = 50_000

_COLS_SQL = ", ".join(f'"{c.name}"' for c in COLUMNS)

_LOADS_DDL = (
    'CREATE TABLE IF NOT EXISTS _loads (load_id VARCHAR PRIMARY KEY, "table" VARCHAR NOT NULL, '
    'rows BIGINT NOT NULL, "at" TIMESTAMP NOT NULL)'
)


def _is_lock_error(e: duckdb.Error) -> bool:
    msg = str(e).lower()
    return "lock" in msg or "different configuration" in msg


def _polars_table(chunk: bytes) -> pa.Table:
    """One complete Avro container (a chunk of a file) as an Arrow table of ``ARROW_SCHEMA``,
    through polars' generic Avro reader (any schema it can cast to ours)."""
    t = pl.read_avro(io.BytesIO(chunk)).to_arrow()
    # Lists are never NULL in the row model. polars gives timestamp-micros as UTC instants;
    # they are cast to naive UTC because DuckDB would convert TIMESTAMPTZ with the session
    # time zone.
    cols = []
    for c in COLUMNS:
        col = t.column(c.name)
        if c.type.endswith("_list"):
            col = pc.fill_null(col, pa.scalar([], col.type))
        cols.append(col.cast(ARROW_TYPES[c.type]))
    return pa.table(cols, schema=ARROW_SCHEMA)


def iter_avro_batches(
    f: BinaryIO, batch_rows: int = BATCH_ROWS, source: str | None = None
) -> Iterator[pa.Table]:
    """Arrow tables of about ``batch_rows`` rows read from one Avro container file.

    Files of the row model's schema go through the C decoder (``avro_columns``) when it is
    built; any other schema or codec, or ``RVCLOUD_NO_ACCEL=1``, through polars.
    """
    reader = ContainerReader(f)
    why = avro_columns.unsupported(reader.meta) if avro_columns.accel_enabled() else "accelerator off"
    if why is None:
        if source is None:
            name = getattr(f, "name", None)
            source = name if isinstance(name, str) else "Avro object"
        yield from avro_columns.iter_tables(reader, batch_rows, source)
        return
    log.debug("Avro load through polars: %s", why)
    for _, chunk in reader.chunks(batch_rows):
        yield _polars_table(chunk)


def _prefetched(it: Iterator[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """``it`` run in a thread, at most ``depth`` items ahead; its exception re-raised here."""
    q: queue.Queue[tuple[bool, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def run() -> None:
        try:
            for item in it:
                while not stop.is_set():
                    with suppress(queue.Full):
                        q.put((True, item), timeout=0.1)
                        break
                if stop.is_set():
                    return
            q.put((False, None))
        except BaseException as e:
            q.put((False, e))

    threading.Thread(target=run, name="avro-decode", daemon=True).start()
    try:
        while True:
            more, item = q.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()  # the consumer gave up (an INSERT error): let the thread end


class DuckDBWarehouse(Warehouse):
    """See the module docstring. ``open_uri`` opens an Avro object by URI (from the blob store)."""

    # No load quota: load whatever has arrived as soon as the previous load ends
    # (batch.py, max_wait_s=0), so a lone file is never held back waiting for company.
    default_batch_seconds = 0.0

    def __init__(
        self,
        path: str | os.PathLike[str],
        open_uri: Callable[[str], BinaryIO],
        *,
        lock_timeout: float = 60.0,
        query_lock_timeout: float = 10.0,
    ) -> None:
        self.path = Path(path).absolute()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open_uri = open_uri
        self.lock_timeout = lock_timeout
        self.query_lock_timeout = query_lock_timeout
        # DuckDB shares one database instance per file inside a process; serialising our
        # own writers avoids transaction conflicts between threads of this process.
        self._write_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({str(self.path)!r})"

    @contextmanager
    def _connect(self, *, read_only: bool, timeout: float) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            try:
                if read_only and not self.path.exists():
                    read_only = False  # read-only cannot create the file; an empty db is fine
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.Error as e:
                if read_only and "different configuration" in str(e).lower():
                    # This process already has the file open for writing: share that
                    # instance rather than waiting for ourselves.
                    read_only = False
                    continue
                if not _is_lock_error(e) or time.monotonic() >= deadline:
                    raise
                time.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 0.5)
        try:
            # Timestamps are naive UTC; keep DuckDB from applying a local time zone anywhere.
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()

    def ensure_tables(self) -> None:
        with self._write_lock, self._connect(read_only=False, timeout=self.lock_timeout) as con:
            self._ensure(con)

    @staticmethod
    def _ensure(con: duckdb.DuckDBPyConnection) -> None:
        for t in TABLES:
            con.execute(duckdb_ddl(t))
        con.execute(_LOADS_DDL)

    def load(
        self,
        table: str,
        avro_uris: Sequence[str],
        *,
        replace_sources: Sequence[tuple[str, str]],
        load_id: str,
    ) -> LoadResult:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; expected one of {TABLES}")
        if not load_id:
            raise ValueError("load_id must not be empty")
        with self._write_lock, self._connect(read_only=False, timeout=self.lock_timeout) as con:
            self._ensure(con)
            con.execute("BEGIN TRANSACTION")
            try:
                done = con.execute('SELECT "table", rows FROM _loads WHERE load_id = ?', [load_id]).fetchone()
                if done is not None:
                    con.execute("ROLLBACK")
                    return LoadResult(load_id, str(done[0]), int(done[1]), already_applied=True)
                for project, source_file in replace_sources:
                    con.execute(
                        f'DELETE FROM "{table}" WHERE project = ? AND source_file = ?', [project, source_file]
                    )
                rows = self._insert(con, table, avro_uris)
                con.execute(
                    'INSERT INTO _loads (load_id, "table", rows, "at") VALUES (?, ?, ?, ?)',
                    [load_id, table, rows, dt.datetime.now(dt.UTC).replace(tzinfo=None)],
                )
                con.execute("COMMIT")
            except BaseException:
                # After a failed COMMIT there is no transaction left to roll back.
                with suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise
        log.info("load %s: %d rows into %s from %d objects", load_id, rows, table, len(avro_uris))
        return LoadResult(load_id, table, rows, already_applied=False)

    def _insert(self, con: duckdb.DuckDBPyConnection, table: str, avro_uris: Sequence[str]) -> int:
        """Insert every row of ``avro_uris`` with ONE statement; returns the row count.

        One INSERT reading a stream of batches costs a quarter of one INSERT per batch
        (DuckDB appends to its row groups once), and decoding the next batches in a
        thread while DuckDB inserts the current one overlaps the two (the Avro decoder
        and DuckDB both release the GIL).
        """
        rows = 0
        failure: list[BaseException] = []

        def batches() -> Iterator[pa.RecordBatch]:
            nonlocal rows
            try:
                for uri in avro_uris:
                    with self._open_uri(uri) as f:
                        for t in iter_avro_batches(f, source=uri):
                            rows += t.num_rows
                            yield from t.to_batches()
            except BaseException as e:
                failure.append(e)  # DuckDB rewraps it; the caller gets the original
                raise

        reader = pa.RecordBatchReader.from_batches(ARROW_SCHEMA, _prefetched(batches()))
        con.register("_rvcloud_batches", reader)
        try:
            con.execute(f'INSERT INTO "{table}" ({_COLS_SQL}) SELECT {_COLS_SQL} FROM _rvcloud_batches')
        except duckdb.Error:
            if failure:
                raise failure[0] from None
            raise
        # (After a failure the aborted transaction refuses even this; the connection is
        # closed by the caller anyway.)
        con.unregister("_rvcloud_batches")
        return rows

    def applied(self, load_id: str) -> bool:
        with self._connect(read_only=True, timeout=self.query_lock_timeout) as con:
            try:
                row = con.execute("SELECT 1 FROM _loads WHERE load_id = ?", [load_id]).fetchone()
            except duckdb.CatalogException:  # no load has ever run
                return False
        return row is not None

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connect(read_only=True, timeout=self.query_lock_timeout) as con:
            # Queries come from users (`rvcloud query`): the warehouse's tables only, no
            # reading or writing of other files through read_csv, COPY, ATTACH and the like.
            con.execute("SET enable_external_access = false")
            return [tuple(r) for r in con.execute(sql, list(params)).fetchall()]
