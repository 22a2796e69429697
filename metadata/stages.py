"""Stage transitions of a file record, shared by the gateway and the workers.

Every transition is a compare-and-set through ``StatusStore.update``: a stage claims a
file only from the stage it expects (or from its own stage when the previous holder's
lease has expired, i.e. that worker died), and only the lease holder may finish or
fail it. A duplicate or late event therefore changes nothing, and a dead worker's file
is taken over by the redelivered event instead of staying IN_PROGRESS forever.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from types import TracebackType

from rvcloud.metadata.record import FileRecord
from rvcloud.metadata.store import StatusStore


def claim(
    store: StatusStore,
    project: str,
    filename: str,
    sha256: str,
    *,
    from_stage: str,
    to_stage: str,
    owner: str,
    lease_seconds: float,
) -> FileRecord | None:
    """Move the record from ``from_stage`` to ``to_stage`` under a lease; None if refused."""

    def mutate(rec: FileRecord | None) -> FileRecord | None:
        if rec is None or rec.sha256 != sha256:
            return None
        now = time.time()
        takeover = rec.stage == to_stage and rec.status == "IN_PROGRESS" and rec.lease_until < now
        if not (rec.stage == from_stage and rec.status == "IN_PROGRESS") and not takeover:
            return None
        new = copy.deepcopy(rec)
        new.stage = to_stage
        new.lease_owner = owner
        new.lease_until = now + lease_seconds
        # Attempts count tries of the current stage: a retry (takeover of a dead
        # worker's lease, or a stage handed back with an error) adds one.
        new.attempts = rec.attempts + 1 if takeover or rec.error else 1
        new.updated_at = now
        return new

    rec, changed = store.update(project, filename, mutate)
    return rec if changed else None


def finish(
    store: StatusStore,
    project: str,
    filename: str,
    sha256: str,
    owner: str,
    apply: Callable[[FileRecord], None],
) -> FileRecord | None:
    """Apply ``apply`` to the record if ``owner`` still holds its lease; clears the lease."""

    def mutate(rec: FileRecord | None) -> FileRecord | None:
        if rec is None or rec.sha256 != sha256 or rec.lease_owner != owner:
            return None
        new = copy.deepcopy(rec)
        apply(new)
        new.lease_owner = ""
        new.lease_until = 0.0
        new.updated_at = time.time()
        return new

    rec, changed = store.update(project, filename, mutate)
    return rec if changed else None


def fail(store: StatusStore, project: str, filename: str, sha256: str, owner: str, error: str) -> bool:
    """Mark the file FAILED with ``error`` (stage kept, so the record says where)."""

    def apply(rec: FileRecord) -> None:
        rec.status = "FAILED"
        rec.error = error

    return finish(store, project, filename, sha256, owner, apply) is not None


class Heartbeat:
    """Extends the leases of one or more files in the background while a long stage runs.

    ``progress`` (optional) is applied on each beat so status queries see how far the
    stage has got (e.g. records read so far).
    """

    def __init__(
        self,
        store: StatusStore,
        project: str,
        filename: str,
        owner: str,
        lease_seconds: float,
        progress: Callable[[FileRecord], None] | None = None,
        *,
        more: list[tuple[str, str, str]] | None = None,
    ) -> None:
        self._store = store
        self._files = [(project, filename, owner), *(more or [])]
        self._lease = lease_seconds
        self._progress = progress
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{filename}", daemon=True)

    def _beat(self, project: str, filename: str, owner: str) -> None:
        def mutate(rec: FileRecord | None) -> FileRecord | None:
            if rec is None or rec.lease_owner != owner:
                return None
            new = copy.deepcopy(rec)
            new.lease_until = time.time() + self._lease
            new.updated_at = time.time()
            if self._progress is not None:
                self._progress(new)
            return new

        self._store.update(project, filename, mutate)

    def _run(self) -> None:
        while not self._stop.wait(max(0.5, min(5.0, self._lease / 3))):
            for project, filename, owner in self._files:
                try:
                    self._beat(project, filename, owner)
                except Exception:  # a missed beat is retried; the lease has slack
                    continue

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
