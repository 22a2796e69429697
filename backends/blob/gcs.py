"""Blob store on Google Cloud Storage (URL ``gs://BUCKET[/PREFIX][?chunk_size=BYTES]``).

Object ``KEY`` is ``gs://BUCKET/PREFIX/KEY``. With ``STORAGE_EMULATOR_HOST`` set (tests,
``make dev-cloud``) the client talks to that emulator with anonymous credentials;
otherwise it uses Application Default Credentials. The bucket must exist
(:meth:`GcsBlobStore.ensure_bucket` creates it for set-up commands and tests).

Writes
------
The writer holds at most one chunk (``chunk_size``, default 8 MiB) in memory:

- An object that stays under one chunk is sent at commit as **one multipart request**
  (data and metadata together): atomic, and one round trip.
- A larger one becomes a **resumable upload**: each full chunk is sent as it fills,
  the final chunk at commit. GCS creates the object only when the final chunk arrives,
  so nothing is visible before ``commit()``; ``abort()`` cancels the session
  (``DELETE`` on the session URL), leaving no object. A failed chunk is retried after
  asking the server how much it kept (the resumable-upload status query).

Either way the upload carries ``ifGenerationMatch=G`` where ``G`` is the generation the
writer saw when it was opened (0: the object did not exist). The interface's "commit
replaces the object" therefore means *replace the version I saw*: a replayed or stale
writer never clobbers a newer version written meanwhile; it gets
:class:`StaleReplace` (HTTP 412) instead, and the newer version stays.

Custom metadata becomes ``x-goog-meta-*`` and the content type is stored as given.
``Content-Encoding`` is never set, so GCS never transcodes: a stored ``.gz`` downloads
byte-identical whatever the client's ``Accept-Encoding``.

Integrity: the writer computes CRC32C while streaming and compares it (and the size)
with what GCS reports for the committed generation; a mismatch deletes that generation
and raises :class:`BlobChecksumMismatch`. Readers are pinned to the generation they
opened (a concurrent replace cannot give a torn read; reading on after the old version
is gone fails instead), always download raw bytes (``raw_download``: no decompressive
transcoding), and check CRC32C when a read reaches the end of the object sequentially.

Compose
-------
``compose`` uses GCS's server-side compose (no data passes through the gateway). One
call takes at most 32 sources, so more are composed in rounds: groups of 32 become
intermediate objects under ``SCRATCH_PREFIX`` (a name no writer key can have, see
``rvcloud.backends.blob.base``), which are composed again until 32 or fewer remain;
the intermediates are deleted at the end (one left by a crash is garbage for
``staging.collect_abandoned``). The final call carries ``ifGenerationMatch`` like a
writer, and the result is checked against the sum of the source sizes.

Emulator gaps (fake-gcs-server v1.54, see ``../shared/docs/emulators.md`` §5 and
``tests/cloud/test_gcs_specifics.py``): it ignores ``ifGenerationMatch`` on resumable
uploads (only multipart uploads get 412), and it finalises an upload on a status query,
so the precondition tests use objects under one chunk and the retry path is tested
against a fake transport.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

import google_crc32c

from rvcloud.backends.blob.base import SCRATCH_PREFIX, BlobInfo, BlobNotFound, BlobStore, BlobWriter
from rvcloud.metadata.archive_path import InvalidKey, validate_key

log = logging.getLogger(__name__)

DEFAULT_CONTENT_TYPE = "application/octet-stream"
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
CHUNK_MULTIPLE = 256 * 1024  # resumable chunks must be multiples of 256 KiB
MAX_NAME = 1024  # bytes in a GCS object name
READ_CHUNK_SIZE = 16 * 1024 * 1024
MAX_COMPOSE_SOURCES = 32  # per compose request (GCS limit)
# HTTP statuses worth retrying a chunk for (per the GCS retry strategy guide).
_RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
_CHUNK_TRIES = 8
_HTTP_TIMEOUT = (60.0, 300.0)  # (connect, read) seconds


class StaleReplace(RuntimeError):
    """The object changed after the writer was opened (HTTP 412); nothing was written.

    Raised instead of overwriting a newer version: the caller lost a race or replayed
    an old request, and should re-read the current state before deciding to write again.
    """


class BlobChecksumMismatch(OSError):
    """CRC32C or size of the stored object differs from the bytes written or read."""


def new_crc32c() -> Any:
    """A running CRC32C (google-crc32c: the C extension the storage client uses)."""
    return google_crc32c.Checksum()  # type: ignore[no-untyped-call]  # the package is unannotated


def crc32c_b64(digest: bytes) -> str:
    """GCS's representation of a CRC32C: base64 of the big-endian 4-byte value."""
    return base64.b64encode(digest).decode("ascii")


def check_crc32c(expected_b64: str | None, digest: bytes, what: str) -> None:
    """Raise BlobChecksumMismatch unless ``digest`` matches GCS's ``crc32c`` field.

    A missing server checksum (composite objects have one; some emulators might not)
    is accepted: there is nothing to compare.
    """
    if expected_b64 is None:
        return
    got = crc32c_b64(digest)
    if got != expected_b64:
        raise BlobChecksumMismatch(f"{what}: CRC32C {got} != stored {expected_b64}")


def _is_not_found(e: BaseException) -> bool:
    return getattr(e, "code", None) == 404


def _is_precondition_failed(e: BaseException) -> bool:
    return getattr(e, "code", None) == 412


class _GcsBlobWriter(BlobWriter):
    def __init__(
        self,
        store: GcsBlobStore,
        key: str,
        content_type: str,
        metadata: Mapping[str, str],
        generation: int,
    ) -> None:
        self.key = key
        self._store = store
        self._name = store._name(key)
        self._content_type = content_type
        self._metadata = dict(metadata)
        self._generation = generation  # seen at open; 0 = absent
        self._buf = bytearray()
        self._crc = new_crc32c()
        self._size = 0
        self._sent = 0  # bytes acknowledged by the resumable session
        self._session: str | None = None
        self._done = False
        self._info: BlobInfo | None = None

    # ---- interface --------------------------------------------------------------

    def write(self, data: bytes | memoryview) -> None:
        if self._done:
            raise ValueError(f"writer for {self.key!r} is already committed or aborted")
        self._buf += data
        self._crc.update(bytes(data) if isinstance(data, memoryview) else data)
        self._size += len(data) if isinstance(data, bytes) else data.nbytes
        chunk = self._store.chunk_size
        try:
            while len(self._buf) >= chunk:
                # Never send the last bytes before commit: the final request is the one
                # that creates the object, so keep at least one byte for it.
                if len(self._buf) == chunk:
                    break
                self._send_chunk(chunk)
        except BaseException:
            self.abort()
            raise

    def commit(self) -> BlobInfo:
        if self._info is not None:
            return self._info
        if self._done:
            raise ValueError(f"writer for {self.key!r} was aborted")
        try:
            resource = self._finish_resumable() if self._session is not None else self._multipart()
            self._verify(resource)
        except BaseException:
            self.abort()
            raise
        self._done = True
        self._buf = bytearray()
        self._store._upload_finished(self)
        self._info = BlobInfo(
            key=self.key,
            size=self._size,
            uri=self._store.uri(self.key),
            content_type=self._content_type,
            metadata=dict(self._metadata),
        )
        return self._info

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._buf = bytearray()
        session, self._session = self._session, None
        self._store._upload_finished(self)
        if session is not None:
            # Cancel the session: GCS answers 499 and discards the uploaded chunks.
            try:
                self._store._http().delete(session, timeout=_HTTP_TIMEOUT)
            except Exception:
                # An abandoned session expires by itself after a week; never visible.
                log.warning("cancelling the upload session of %s failed", self.key, exc_info=True)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.abort()

    # ---- small objects: one multipart request ------------------------------------

    def _multipart(self) -> dict[str, Any]:
        blob = self._store._blob(self.key)
        blob.metadata = self._metadata or None
        try:
            blob.upload_from_file(
                io.BytesIO(self._buf),
                size=len(self._buf),
                content_type=self._content_type,
                if_generation_match=self._generation,
                checksum="crc32c",  # sent with the data: GCS refuses a corrupted upload
            )
        except Exception as e:
            if _is_precondition_failed(e):
                raise self._stale() from e
            raise
        return {"size": blob.size, "crc32c": blob.crc32c, "generation": blob.generation}

    # ---- large objects: resumable upload ----------------------------------------

    def _start_session(self) -> str:
        blob = self._store._blob(self.key)
        blob.metadata = self._metadata or None
        try:
            url = blob.create_resumable_upload_session(
                content_type=self._content_type,
                if_generation_match=self._generation,
                checksum=None,  # we check CRC32C ourselves (the whole object, at the end)
            )
        except Exception as e:
            if _is_precondition_failed(e):
                raise self._stale() from e
            raise
        self._session = str(url)
        self._store._upload_started(self)
        return self._session

    def _send_chunk(self, n: int) -> None:
        session = self._session or self._start_session()
        end = self._sent + n
        resp = self._put(session, self._sent, end, None)
        if resp.status_code != 308:
            raise OSError(f"GCS upload of {self.key!r}: expected 308 for a chunk, got {resp.status_code}")
        acked = self._acked(resp)
        if acked < end:
            # The server kept only part of the chunk; the rest is sent with the next one.
            log.info("GCS kept %d of %d bytes of a chunk of %s", acked - self._sent, n, self.key)
        del self._buf[: acked - self._sent]
        self._sent = acked

    def _finish_resumable(self) -> dict[str, Any]:
        assert self._session is not None
        total = self._sent + len(self._buf)
        resp = self._put(self._session, self._sent, total, total)
        while resp.status_code == 308:
            # Partially accepted final request: send what it did not keep.
            acked = self._acked(resp)
            del self._buf[: acked - self._sent]
            self._sent = acked
            resp = self._put(self._session, self._sent, total, total)
        if resp.status_code == 412:
            raise self._stale()
        if resp.status_code not in (200, 201):
            raise OSError(f"GCS upload of {self.key!r} failed: HTTP {resp.status_code} {resp.text[:500]}")
        self._session = None
        result: dict[str, Any] = resp.json()
        return result

    def _put(self, session: str, start: int, end: int, total: int | None) -> Any:
        """PUT bytes [start, end) of the object (``self._buf`` starts at ``self._sent``).

        Retries transient failures: after a failure it asks the server how much it has
        (``Content-Range: bytes */*``) and resends from there.
        """
        delay = 0.5
        for attempt in range(_CHUNK_TRIES):
            lo = start - self._sent
            body = bytes(self._buf[lo : lo + (end - start)])
            if end > start:
                crange = f"bytes {start}-{end - 1}/{'*' if total is None else total}"
            else:
                crange = f"bytes */{'*' if total is None else total}"
            try:
                resp = self._store._http().put(
                    session, data=body, headers={"Content-Range": crange}, timeout=_HTTP_TIMEOUT
                )
            except OSError:  # requests' ConnectionError/Timeout are OSErrors
                if attempt == _CHUNK_TRIES - 1:
                    raise
                log.warning("GCS chunk upload of %s failed; retrying", self.key, exc_info=True)
                resp = None
            if resp is not None and resp.status_code not in _RETRYABLE:
                return resp
            if attempt == _CHUNK_TRIES - 1:
                return resp
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 30.0)
            status = self._query(session)
            if status is None:
                continue
            if status.status_code in (200, 201):
                return status  # the failed request did complete the object
            if status.status_code == 308:
                acked = self._acked(status)
                del self._buf[: max(0, acked - self._sent)]
                self._sent = max(self._sent, acked)
                start = self._sent
                if start >= end and total is None:
                    return status  # the failed chunk arrived after all
        raise AssertionError("unreachable")

    def _query(self, session: str) -> Any:
        try:
            return self._store._http().put(
                session, data=b"", headers={"Content-Range": "bytes */*"}, timeout=_HTTP_TIMEOUT
            )
        except OSError:
            return None

    @staticmethod
    def _acked(resp: Any) -> int:
        # "Range: bytes=0-N" means N+1 bytes persisted; no header means none.
        rng = resp.headers.get("Range")
        if not rng:
            return 0
        return int(str(rng).rsplit("-", 1)[1]) + 1

    # ---- checks -----------------------------------------------------------------

    def _stale(self) -> StaleReplace:
        seen = "absent" if self._generation == 0 else f"generation {self._generation}"
        return StaleReplace(
            f"{self._store.uri(self.key)} changed after the writer was opened (it was {seen}); "
            "the newer version was kept"
        )

    def _verify(self, resource: Mapping[str, Any]) -> None:
        size = int(resource.get("size", -1))
        problem: str | None = None
        if size != self._size:
            problem = f"size {size} != {self._size} bytes written"
        else:
            try:
                check_crc32c(resource.get("crc32c"), self._crc.digest(), self._store.uri(self.key))
            except BlobChecksumMismatch as e:
                problem = str(e)
        if problem is None:
            return
        gen = resource.get("generation")
        with contextlib.suppress(Exception):
            # Remove exactly the corrupt version; a newer one by someone else stays.
            self._store._bucket.delete_blob(self._name, generation=int(gen) if gen else None)
        raise BlobChecksumMismatch(f"upload of {self._store.uri(self.key)} corrupted: {problem}")


class _GcsReader(io.RawIOBase):
    """Raw reader over a generation-pinned BlobReader; checks CRC32C at a sequential EOF.

    ``reopen()`` gives ``(reader, size, crc32c)`` for the current generation: if the
    pinned one disappears before the first byte was read (replaced between the stat and
    the download), the reader moves to the new version -- still one whole version.
    """

    def __init__(self, reopen: Callable[[], tuple[Any, int, str | None]], what: str) -> None:
        self._reopen = reopen
        self._inner, self._size, self._expected = reopen()
        self._what = what
        self._crc = new_crc32c()
        self._pos = 0
        self._sequential = True  # false after a seek: the running CRC means nothing then
        self._checked = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        for attempt in range(5):
            # The pinned generation's size is known: EOF needs no request (which would
            # 404 rather than 416 once a newer version has replaced ours).
            want = min(len(view), self._size - self._pos)
            if want <= 0:
                data = b""
                break
            try:
                data = self._inner.read(want)
                break
            except Exception as e:
                if not _is_not_found(e):
                    raise
                if self._pos > 0 or not self._sequential or attempt == 4:
                    # Mid-read: the version we were reading is gone; no consistent view.
                    raise BlobNotFound(f"{self._what} was replaced or deleted while being read") from e
                with contextlib.suppress(Exception):
                    self._inner.close()
                self._inner, self._size, self._expected = self._reopen()
        n = len(data)
        view[:n] = data
        if self._sequential:
            self._crc.update(data)
        self._pos += n
        if n == 0 and len(view) > 0 and self._sequential and not self._checked:
            self._checked = True
            if self._pos != self._size:
                raise BlobChecksumMismatch(f"{self._what}: read {self._pos} bytes, object has {self._size}")
            check_crc32c(self._expected, self._crc.digest(), self._what)
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        pos = int(self._inner.seek(offset, whence))
        if pos != self._pos:
            self._sequential = False
        self._pos = pos
        return pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._inner.close()
        super().close()


class GcsBlobStore(BlobStore):
    """See the module docstring. Thread-safe; share one per process."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: Any = None,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        read_chunk_size: int = READ_CHUNK_SIZE,
        list_page_size: int = 1000,
    ) -> None:
        if chunk_size <= 0 or chunk_size % CHUNK_MULTIPLE:
            raise ValueError(f"chunk_size must be a positive multiple of {CHUNK_MULTIPLE}")
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        self.bucket_name = bucket
        self.prefix = prefix
        self._prefix = prefix + "/" if prefix else ""
        self.client = client if client is not None else make_client()
        self._bucket = self.client.bucket(bucket)
        self.chunk_size = chunk_size
        self.read_chunk_size = read_chunk_size
        self.list_page_size = list_page_size
        self._lock = threading.Lock()
        self._uploads: dict[int, str] = {}

    @classmethod
    def from_url(cls, url: str, client: Any = None) -> GcsBlobStore:
        """``gs://BUCKET[/PREFIX][?chunk_size=BYTES]``."""
        parts = urlsplit(url)
        if parts.scheme != "gs" or not parts.netloc:
            raise ValueError(f"not a GCS URL: {url!r} (expected gs://BUCKET[/PREFIX])")
        kw: dict[str, int] = {}
        for k, vs in parse_qs(parts.query).items():
            if k not in ("chunk_size", "list_page_size"):
                raise ValueError(f"URL {url!r}: unknown parameter {k!r}")
            kw[k] = int(vs[-1])
        return cls(parts.netloc, parts.path.strip("/"), client, **kw)

    def __repr__(self) -> str:
        return f"GcsBlobStore({self.uri_prefix!r})"

    @property
    def uri_prefix(self) -> str:
        return f"gs://{self.bucket_name}/{self._prefix}"

    def ensure_bucket(self, location: str | None = None) -> None:
        """Create the bucket if it does not exist (set-up commands and tests)."""
        from google.api_core.exceptions import Conflict

        if self._bucket.exists():
            return
        with contextlib.suppress(Conflict):
            self.client.create_bucket(self.bucket_name, location=location)

    # ---- helpers ----------------------------------------------------------------

    def _check(self, key: str) -> str:
        validate_key(key)
        if len((self._prefix + key).encode()) > MAX_NAME:
            raise InvalidKey(f"key {key!r} with prefix {self._prefix!r} exceeds {MAX_NAME} bytes")
        return key

    def _name(self, key: str) -> str:
        return self._prefix + key

    def _blob(self, key: str, generation: int | None = None) -> Any:
        blob = self._bucket.blob(self._name(key), generation=generation)
        # A writer sends its own chunks; this only matters for BlobReader's range size.
        blob.chunk_size = self.read_chunk_size
        return blob

    def _http(self) -> Any:
        # The client's authorised requests session (anonymous for the emulator).
        return self.client._http

    def _upload_started(self, w: _GcsBlobWriter) -> None:
        with self._lock:
            self._uploads[id(w)] = w.key

    def _upload_finished(self, w: _GcsBlobWriter) -> None:
        with self._lock:
            self._uploads.pop(id(w), None)

    def uploads_in_progress(self) -> list[str]:
        """Keys with an open resumable session (bytes sent, object not yet created)."""
        with self._lock:
            return sorted(self._uploads.values())

    def _info(self, blob: Any) -> BlobInfo:
        key = str(blob.name)[len(self._prefix) :]
        updated = blob.updated
        return BlobInfo(
            key=key,
            size=int(blob.size or 0),
            uri=self.uri(key),
            content_type=str(blob.content_type or DEFAULT_CONTENT_TYPE),
            metadata=dict(blob.metadata or {}),
            updated=updated.timestamp() if updated is not None else 0.0,
        )

    def _get(self, key: str) -> Any:
        blob = self._bucket.get_blob(self._name(self._check(key)))
        if blob is None:
            raise BlobNotFound(key)
        return blob

    # ---- interface --------------------------------------------------------------

    def writer(
        self,
        key: str,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: Mapping[str, str] | None = None,
    ) -> BlobWriter:
        self._check(key)
        md = dict(metadata or {})
        for k, v in md.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"metadata must map str to str, got {k!r}: {v!r}")
        try:
            generation = int(self._get(key).generation)
        except BlobNotFound:
            generation = 0
        return _GcsBlobWriter(self, key, content_type, md, generation)

    def compose(
        self,
        key: str,
        sources: Sequence[str],
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: Mapping[str, str] | None = None,
    ) -> BlobInfo:
        from google.api_core.exceptions import NotFound

        self._check(key)
        if not sources:
            raise ValueError(f"compose of {key!r}: no sources")
        for src in sources:
            self._check(src)
        md = dict(metadata or {})
        try:
            generation = int(self._get(key).generation)
        except BlobNotFound:
            generation = 0
        names = [self._name(src) for src in sources]
        scratch: list[str] = []
        run = uuid.uuid4().hex
        try:
            try:
                sizes = {src: int(self._get(src).size or 0) for src in dict.fromkeys(sources)}
                expected = sum(sizes[src] for src in sources)
                while len(names) > MAX_COMPOSE_SOURCES:
                    # One round: every group of 32 becomes one intermediate object.
                    merged: list[str] = []
                    for i in range(0, len(names), MAX_COMPOSE_SOURCES):
                        group = names[i : i + MAX_COMPOSE_SOURCES]
                        if len(group) == 1:
                            merged.append(group[0])
                            continue
                        tmp = f"{self._prefix}{SCRATCH_PREFIX}compose-{run}-{len(scratch):05d}"
                        scratch.append(tmp)
                        self._bucket.blob(tmp).compose(
                            [self._bucket.blob(n) for n in group], if_generation_match=0
                        )
                        merged.append(tmp)
                    names = merged
                dest = self._blob(key)
                dest.content_type = content_type
                dest.metadata = md or None
                dest.compose([self._bucket.blob(n) for n in names], if_generation_match=generation)
            except NotFound as e:
                raise BlobNotFound(f"compose of {self.uri(key)}: a source is missing: {e}") from e
            except Exception as e:
                if _is_precondition_failed(e):
                    raise StaleReplace(
                        f"{self.uri(key)} changed while it was being composed; the newer version was kept"
                    ) from e
                raise
        finally:
            for tmp in scratch:
                with contextlib.suppress(Exception):
                    self._bucket.delete_blob(tmp)
        if int(dest.size or 0) != expected:
            with contextlib.suppress(Exception):
                self._bucket.delete_blob(dest.name, generation=dest.generation)
            raise BlobChecksumMismatch(
                f"compose of {self.uri(key)}: result has {dest.size} bytes, the sources {expected}"
            )
        return self._info(dest)

    def open(self, key: str) -> BinaryIO:
        self._check(key)

        def reopen() -> tuple[Any, int, str | None]:
            blob = self._get(key)  # BlobNotFound if it is gone for good
            pinned = self._blob(key, generation=int(blob.generation))
            # raw_download: never let the client or server decompress (no transcoding).
            inner = pinned.open("rb", chunk_size=self.read_chunk_size, raw_download=True)
            return inner, int(blob.size or 0), blob.crc32c

        raw = _GcsReader(reopen, self.uri(key))
        # BlobReader already fetches read_chunk_size ranges; this buffer only serves
        # small reads (readline, read(10)) without a call into it each time.
        return io.BufferedReader(raw, buffer_size=256 * 1024)

    def stat(self, key: str) -> BlobInfo:
        return self._info(self._get(key))

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        self._check(key)
        with contextlib.suppress(NotFound):
            self._bucket.delete_blob(self._name(key))

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        if prefix:
            validate_key(prefix + "x")  # as the file store: a prefix some key could have
        # GCS lists in byte order of names, which is key order (keys are ASCII).
        for blob in self.client.list_blobs(
            self._bucket, prefix=self._prefix + prefix, page_size=self.list_page_size
        ):
            key = str(blob.name)[len(self._prefix) :]
            try:
                validate_key(key)
            except InvalidKey:
                continue  # an object no writer of ours could have made
            yield self._info(blob)

    def uri(self, key: str) -> str:
        return self.uri_prefix + self._check(key)

    def key_for_uri(self, uri: str) -> str:
        if not uri.startswith(self.uri_prefix):
            raise ValueError(f"URI {uri!r} is not in the blob store at {self.uri_prefix}")
        return self._check(uri[len(self.uri_prefix) :])


def make_client(project: str | None = None) -> Any:
    """A storage client: anonymous against ``STORAGE_EMULATOR_HOST``, else default credentials."""
    from google.cloud.storage import Client

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return Client(
            project=project or os.environ.get("GOOGLE_CLOUD_PROJECT") or "rvcloud-emulator",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        )
    return Client(project=project)
