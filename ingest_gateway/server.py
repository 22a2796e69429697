"""The ingest gateway: a thin gRPC front that stores raw archive files.

``Upload`` streams the client's chunks straight into the blob store (one chunk in
memory at a time), verifies size and SHA-256, commits the raw object atomically,
records the file as *stored* and publishes a ``stored`` event for the converter. It
never decodes MRT itself, so replicas stay cheap and stateless: all state lives in the
blob store, the status store and the bus.

Resumable uploads (``QueryWriteStatus`` and ``UploadHeader.write_offset``, after
google.bytestream): a file larger than one part (16 MiB by default) is written as
staged parts (``rvcloud.backends.blob.staging``), each committed to the blob store as
soon as it is full. When a stream ends early (cut, cancelled, past its deadline) the
replica also commits the part in progress as a shorter part, so only bytes that never
arrived are lost; a replica that dies loses at most its part in progress. The client
asks any replica for the committed size and sends the rest. The replica that continues
re-reads the committed parts from the blob store to hash them (hashlib's running
state cannot be saved, and keeping it on one replica would tie the upload to it), so
the SHA-256 checked at the end covers the whole file, exactly as composed. A resumed
stream (``resume``) takes over the receiving lease of the same sha256 and size even
before it expires: the replica holding it may be gone. The replica that lost the lease
notices within a second (its progress write is refused) and stops; its parts never
overwrite the new stream's (see the staging module on part keys).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, NoReturn

import grpc

from rvcloud.backends.blob import staging
from rvcloud.backends.blob.base import BlobNotFound, BlobStore, BlobWriter
from rvcloud.backends.blob.staging import Part, UploadSession
from rvcloud.backends.bus.base import EventBus
from rvcloud.ingest_gateway import logs
from rvcloud.ingest_gateway.metrics import GatewayMetrics
from rvcloud.metadata.archive_path import InvalidKey, parse_archive_path, validate_key, validate_project
from rvcloud.metadata.record import FileRecord
from rvcloud.metadata.store import ListFilter, StatusStore
from rvcloud.mrt import detect_encoding
from rvcloud.v1 import gateway_pb2 as pb
from rvcloud.v1 import gateway_pb2_grpc as pb_grpc

log = logging.getLogger("rvcloud.gateway")

MAX_CHUNK = 1 << 20
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_TYPES = {
    "bzip2": "application/x-bzip2",
    "gzip": "application/gzip",
    "none": "application/octet-stream",
}
# Progress is written to the status store at most this often during a stream.
_PROGRESS_EVERY_S = 1.0


def raw_key(project: str, filename: str) -> str:
    """Raw objects mirror the archive: ``<project>/<archive path>``."""
    return f"{project}/{filename}"


def record_to_proto(rec: FileRecord) -> pb.FileStatus:
    return pb.FileStatus(
        project=rec.project,
        filename=rec.filename,
        status=pb.Status.Name(pb.Status.Value(f"STATUS_{rec.status}")),
        stage=rec.stage,
        collector=rec.collector,
        mrt_type=rec.mrt_type,
        content_type=rec.content_type,
        content_encoding=rec.content_encoding,
        size=rec.size,
        sha256=rec.sha256,
        file_time=rec.file_time or 0,
        created_at=rec.created_at,
        updated_at=rec.updated_at,
        bytes_received=rec.bytes_received,
        raw_uri=rec.raw_uri,
        avro_uris=rec.avro_uris,
        records_read=rec.records_read,
        rows_by_type=rec.rows_by_type,
        skipped_by_reason=rec.skipped_by_reason,
        first_errors=rec.first_errors,
        warehouse_tables=rec.warehouse_tables,
        load_id=rec.load_id,
        error=rec.error,
        attempts=rec.attempts,
    )


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class GatewayService(pb_grpc.GatewayServicer):
    def __init__(
        self,
        blobs: BlobStore,
        bus: EventBus,
        status: StatusStore,
        *,
        topic_stored: str,
        max_file_size: int = 64 << 30,
        stale_receiving_s: float = 60.0,
        max_uploads: int = 0,
        retry_after_ms: int = 2000,
        metrics: GatewayMetrics | None = None,
        part_size: int = staging.DEFAULT_PART_SIZE,
        parts_max_age_s: float = staging.DEFAULT_MAX_AGE_S,
    ) -> None:
        """``max_uploads`` bounds concurrent uploads on this replica (0: only by the thread
        pool); beyond it Upload answers RESOURCE_EXHAUSTED with a ``retry-after-ms`` hint.

        ``part_size`` is the size of the staged parts of resumable uploads (every
        replica behind one load balancer must use the same); parts of uploads idle for
        ``parts_max_age_s`` are deleted by ``collect_abandoned_parts``."""
        self.blobs, self.bus, self.status = blobs, bus, status
        self.topic_stored = topic_stored
        self.max_file_size = max_file_size
        self.stale_receiving_s = stale_receiving_s
        self.max_uploads = max_uploads
        self.retry_after_ms = retry_after_ms
        self.metrics = metrics if metrics is not None else GatewayMetrics()
        self._slots = threading.BoundedSemaphore(max_uploads) if max_uploads > 0 else None
        staging.part_size_for(0, part_size)  # refuses a non-positive size now, not mid-upload
        self.part_size = part_size
        self.parts_max_age_s = parts_max_age_s
        self._janitor_stop = threading.Event()
        self._janitor: threading.Thread | None = None

    def _session(self, project: str, filename: str, sha256: str, size: int) -> UploadSession:
        return UploadSession(self.blobs, project, filename, sha256, size, part_size=self.part_size)

    # ---- abandoned parts -----------------------------------------------------------

    def collect_abandoned_parts(self) -> int:
        """Delete staged parts of uploads idle for ``parts_max_age_s``; returns how many."""
        return staging.collect_abandoned(self.blobs, self.parts_max_age_s)

    def start_janitor(self, interval_s: float = 3600.0) -> None:
        """Run ``collect_abandoned_parts`` every ``interval_s`` in a daemon thread.

        Every replica may run it: deletes are idempotent, and a session is judged by its
        newest part, so an upload in progress anywhere is never touched.
        """
        if self._janitor is not None:
            return

        def loop() -> None:
            while not self._janitor_stop.wait(interval_s):
                try:
                    n = self.collect_abandoned_parts()
                    if n:
                        log.info("deleted %d parts of abandoned uploads", n)
                except Exception:
                    log.exception("collecting abandoned upload parts failed")

        self._janitor = threading.Thread(target=loop, name="gateway-parts-janitor", daemon=True)
        self._janitor.start()

    def stop_janitor(self) -> None:
        self._janitor_stop.set()

    # ---- Upload --------------------------------------------------------------------

    def Upload(
        self, request_iterator: Iterator[pb.UploadRequest], context: grpc.ServicerContext
    ) -> pb.UploadResponse:
        # The slot is taken before the first message is read: a replica at its limit
        # reads nothing from the stream and touches no backend.
        if self._slots is not None and not self._slots.acquire(blocking=False):
            self.metrics.uploads.labels("rejected").inc()
            context.set_trailing_metadata((("retry-after-ms", str(self.retry_after_ms)),))
            _abort(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"upload: this gateway replica is receiving its maximum of {self.max_uploads} uploads; "
                f"retry after {self.retry_after_ms} ms",
            )
        started = time.monotonic()
        outcome = "failed"
        self.metrics.in_flight.inc()
        try:
            reply = self._upload(request_iterator, context)
            outcome = (
                "already_done"
                if reply.already_done
                else "already_in_progress"
                if reply.already_in_progress
                else "stored"
            )
            return reply
        finally:
            self.metrics.in_flight.dec()
            self.metrics.uploads.labels(outcome).inc()
            self.metrics.upload_seconds.labels(outcome).observe(time.monotonic() - started)
            if self._slots is not None:
                self._slots.release()

    def _upload(
        self, request_iterator: Iterator[pb.UploadRequest], context: grpc.ServicerContext
    ) -> pb.UploadResponse:
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("part") != "header":
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "upload: the first message must be the header")
        h = first.header
        try:
            project, filename, info = self._validate_header(h)
        except _Abort as e:
            _abort(context, e.code, e.message)
        logs.bind(project=project, file=filename)
        upload_id = uuid.uuid4().hex
        convert = h.convert if h.HasField("convert") else True
        session = self._session(project, filename, h.sha256, h.size)
        committed: list[Part] = []
        if h.write_offset > 0 and not self._holds(project, filename, h.sha256, h.size):
            # Checked before the claim, so a stale offset changes nothing anywhere. Parts
            # only appear (or all go at once when another stream commits), so the chain
            # listed here stays valid for this stream.
            try:
                committed = session.committed() if session.staged else []
            except Exception as e:
                log.exception("listing the parts of %s/%s failed", project, filename)
                _abort(context, grpc.StatusCode.UNAVAILABLE, f"{project}/{filename}: listing parts: {e}")
            have = sum(p.size for p in committed)
            if have != h.write_offset:
                _abort(
                    context,
                    grpc.StatusCode.ABORTED,
                    f"{project}/{filename}: stage receiving: cannot resume at byte {h.write_offset}: "
                    f"the service has committed {have} bytes of this upload (ask QueryWriteStatus)",
                )

        def claim(rec: FileRecord | None) -> FileRecord | None:
            now = time.time()
            if rec is not None and rec.sha256 == h.sha256:
                if rec.status == "DONE":
                    return None
                if rec.status == "IN_PROGRESS" and rec.stage != "receiving":
                    return None  # stored already: nothing left to receive
                receiving_alive = rec.status == "IN_PROGRESS" and rec.lease_until > now
                # The same sha256 and size identify the same upload: a stream resuming
                # it takes the lease over even if the replica holding it has not noticed
                # (or will never notice) that its stream is gone.
                takeover = h.resume and rec.size == h.size
                if receiving_alive and not takeover:
                    return None
            # Remember a version that reached the warehouse (even partly) so the loader
            # deletes its rows first.
            replaced = ""
            if rec is not None:
                reached = bool(rec.warehouse_tables) or rec.stage in ("loading", "loaded")
                replaced = rec.sha256 if reached else rec.replaced_sha256
            new = FileRecord(
                project=project,
                filename=filename,
                status="IN_PROGRESS",
                stage="receiving",
                collector=info.collector,
                mrt_type=info.mrt_type,
                size=h.size,
                sha256=h.sha256,
                file_time=info.file_time,
                created_at=rec.created_at if rec is not None else now,
                updated_at=now,
                attempts=1,
                lease_owner=upload_id,
                lease_until=now + self.stale_receiving_s,
                replaced_sha256=replaced,
            )
            return new

        rec, claimed = self.status.update(project, filename, claim)
        if not claimed:
            assert rec is not None
            done = rec.status == "DONE"
            log.info("upload %s/%s: %s", project, filename, "already done" if done else "already in progress")
            return pb.UploadResponse(
                file=record_to_proto(rec), already_done=done, already_in_progress=not done
            )

        try:
            rec = self._receive(
                request_iterator, context, project, filename, h, upload_id, convert, session, committed
            )
        except _Abort as e:
            self._fail(project, filename, h.sha256, upload_id, e.message)
            _abort(context, e.code, e.message)
        except Exception as e:
            log.exception("upload %s/%s failed", project, filename)
            msg = f"{project}/{filename}: stage receiving: internal error: {e}"
            self._fail(project, filename, h.sha256, upload_id, msg)
            _abort(context, grpc.StatusCode.UNAVAILABLE, msg)
        return pb.UploadResponse(file=record_to_proto(rec))

    def _holds(self, project: str, filename: str, sha256: str, size: int) -> bool:
        return _holds(self.status.get(project, filename), sha256, size)

    def _validate_header(self, h: pb.UploadHeader) -> tuple[str, str, Any]:
        bad = grpc.StatusCode.INVALID_ARGUMENT
        try:
            project = validate_project(h.project)
            filename = validate_key(h.filename)
        except (InvalidKey, ValueError) as e:
            raise _Abort(bad, f"{h.project}/{h.filename}: stage receiving: bad header: {e}") from None
        where = f"{project}/{filename}: stage receiving"
        if not _SHA_RE.match(h.sha256):
            raise _Abort(bad, f"{where}: sha256 must be 64 lower-case hex digits")
        if h.size < 0:
            raise _Abort(bad, f"{where}: negative size {h.size}")
        if not 0 <= h.write_offset <= h.size:
            raise _Abort(bad, f"{where}: write_offset {h.write_offset} outside the file of {h.size} bytes")
        if h.size > self.max_file_size:
            raise _Abort(
                bad,
                f"{where}: file of {h.size} bytes exceeds this gateway's limit of "
                f"{self.max_file_size} bytes (--max-file-size)",
            )
        info = parse_archive_path(project, filename)
        if not info.collector:
            raise _Abort(
                bad,
                f"{where}: archive path names no collector "
                "(expected COLLECTOR/bgpdata/..., bgpdata/... or rrcNN/...)",
            )
        return project, filename, info

    def _receive(
        self,
        it: Iterator[pb.UploadRequest],
        context: grpc.ServicerContext,
        project: str,
        filename: str,
        h: pb.UploadHeader,
        upload_id: str,
        convert: bool,
        session: UploadSession,
        committed: list[Part],
    ) -> FileRecord:
        """Receive the stream (from ``h.write_offset`` on), verify it, commit the raw object.

        ``committed`` is the chain of staged parts before ``write_offset`` (empty for a
        stream from byte 0). A staged upload writes its own parts after them; a small
        one streams into one raw writer, as before resumable uploads.
        """
        where = f"{project}/{filename}: stage receiving"
        hasher = hashlib.sha256()
        received = h.write_offset  # bytes of the file the service has: committed + streamed
        writer: BlobWriter | None = None  # the raw object's writer, or the current part's
        part_start = 0
        parts = list(committed)
        head = b""  # the file's first bytes: the encoding (magic number)
        encoding = ""
        last_progress = time.monotonic()
        bytes_counter = self.metrics.bytes_received.labels(project)
        part_writer_id = upload_id[:16]

        def keep_lease(force: bool = False) -> None:
            # Refresh the receiving lease; a refused refresh means a resumed stream took
            # this upload over (or it was failed): stop at once, write nothing more.
            nonlocal last_progress
            if not force and time.monotonic() - last_progress <= _PROGRESS_EVERY_S:
                return
            last_progress = time.monotonic()
            if not self._progress(project, filename, upload_id, received):
                raise _Abort(
                    grpc.StatusCode.ABORTED,
                    f"{where}: another stream of this upload took over at byte {received}",
                )

        def keep_partial() -> None:
            # The stream ended early (cut, cancelled, deadline): the part in progress
            # holds exactly the bytes received (gRPC delivers whole messages only), so
            # commit it as a shorter part and a resume loses only what never arrived.
            # Not for a stream that was taken over, and never worth failing the abort.
            nonlocal writer
            if writer is None or not session.staged or received <= part_start:
                return
            try:
                keep_lease(force=True)
                info = writer.commit()
            except Exception as e:
                log.info("not keeping the partial part of %s/%s: %s", project, filename, e)
                return
            writer = None
            parts.append(Part(info.key, part_start, info.size))
            log.info(
                "kept %d bytes of %s/%s: committed up to byte %d", info.size, project, filename, received
            )

        try:
            if sum(p.size for p in committed) != h.write_offset:
                # Only when the record changed between the offset check and the claim
                # (the file was stored, then failed later): the client must ask again.
                raise _Abort(
                    grpc.StatusCode.ABORTED,
                    f"{where}: cannot resume at byte {h.write_offset}: nothing is committed "
                    "(ask QueryWriteStatus)",
                )
            if committed:
                # Re-hash what earlier streams committed, from the blob store.
                done = 0
                try:
                    for data in session.read(committed):
                        if len(head) < 4:
                            head += data[: 4 - len(head)]
                        hasher.update(data)
                        done += len(data)
                        keep_lease()
                except BlobNotFound as e:
                    raise _Abort(
                        grpc.StatusCode.ABORTED,
                        f"{where}: a committed part went away after byte {done} ({e}); ask QueryWriteStatus",
                    ) from None
                log.info("resuming %s/%s at byte %d of %d", project, filename, received, h.size)
            try:
                for msg in it:
                    if msg.WhichOneof("part") != "chunk":
                        raise _Abort(
                            grpc.StatusCode.INVALID_ARGUMENT, f"{where}: header repeated at byte {received}"
                        )
                    chunk = msg.chunk
                    if len(chunk) > MAX_CHUNK:
                        raise _Abort(
                            grpc.StatusCode.INVALID_ARGUMENT,
                            f"{where}: chunk of {len(chunk)} bytes at byte {received} exceeds {MAX_CHUNK}",
                        )
                    if received + len(chunk) > h.size:
                        raise _Abort(
                            grpc.StatusCode.DATA_LOSS,
                            f"{where}: more data than the declared size {h.size} "
                            f"at byte {received + len(chunk)}",
                        )
                    if len(head) < 4:
                        head += chunk[: 4 - len(head)]
                    hasher.update(chunk)
                    bytes_counter.inc(len(chunk))
                    if not session.staged:
                        if writer is None:
                            encoding = detect_encoding(chunk[:4])
                            writer = self._open_writer(project, filename, h, encoding)
                        writer.write(chunk)
                        received += len(chunk)
                        keep_lease()
                        continue
                    view = memoryview(chunk)
                    while view:
                        if writer is None:
                            part_start = received
                            writer = session.open_part(part_start, part_writer_id)
                        end = session.part_end(part_start)
                        n = min(len(view), end - received)
                        writer.write(view[:n])
                        received += n
                        view = view[n:]
                        if received == end:
                            # Only the lease holder commits parts (a taken-over stream stops).
                            keep_lease(force=True)
                            info = writer.commit()
                            writer = None
                            parts.append(Part(info.key, part_start, info.size))
                    keep_lease()
            except grpc.RpcError as e:  # client went away mid-stream
                keep_partial()
                why = str(e) or "the client went away"
                raise _Abort(
                    grpc.StatusCode.CANCELLED, f"{where}: stream broken at byte {received}: {why}"
                ) from None
            if not context.is_active():
                keep_partial()
                raise _Abort(grpc.StatusCode.CANCELLED, f"{where}: client cancelled at byte {received}")
            if received != h.size:
                keep_partial()
                # (Also what a client's deadline looks like when the stream's end is seen
                # before the cancellation: the message names the byte either way.)
                raise _Abort(
                    grpc.StatusCode.DATA_LOSS,
                    f"{where}: stream ended at byte {received}, the header declared {h.size} bytes",
                )
            digest = hasher.hexdigest()
            if digest != h.sha256:
                if session.staged:
                    # These parts (this stream's and any it resumed from) are not that
                    # file: a retry must start from nothing.
                    session.discard()
                raise _Abort(
                    grpc.StatusCode.DATA_LOSS,
                    f"{where}: sha256 mismatch after {received} bytes: "
                    f"data has {digest}, header says {h.sha256}",
                )
            if session.staged:
                keep_lease(force=True)
                encoding = detect_encoding(head)
                info = session.compose(
                    raw_key(project, filename),
                    parts,
                    _CONTENT_TYPES[encoding],
                    self._raw_metadata(project, filename, h),
                )
                if info.size != h.size:
                    raise _Abort(
                        grpc.StatusCode.DATA_LOSS,
                        f"{where}: the composed object has {info.size} bytes, the upload {h.size}",
                    )
            else:
                if writer is None:  # empty file
                    encoding = "none"
                    writer = self._open_writer(project, filename, h, encoding)
                info = writer.commit()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise

        def stored(rec: FileRecord | None) -> FileRecord | None:
            if rec is None or rec.lease_owner != upload_id:
                return None
            new = copy.deepcopy(rec)
            new.stage = "stored"
            new.status = "IN_PROGRESS" if convert else "DONE"
            new.raw_uri = info.uri
            new.bytes_received = received
            new.content_encoding = encoding
            new.content_type = _CONTENT_TYPES[encoding]
            new.lease_owner = ""
            new.lease_until = 0.0
            new.updated_at = time.time()
            return new

        rec, ok = self.status.update(project, filename, stored)
        if not ok or rec is None:
            raise _Abort(grpc.StatusCode.ABORTED, f"{where}: a newer upload of this file took over")
        if session.staged:
            # After the record says stored: a crash before this point leaves the parts,
            # and a retry resumes at the end and composes again instead of re-sending.
            try:
                session.discard()
            except Exception:
                log.warning("deleting the parts of %s/%s failed (garbage collected later)", project, filename)
        if convert:
            try:
                self.bus.publish(
                    self.topic_stored,
                    {"project": project, "filename": filename, "sha256": h.sha256, "upload_id": upload_id},
                )
            except Exception as e:
                log.exception("publish failed for %s/%s", project, filename)
                raise _Abort(
                    grpc.StatusCode.UNAVAILABLE, f"{project}/{filename}: stage stored: publish failed: {e}"
                ) from e
        self.metrics.files_stored_bytes.labels(project).inc(received)
        log.info(
            "stored %s/%s (%d bytes, %s%s)",
            project,
            filename,
            received,
            encoding,
            f", {len(parts)} parts, resumed at byte {h.write_offset}" if h.write_offset else "",
        )
        return rec

    def _raw_metadata(self, project: str, filename: str, h: pb.UploadHeader) -> dict[str, str]:
        info = parse_archive_path(project, filename)
        return {
            "project": project,
            "collector": info.collector,
            "mrt_type": info.mrt_type,
            "sha256": h.sha256,
            "file_time": str(info.file_time or ""),
        }

    def _open_writer(self, project: str, filename: str, h: pb.UploadHeader, encoding: str) -> BlobWriter:
        return self.blobs.writer(
            raw_key(project, filename),
            content_type=_CONTENT_TYPES[encoding],
            metadata=self._raw_metadata(project, filename, h),
        )

    def _progress(self, project: str, filename: str, upload_id: str, received: int) -> bool:
        """Record progress and extend the lease; False when this stream no longer holds it."""

        def mutate(rec: FileRecord | None) -> FileRecord | None:
            if rec is None or rec.lease_owner != upload_id:
                return None
            new = copy.deepcopy(rec)
            new.bytes_received = received
            new.updated_at = time.time()
            new.lease_until = new.updated_at + self.stale_receiving_s
            return new

        _, ok = self.status.update(project, filename, mutate)
        return ok

    def _fail(self, project: str, filename: str, sha256: str, upload_id: str, error: str) -> None:
        def mutate(rec: FileRecord | None) -> FileRecord | None:
            if rec is None or rec.lease_owner != upload_id:
                return None
            new = copy.deepcopy(rec)
            new.status = "FAILED"
            new.error = error
            new.lease_owner = ""
            new.lease_until = 0.0
            new.updated_at = time.time()
            return new

        try:
            self.status.update(project, filename, mutate)
        except Exception:
            log.exception("could not record the failure of %s/%s", project, filename)

    # ---- queries -------------------------------------------------------------------

    def QueryWriteStatus(
        self, request: pb.QueryWriteStatusRequest, context: grpc.ServicerContext
    ) -> pb.QueryWriteStatusResponse:
        """Committed bytes of one upload, from the blob store (so any replica can answer)."""
        bad = grpc.StatusCode.INVALID_ARGUMENT
        try:
            project = validate_project(request.project)
            filename = validate_key(request.filename)
        except (InvalidKey, ValueError) as e:
            _abort(context, bad, f"query write status: {request.project}/{request.filename}: {e}")
        if not _SHA_RE.match(request.sha256):
            _abort(
                context,
                bad,
                f"query write status: {project}/{filename}: sha256 must be 64 lower-case hex digits",
            )
        if request.size < 0:
            _abort(context, bad, f"query write status: {project}/{filename}: negative size {request.size}")
        rec = self.status.get(project, filename)
        if _holds(rec, request.sha256, request.size):
            return pb.QueryWriteStatusResponse(committed_size=request.size, complete=True)
        in_progress = (
            rec is not None
            and rec.sha256 == request.sha256
            and rec.size == request.size
            and rec.status == "IN_PROGRESS"
            and rec.stage == "receiving"
            and rec.lease_until > time.time()
        )
        session = self._session(project, filename, request.sha256, request.size)
        return pb.QueryWriteStatusResponse(committed_size=session.committed_size(), in_progress=in_progress)

    def GetFile(self, request: pb.GetFileRequest, context: grpc.ServicerContext) -> pb.FileStatus:
        rec = self.status.get(request.project, request.filename)
        if rec is None:
            _abort(context, grpc.StatusCode.NOT_FOUND, f"{request.project}/{request.filename}: no such file")
        return record_to_proto(rec)

    def CheckFiles(
        self, request: pb.CheckFilesRequest, context: grpc.ServicerContext
    ) -> pb.CheckFilesResponse:
        if len(request.files) > MAX_CHECK_FILES:
            _abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"check: {len(request.files)} files in one call, at most {MAX_CHECK_FILES}",
            )
        try:
            names = [validate_key(f.filename) for f in request.files]
        except InvalidKey as e:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"check: bad archive path: {e}")
        recs = self.status.get_many(request.project, names)
        out = []
        for ref, rec in zip(request.files, recs, strict=True):
            if rec is None:
                out.append(pb.FileCheck(filename=ref.filename))
                continue
            out.append(
                pb.FileCheck(
                    filename=ref.filename,
                    done=rec.status == "DONE" and rec.sha256 == ref.sha256,
                    status=pb.Status.Name(pb.Status.Value(f"STATUS_{rec.status}")),
                    stage=rec.stage,
                    sha256=rec.sha256,
                )
            )
        return pb.CheckFilesResponse(files=out)

    def ListFiles(self, request: pb.ListFilesRequest, context: grpc.ServicerContext) -> pb.ListFilesResponse:
        flt = ListFilter(
            project=request.project,
            collector=request.collector,
            mrt_type=request.mrt_type,
            status=request.status,
            file_time_from=request.file_time_from if request.HasField("file_time_from") else None,
            file_time_to=request.file_time_to if request.HasField("file_time_to") else None,
        )
        size = request.page_size if 0 < request.page_size <= 1000 else 100
        try:
            page = self.status.list(flt, page_size=size, page_token=request.page_token)
        except ValueError as e:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"list: {e}")
        return pb.ListFilesResponse(
            files=[record_to_proto(r) for r in page.records], next_page_token=page.next_page_token
        )


MAX_CHECK_FILES = 1000


def _holds(rec: FileRecord | None, sha256: str, size: int) -> bool:
    """The record says the service has the whole file with this content (stored or later, or DONE)."""
    if rec is None or rec.sha256 != sha256 or rec.size != size:
        return False
    return rec.status == "DONE" or (rec.status == "IN_PROGRESS" and rec.stage != "receiving")


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)
    raise AssertionError("unreachable")  # context.abort raises
