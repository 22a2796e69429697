"""The loader stage: load converted files' Avro rows into the warehouse, in batches.

BigQuery allows a fixed number of table modifications per table per day, and
RouteViews alone writes thousands of files a day (millions in a backfill), so one load
job per file does not fit. The loader takes a batch of ``converted`` events, claims the
files, and loads all their Avro objects into each table with ONE load job whose id is
derived from the batch's members: a retry of the same batch reuses the id and the
warehouse refuses to apply it twice. The ids are written into the files' records
before the job runs, so a loader that takes over a dead loader's files first asks the
warehouse whether that job already landed.

A file that replaces an already-loaded version of the same archive path, or whose
earlier attempt may have left rows, has those rows deleted in the same load (only
then: deletes cost quota and, in BigQuery, bytes scanned). If a
batch fails, its files are loaded one by one so that one bad file cannot hold back the
others.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass

from rvcloud.backends import logs
from rvcloud.backends.bus.base import Message
from rvcloud.backends.metrics import StageMetrics
from rvcloud.backends.warehouse.base import Warehouse
from rvcloud.metadata import stages
from rvcloud.metadata.record import FileRecord
from rvcloud.metadata.store import StatusStore
from rvcloud.mrt.schema import TABLES

log = logging.getLogger("rvcloud.loader")


@dataclass(slots=True)
class _Claimed:
    msg: Message
    project: str
    filename: str
    sha256: str
    upload_id: str
    avro: dict[str, str]
    owner: str
    replaces: bool
    size: int  # raw MRT bytes, for the metrics


def batch_load_id(table: str, members: list[_Claimed]) -> str:
    key = "\n".join(sorted("\0".join((c.project, c.filename, c.sha256, c.upload_id)) for c in members))
    return f"rvcloud_{table}_{hashlib.sha256(key.encode()).hexdigest()[:40]}"


class Loader:
    def __init__(
        self,
        warehouse: Warehouse,
        status: StatusStore,
        *,
        lease_seconds: float = 300.0,
        max_attempts: int = 5,
        metrics: StageMetrics | None = None,
    ) -> None:
        self.warehouse, self.status = warehouse, status
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.metrics = metrics if metrics is not None else StageMetrics("loader")
        self.worker_id = f"loader-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    def handle_batch(self, msgs: list[Message]) -> set[str]:
        """Load the files of ``msgs``; returns the ids of messages to redeliver."""
        for msg in msgs:
            self.metrics.received(msg)
        self.metrics.in_flight(len(msgs))
        try:
            return self._handle_batch(msgs)
        finally:
            self.metrics.in_flight(-len(msgs))

    def _handle_batch(self, msgs: list[Message]) -> set[str]:
        claimed = []
        for m in msgs:
            with logs.scope(**logs.event_fields(m)):
                c = self._claim(m)
            if c is not None:
                claimed.append(c)
        if not claimed:
            return set()
        try:
            self._load(claimed)
        except Exception as e:
            if len(claimed) == 1:
                return self._failed(claimed[0], e)
            log.warning("batch of %d files failed (%s); loading them one by one", len(claimed), e)
            failed: set[str] = set()
            for c in claimed:
                try:
                    self._load([c])
                except Exception as e1:
                    failed |= self._failed(c, e1)
            return failed
        return set()

    def _claim(self, msg: Message) -> _Claimed | None:
        d = msg.data
        project, filename, sha = str(d["project"]), str(d["filename"]), str(d["sha256"])
        owner = f"{self.worker_id}-{uuid.uuid4().hex[:6]}"
        rec = stages.claim(
            self.status,
            project,
            filename,
            sha,
            from_stage="converted",
            to_stage="loading",
            owner=owner,
            lease_seconds=self.lease_seconds,
        )
        if rec is None:
            self.metrics.file("skipped")
            return None  # a duplicate or late event: another loader has it or it is done
        # Rows to delete first: an older loaded version's, or this version's own from an
        # earlier attempt that may have landed in one table but not the other.
        replaces = bool(rec.replaced_sha256) or rec.attempts > 1 or bool(rec.load_id)
        avro = dict(d.get("avro", {}))
        c = _Claimed(
            msg, project, filename, sha, str(d.get("upload_id", "")), avro, owner, replaces, rec.size
        )
        if rec.load_id and all(self.warehouse.applied(lid) for lid in rec.load_id.split(",")):
            # A dead loader's job landed before it could say so: finish, do not reload.
            self._done(c, rec.load_id.split(","))
            return None
        return c

    def _load(self, batch: list[_Claimed]) -> None:
        plan: list[tuple[str, list[str], list[tuple[str, str]], str]] = []
        for table in TABLES:
            uris = [c.avro[table] for c in batch if table in c.avro]
            # The old version's rows may sit in either table, whatever the new one has.
            replace = [(c.project, c.filename) for c in batch if c.replaces]
            if uris or replace:
                plan.append((table, uris, replace, batch_load_id(table, batch)))
        ids = [p[3] for p in plan]
        for c in batch:
            self._record_load_ids(c, ids)
        # A load of a large batch outlives the claim's lease: keep every file's lease
        # alive, or the sweeper would hand the files to another loader mid-load.
        first, rest = batch[0], [(c.project, c.filename, c.owner) for c in batch[1:]]
        started = time.monotonic()
        with stages.Heartbeat(
            self.status, first.project, first.filename, first.owner, self.lease_seconds, more=rest
        ):
            for table, uris, replace, lid in plan:
                result = self.warehouse.load(table, uris, replace_sources=replace, load_id=lid)
                if not result.already_applied:
                    self.metrics.rows(table, result.rows)
        self.metrics.duration("load", time.monotonic() - started)
        for c in batch:
            self._done(c, [lid for table, _, _, lid in plan if table in c.avro])
        log.info("loaded %d file(s) with %d job(s)", len(batch), len(plan))

    def _record_load_ids(self, c: _Claimed, ids: list[str]) -> None:
        def apply(r: FileRecord) -> None:
            r.load_id = ",".join(ids)

        # Keep the lease: this is progress, not the end of the stage.
        def mutate(r: FileRecord | None) -> FileRecord | None:
            if r is None or r.sha256 != c.sha256 or r.lease_owner != c.owner:
                return None
            new = FileRecord.from_dict(r.to_dict())
            apply(new)
            return new

        self.status.update(c.project, c.filename, mutate)

    def _done(self, c: _Claimed, ids: list[str]) -> None:
        with logs.scope(**logs.event_fields(c.msg)):
            self._done_file(c, ids)

    def _done_file(self, c: _Claimed, ids: list[str]) -> None:
        tables: list[str] = [t for t in TABLES if t in c.avro]

        def apply(r: FileRecord) -> None:
            r.stage = "loaded"
            r.status = "DONE"
            r.warehouse_tables = tables
            r.load_id = ",".join(ids)
            r.replaced_sha256 = ""
            r.error = ""

        if stages.finish(self.status, c.project, c.filename, c.sha256, c.owner, apply) is not None:
            self.metrics.file("done", c.size)
            log.info("loaded %s/%s into %s", c.project, c.filename, ",".join(tables) or "(no rows)")

    def _failed(self, c: _Claimed, e: Exception) -> set[str]:
        with logs.scope(**logs.event_fields(c.msg)):
            return self._failed_file(c, e)

    def _failed_file(self, c: _Claimed, e: Exception) -> set[str]:
        log.error("loading %s/%s failed (attempt %d): %s", c.project, c.filename, c.msg.attempt, e)
        err = f"{c.project}/{c.filename}: stage loading: {type(e).__name__}: {e}"
        self.metrics.error(type(e).__name__)
        self.metrics.file("failed" if c.msg.attempt >= self.max_attempts else "retry")
        if c.msg.attempt >= self.max_attempts:
            # FAILED with the reason, and the event goes on to the dead-letter topic.
            stages.fail(self.status, c.project, c.filename, c.sha256, c.owner, err)
            return {c.msg.id}

        def back(r: FileRecord) -> None:
            r.stage = "converted"
            r.load_id = ""
            r.error = err

        stages.finish(self.status, c.project, c.filename, c.sha256, c.owner, back)
        return {c.msg.id}
