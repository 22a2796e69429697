"""The sweeper: no file stays IN_PROGRESS forever.

Events can be lost between two stores (a gateway dies after committing the raw object
but before publishing; a message is dead-lettered while its file still says
IN_PROGRESS), and workers die while holding a lease. The sweeper periodically lists
IN_PROGRESS records whose lease has expired (or that nobody has touched for
``stale_s``) and puts each back on its way:

- ``receiving`` with an expired lease: the uploader is gone; the file is FAILED
  ("upload interrupted") so the operator's retry starts afresh;
- ``stored`` / ``converting``: the ``stored`` event is published again;
- ``converted`` / ``loading``: the ``converted`` event is published again.

Re-published events are harmless duplicates for the idempotent stages. A file that
has been re-published ``max_sweeps`` times is marked FAILED with the reason, so a file
that can never make progress ends visibly instead of cycling.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass, field

from rvcloud.backends.bus.base import EventBus
from rvcloud.metadata.record import FileRecord
from rvcloud.metadata.store import ListFilter, StatusStore

log = logging.getLogger("rvcloud.sweeper")


@dataclass
class SweepResult:
    republished: dict[str, int] = field(default_factory=dict)
    failed: int = 0


def _stuck(rec: FileRecord, now: float, stale_s: float) -> bool:
    if rec.lease_owner:
        return rec.lease_until < now
    return rec.updated_at < now - stale_s


def sweep_once(
    status: StatusStore,
    bus: EventBus,
    *,
    topic_stored: str,
    topic_converted: str,
    stale_s: float = 300.0,
    max_sweeps: int = 5,
    now: float | None = None,
) -> SweepResult:
    now = time.time() if now is None else now
    out = SweepResult()
    token = ""
    while True:
        page = status.list(ListFilter(status="IN_PROGRESS"), page_size=500, page_token=token)
        for rec in page.records:
            if _stuck(rec, now, stale_s):
                _sweep(status, bus, rec, topic_stored, topic_converted, stale_s, max_sweeps, now, out)
        token = page.next_page_token
        if not token:
            return out


def _sweep(
    status: StatusStore,
    bus: EventBus,
    seen: FileRecord,
    topic_stored: str,
    topic_converted: str,
    stale_s: float,
    max_sweeps: int,
    now: float,
    out: SweepResult,
) -> None:
    sweeps = seen.sweeps
    give_up = seen.stage == "receiving" or sweeps >= max_sweeps

    def mutate(rec: FileRecord | None) -> FileRecord | None:
        # Act only on the very state we judged stuck (nobody moved it meanwhile).
        if rec is None or rec.status != "IN_PROGRESS" or rec.stage != seen.stage or rec.sha256 != seen.sha256:
            return None
        if not _stuck(rec, now, stale_s):
            return None
        new = copy.deepcopy(rec)
        new.updated_at = time.time()
        new.lease_owner, new.lease_until = "", 0.0
        if give_up:
            new.status = "FAILED"
            where = f"{rec.project}/{rec.filename}: stage {rec.stage}"
            if rec.stage == "receiving":
                new.error = f"{where}: upload interrupted at byte {rec.bytes_received}"
            else:
                new.error = f"{where}: no progress after {sweeps} re-deliveries"
        else:
            new.sweeps = rec.sweeps + 1
        return new

    rec, changed = status.update(seen.project, seen.filename, mutate)
    if not changed or rec is None:
        return
    if give_up:
        out.failed += 1
        log.warning("%s", rec.error)
        return
    data: dict[str, object] = {"project": rec.project, "filename": rec.filename, "sha256": rec.sha256}
    if rec.stage in ("stored", "converting"):
        topic = topic_stored
    else:
        topic = topic_converted
        data["avro"] = {uri.rsplit(".", 2)[-2]: uri for uri in rec.avro_uris}
    bus.publish(topic, data)
    out.republished[rec.stage] = out.republished.get(rec.stage, 0) + 1
    log.info("re-published %s for %s/%s (stuck in %s)", topic, rec.project, rec.filename, rec.stage)


class Sweeper:
    """Runs ``sweep_once`` every ``every_s`` seconds on a daemon thread."""

    def __init__(self, status: StatusStore, bus: EventBus, every_s: float, **kwargs: object) -> None:
        self._status, self._bus, self._every = status, bus, every_s
        self._kwargs = kwargs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                sweep_once(self._status, self._bus, **self._kwargs)  # type: ignore[arg-type]
            except Exception:  # the next sweep tries again
                log.exception("sweep failed")
