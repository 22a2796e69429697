"""The converter stage: on a ``stored`` event, turn the raw MRT object into Avro rows.

The Avro objects are written next to the raw object (see ``avro_key``), the record
moves ``stored → converting → converted`` and a ``converted`` event goes to the loader.
Safe to run twice on the same event: the claim is a compare-and-set on the record, and
the Avro keys are derived from the content hash, so a re-run rewrites identical bytes.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping
from typing import IO, Any

from rvcloud.backends import logs
from rvcloud.backends.blob.base import BlobStore, BlobWriter
from rvcloud.backends.bus.base import EventBus, Message
from rvcloud.backends.metrics import StageMetrics
from rvcloud.converter_worker.convert import ConvertResult, convert_stream
from rvcloud.metadata import stages
from rvcloud.metadata.record import FileRecord
from rvcloud.metadata.store import StatusStore
from rvcloud.mrt import DecodeStats, NotMRTError

log = logging.getLogger("rvcloud.converter")


def avro_key(raw_key: str, sha256: str, table: str) -> str:
    """``<raw key>.<sha256[:16]>.<table>.avro``: beside the raw file, one per content version."""
    return f"{raw_key}.{sha256[:16]}.{table}.avro"


class _BlobOutput(io.RawIOBase):
    """A write-only, non-seekable file object over a blob writer (what fastavro writes to)."""

    def __init__(self, writer: BlobWriter) -> None:
        super().__init__()
        self._w = writer
        self.written = 0  # bytes, for the output-bytes metric

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        mv = memoryview(data)
        self._w.write(mv)
        self.written += mv.nbytes
        return mv.nbytes


class Converter:
    def __init__(
        self,
        blobs: BlobStore,
        bus: EventBus,
        status: StatusStore,
        *,
        topic_converted: str,
        lease_seconds: float = 60.0,
        max_attempts: int = 5,
        metrics: StageMetrics | None = None,
    ) -> None:
        self.blobs, self.bus, self.status = blobs, bus, status
        self.topic_converted = topic_converted
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.metrics = metrics if metrics is not None else StageMetrics("converter")
        self.worker_id = f"converter-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    def handle(self, msg: Message) -> None:
        m = self.metrics
        m.received(msg)
        m.in_flight(1)
        try:
            with logs.scope(**logs.event_fields(msg)):
                self._handle(msg)
        finally:
            m.in_flight(-1)

    def _handle(self, msg: Message) -> None:
        m = self.metrics
        d: Mapping[str, Any] = msg.data
        project, filename, sha = str(d["project"]), str(d["filename"]), str(d["sha256"])
        owner = f"{self.worker_id}-{uuid.uuid4().hex[:6]}"
        rec = stages.claim(
            self.status,
            project,
            filename,
            sha,
            from_stage="stored",
            to_stage="converting",
            owner=owner,
            lease_seconds=self.lease_seconds,
        )
        if rec is None:
            m.file("skipped")
            self._maybe_republish(project, filename, sha, d)
            return
        started = time.monotonic()
        raw_key = self.blobs.key_for_uri(rec.raw_uri)
        outputs: dict[str, BlobWriter] = {}
        buffers: list[io.BufferedWriter] = []
        sinks: list[_BlobOutput] = []

        def open_output(table: str) -> IO[bytes]:
            w = self.blobs.writer(
                avro_key(raw_key, sha, table),
                content_type="application/avro",
                metadata={"project": project, "source_file": filename, "sha256": sha, "table": table},
            )
            outputs[table] = w
            sinks.append(_BlobOutput(w))
            buffers.append(io.BufferedWriter(sinks[-1], buffer_size=1 << 20))  # type: ignore[arg-type]
            return buffers[-1]

        progress_stats: list[DecodeStats] = []

        def on_progress(s: DecodeStats) -> None:
            progress_stats[:] = [s]

        def show_progress(r: FileRecord) -> None:
            if progress_stats:
                r.records_read = progress_stats[0].records_read

        try:
            with (
                stages.Heartbeat(self.status, project, filename, owner, self.lease_seconds, show_progress),
                self.blobs.open(raw_key) as raw,
            ):
                result = convert_stream(
                    raw,
                    open_output,
                    project=project,
                    collector=rec.collector,
                    source_file=filename,
                    on_progress=on_progress,
                )
            for b in buffers:
                b.flush()
            uris = {t: self.blobs.uri(w.key) for t, w in outputs.items()}
            for w in outputs.values():
                w.commit()
        except NotMRTError as e:
            for w in outputs.values():
                w.abort()
            err = f"{project}/{filename}: stage converting: not an MRT file: {e}"
            log.warning("%s", err)
            m.error("not_mrt")
            m.file("failed")
            stages.fail(self.status, project, filename, sha, owner, err)
            return
        except Exception as e:
            for w in outputs.values():
                w.abort()
            log.exception("converting %s/%s failed (attempt %d)", project, filename, msg.attempt)
            err = f"{project}/{filename}: stage converting: {type(e).__name__}: {e}"
            m.error(type(e).__name__)
            m.file("failed" if msg.attempt >= self.max_attempts else "retry")
            if msg.attempt >= self.max_attempts:
                # Last attempt: the file says FAILED and why; raising sends the event to
                # the dead-letter topic, where operators can replay it after a fix.
                stages.fail(self.status, project, filename, sha, owner, err)
                raise
            # Hand the file back so the redelivered event can claim it at once.
            stages.finish(self.status, project, filename, sha, owner, _back_to_stored(err))
            raise

        done = stages.finish(self.status, project, filename, sha, owner, _converted(result, uris))
        if done is None:
            m.file("skipped")
            log.info("%s/%s changed while converting; result dropped", project, filename)
            return
        m.duration("convert", time.monotonic() - started)
        m.file("done", rec.size)
        for table, n in result.rows_by_table.items():
            m.rows(table, n)
        m.output_bytes(sum(s.written for s in sinks))
        self.bus.publish(
            self.topic_converted,
            {
                "project": project,
                "filename": filename,
                "sha256": sha,
                "upload_id": d.get("upload_id", ""),
                "avro": uris,
            },
        )
        log.info(
            "converted %s/%s: %d records, rows %s",
            project,
            filename,
            result.stats.records_read,
            result.stats.rows_by_type,
        )

    def _maybe_republish(self, project: str, filename: str, sha: str, d: Mapping[str, Any]) -> None:
        """A duplicate event for a file already converted: re-send the loader's event.

        The previous converter may have died between marking the file converted and
        publishing; the loader's claim makes a duplicate harmless.
        """
        rec = self.status.get(project, filename)
        if rec is not None and rec.sha256 == sha and rec.stage == "converted" and rec.status == "IN_PROGRESS":
            uris = {_table_of(u): u for u in rec.avro_uris}
            self.bus.publish(
                self.topic_converted,
                {
                    "project": project,
                    "filename": filename,
                    "sha256": sha,
                    "upload_id": d.get("upload_id", ""),
                    "avro": uris,
                },
            )


def _table_of(uri: str) -> str:
    return uri.rsplit(".", 2)[-2]


def _back_to_stored(err: str) -> Any:
    def apply(r: FileRecord) -> None:
        r.stage = "stored"
        r.error = err

    return apply


def _converted(result: ConvertResult, uris: dict[str, str]) -> Any:
    def apply(r: FileRecord) -> None:
        s = result.stats
        r.stage = "converted"
        r.avro_uris = sorted(uris.values())
        r.records_read = s.records_read
        r.rows_by_type = {k: v for k, v in s.rows_by_type.items() if v}
        r.skipped_by_reason = dict(s.skipped_by_reason)
        r.first_errors = list(s.first_errors)
        if s.truncated_at is not None:
            r.first_errors.insert(
                0,
                f"stopped: truncated at byte {s.truncated_at} of the decompressed stream (the file "
                "ends early or its compressed data is corrupt there: next line); every complete "
                "record before it was converted, nothing after it",
            )
        if result.mrt_type:
            if r.mrt_type and r.mrt_type != result.mrt_type:
                r.first_errors.append(f"archive path says {r.mrt_type} but the content is {result.mrt_type}")
            r.mrt_type = result.mrt_type
        r.error = ""

    return apply
