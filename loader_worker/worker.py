"""The loader stage: on a ``converted`` event, load the file's Avro rows into the warehouse.

The file's previous rows (an older version of the same archive path) are replaced in
the same load, so the warehouse never holds two versions of a file. The load id is
derived from (project, filename, sha256, upload id, table): a redelivered event reuses
it and the warehouse refuses to apply it twice.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from typing import Any

from rvcloud.backends.bus.base import Message
from rvcloud.backends.warehouse.base import Warehouse
from rvcloud.metadata import stages
from rvcloud.metadata.record import FileRecord
from rvcloud.metadata.store import StatusStore
from rvcloud.mrt.schema import TABLES

log = logging.getLogger("rvcloud.loader")


def load_id(project: str, filename: str, sha256: str, upload_id: str, table: str) -> str:
    h = hashlib.sha256("\0".join((project, filename, sha256, upload_id, table)).encode()).hexdigest()
    return f"rvcloud_{table}_{h[:40]}"


class Loader:
    def __init__(
        self,
        warehouse: Warehouse,
        status: StatusStore,
        *,
        lease_seconds: float = 120.0,
        max_attempts: int = 5,
    ) -> None:
        self.warehouse, self.status = warehouse, status
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.worker_id = f"loader-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    def handle(self, msg: Message) -> None:
        d: Mapping[str, Any] = msg.data
        project, filename, sha = str(d["project"]), str(d["filename"]), str(d["sha256"])
        upload_id = str(d.get("upload_id", ""))
        avro: dict[str, str] = dict(d.get("avro", {}))
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
            return
        tables: list[str] = []
        ids: list[str] = []
        try:
            with stages.Heartbeat(self.status, project, filename, owner, self.lease_seconds):
                # Every table is visited: a table without rows for this version still
                # loses the rows an older version of the file put there.
                for table in TABLES:
                    lid = load_id(project, filename, sha, upload_id, table)
                    uris = [avro[table]] if table in avro else []
                    res = self.warehouse.load(table, uris, replace_sources=[(project, filename)], load_id=lid)
                    if uris:
                        tables.append(table)
                        ids.append(res.load_id)
        except Exception as e:
            log.exception("loading %s/%s failed (attempt %d)", project, filename, msg.attempt)
            err = f"{project}/{filename}: stage loading: {type(e).__name__}: {e}"
            if msg.attempt >= self.max_attempts:
                stages.fail(self.status, project, filename, sha, owner, err)
                return

            def back(r: FileRecord) -> None:
                r.stage = "converted"
                r.error = err

            stages.finish(self.status, project, filename, sha, owner, back)
            raise

        def apply(r: FileRecord) -> None:
            r.stage = "loaded"
            r.status = "DONE"
            r.warehouse_tables = tables
            r.load_id = ",".join(ids)
            r.error = ""

        if stages.finish(self.status, project, filename, sha, owner, apply) is not None:
            log.info("loaded %s/%s into %s", project, filename, ",".join(tables) or "(no rows)")
