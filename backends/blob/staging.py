"""Staged parts of resumable uploads: the bytes a cut upload keeps, in the blob store.

A large upload is written as *parts*: ordinary blob objects of ``part_size`` bytes
(the last one shorter), each committed as soon as it is full. A part therefore exists
only once it was written completely, and it lives in the blob store, not on the
gateway replica that received it: after a cut stream, any replica can list the parts,
tell the client how many leading bytes are committed, and continue from there. When
the last byte has arrived the parts are composed into the raw object in one step
(``BlobStore.compose``) and deleted.

Keys
----
``.rvcloud-uploads/<session>.<start>.<writer>``:

- ``session`` is the SHA-256 (hex) of (project, filename, sha256, size): an upload is
  identified by what is uploaded, so a resumed stream on another replica finds the
  parts, and a different file, content or size never does (a wrong sha256 or size
  starts from nothing). Being a digest, it is 64 hex digits whatever the filename: no
  part key can leave the prefix, and none is derived from a string off the wire.
- ``start`` is the part's first byte in the file, 15 decimal digits (so that key
  order is file order; 10**15 bytes is far beyond any file we accept).
- ``writer`` is a random id of the stream that wrote it. Streams never overwrite each
  other's parts: a replica that has not yet noticed its stream was taken over can
  still commit a part, but it commits it under its own name, so the parts a stream
  has hashed are exactly the parts it composes (see ``committed``).

No archive key starts with a dot segment (raw keys begin with the project name), so
parts never mix with archive objects.

Why parts and not a GCS resumable upload session: a session URL belongs to one object
write and only its holder knows how far it got; sharing it between replicas would put
the URL in the status store and tie the design to GCS (the file store has nothing
like it), and the emulator finalises a session when asked for its status, so the path
could not be tested. Parts are plain objects: every backend has them, any replica can
list them, and ``compose`` is server-side on GCS (no data passes through the gateway).
The cost is one more write of the data on the file store (compose copies) and a few
object operations per part on GCS.

Abandoned parts
---------------
A client that never comes back leaves parts behind. ``collect_abandoned`` deletes
every session whose newest part is older than a limit (the gateway runs it
periodically; a week by default, like a GCS resumable session), and scratch objects of
interrupted composes. On GCS a bucket lifecycle rule on the prefix (delete after N
days) does the same without a process.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from rvcloud.backends.blob.base import SCRATCH_PREFIX, BlobInfo, BlobNotFound, BlobStore, BlobWriter
from rvcloud.metadata.archive_path import validate_key, validate_project

log = logging.getLogger("rvcloud.blob.staging")

PREFIX = ".rvcloud-uploads/"
MIB = 1 << 20
# 16 MiB: a cut upload re-sends at most this much, and a 64 GiB file still needs no
# more than MAX_PARTS parts. Smaller parts would mean more objects and compose work.
DEFAULT_PART_SIZE = 16 * MIB
# Larger files get larger parts, so that no upload has more parts than this (each is
# an object write, a listing entry and a compose source).
MAX_PARTS = 1000
DEFAULT_MAX_AGE_S = 7 * 24 * 3600.0
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_WRITER_RE = re.compile(r"^[0-9a-f]{8,32}$")
_PART_RE = re.compile(
    r"^\.rvcloud-uploads/(?P<sid>[0-9a-f]{64})\.(?P<start>[0-9]{15})\.(?P<writer>[0-9a-f]{8,32})$"
)
_START_DIGITS = 15


def part_size_for(size: int, base: int = DEFAULT_PART_SIZE) -> int:
    """The part size of a ``size``-byte upload: ``base``, or more so that there are at most MAX_PARTS.

    It depends only on the size and the configured base, so every replica (with the
    same configuration) cuts the same upload at the same boundaries.
    """
    if base <= 0:
        raise ValueError(f"part size must be positive, not {base}")
    need = -(-size // MAX_PARTS)  # ceil
    if need <= base:
        return base
    return -(-need // MIB) * MIB  # grown: whole MiB


def session_id(project: str, filename: str, sha256: str, size: int) -> str:
    """The name of an upload's parts: a digest of what is uploaded (see the module docstring)."""
    text = f"rvcloud-upload-v1\0{project}\0{filename}\0{sha256}\0{size}"
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Part:
    key: str
    start: int
    size: int
    updated: float = 0.0

    @property
    def end(self) -> int:
        return self.start + self.size


def parse_part_key(key: str) -> tuple[str, int, str] | None:
    """(session, start, writer) of a part key, or None for any other key."""
    m = _PART_RE.match(key)
    if m is None:
        return None
    return m["sid"], int(m["start"]), m["writer"]


class UploadSession:
    """The parts of one upload: (project, filename, sha256, size) in one blob store."""

    def __init__(
        self,
        blobs: BlobStore,
        project: str,
        filename: str,
        sha256: str,
        size: int,
        *,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        validate_project(project)
        validate_key(filename)
        if not _SHA_RE.match(sha256):
            raise ValueError(f"sha256 must be 64 lower-case hex digits, not {sha256!r}")
        if size < 0:
            raise ValueError(f"negative size {size}")
        self.blobs = blobs
        self.project, self.filename, self.sha256, self.size = project, filename, sha256, size
        self.id = session_id(project, filename, sha256, size)
        self.part_size = part_size_for(size, part_size)

    @property
    def prefix(self) -> str:
        return f"{PREFIX}{self.id}."

    @property
    def staged(self) -> bool:
        """Whether this upload goes through parts: only when it needs more than one.

        A file of at most one part is written straight to its raw object as before:
        there would be nothing to resume before its end anyway.
        """
        return self.size > self.part_size

    def part_key(self, start: int, writer: str) -> str:
        if not 0 <= start < self.size:
            raise ValueError(f"part start {start} outside the upload of {self.size} bytes")
        if not _WRITER_RE.match(writer):
            raise ValueError(f"writer id must be 8-32 lower-case hex digits, not {writer!r}")
        key = f"{self.prefix}{start:0{_START_DIGITS}d}.{writer}"
        return validate_key(key)

    def part_end(self, start: int) -> int:
        """Where the part starting at ``start`` ends (exclusive)."""
        return min(start + self.part_size, self.size)

    def parts(self) -> list[Part]:
        """Every committed part of this upload, in start order (any writer)."""
        out = []
        for info in self.blobs.list(self.prefix):
            parsed = parse_part_key(info.key)
            if parsed is None or parsed[0] != self.id:
                continue
            out.append(Part(info.key, parsed[1], info.size, info.updated))
        return out

    def committed(self) -> list[Part]:
        """The parts that make up the committed leading bytes: a chain from byte 0.

        Several streams may have written a part at the same start (a resumed stream and
        the replica it took over from); any of them holds the same bytes of the same
        file if the clients were honest, and the final SHA-256 check catches any other
        case. The longest one is taken; parts that extend past the file are ignored.
        """
        by_start: dict[int, Part] = {}
        for p in self.parts():
            if p.size <= 0 or p.end > self.size:
                continue
            best = by_start.get(p.start)
            if best is None or p.size > best.size:
                by_start[p.start] = p
        chain: list[Part] = []
        pos = 0
        while pos < self.size and pos in by_start:
            part = by_start[pos]
            chain.append(part)
            pos = part.end
        return chain

    def committed_size(self) -> int:
        return sum(p.size for p in self.committed()) if self.staged else 0

    def open_part(self, start: int, writer: str) -> BlobWriter:
        """A writer for the part starting at ``start``; visible (committed) only when complete."""
        meta = {
            "project": self.project,
            "filename": self.filename,
            "sha256": self.sha256,
            "size": str(self.size),
            "start": str(start),
        }
        return self.blobs.writer(self.part_key(start, writer), metadata=meta)

    def read(self, parts: list[Part], chunk: int = 4 * MIB) -> Iterator[bytes]:
        """The bytes of ``parts`` in order, checked against their listed sizes."""
        for p in parts:
            got = 0
            with self.blobs.open(p.key) as f:
                while data := f.read(chunk):
                    got += len(data)
                    yield data
            if got != p.size:
                raise BlobNotFound(f"part {p.key} has {got} bytes, it was listed with {p.size}")

    def compose(
        self, key: str, parts: list[Part], content_type: str, metadata: Mapping[str, str]
    ) -> BlobInfo:
        return self.blobs.compose(key, [p.key for p in parts], content_type=content_type, metadata=metadata)

    def discard(self) -> int:
        """Delete every part of this upload (after the commit, or when they proved wrong)."""
        n = 0
        for p in self.parts():
            self.blobs.delete(p.key)
            n += 1
        return n


def collect_abandoned(
    blobs: BlobStore, max_age_s: float = DEFAULT_MAX_AGE_S, now: float | None = None
) -> int:
    """Delete upload sessions whose newest part is older than ``max_age_s``, and old scratch objects.

    A session is judged by its newest part, so an upload that is still receiving (or
    was resumed recently) keeps all of its parts. Objects whose age the backend does
    not report (``updated == 0``) are kept. Safe to run on several replicas at once:
    deleting twice is not an error. Returns the number of objects deleted.
    """
    now = time.time() if now is None else now
    limit = now - max_age_s
    sessions: dict[str, list[BlobInfo]] = {}
    for info in blobs.list(PREFIX):
        parsed = parse_part_key(info.key)
        # A stray object under the prefix that no stream wrote is grouped by itself.
        sessions.setdefault(parsed[0] if parsed else info.key, []).append(info)
    deleted = 0
    for sid, infos in sessions.items():
        newest = max(i.updated for i in infos)
        if min(i.updated for i in infos) <= 0 or newest >= limit:
            continue
        for i in infos:
            with contextlib.suppress(BlobNotFound):
                blobs.delete(i.key)
                deleted += 1
        log.info("deleted the %d parts of abandoned upload %s", len(infos), sid[:16])
    for info in blobs.list(SCRATCH_PREFIX):
        if 0 < info.updated < limit:
            blobs.delete(info.key)
            deleted += 1
    return deleted
