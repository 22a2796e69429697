"""Blob store interface: named immutable objects written by streaming.

Keys are validated object keys (``rvcloud.metadata.archive_path.validate_key``), never
filesystem paths.
A writer makes nothing visible until ``commit()``; ``abort()`` (or an exception inside
the ``with`` block) leaves no trace. Committing replaces an existing object atomically.

``compose`` concatenates committed objects into a new one (GCS's compose; the file
store copies). Resumable uploads (``rvcloud.backends.blob.staging``) are built on the
two: each part of an upload is an ordinary committed object, so a part exists only
once it was written completely, and the parts become the final object in one step.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import BinaryIO

# Backend-internal intermediate objects (GCS compose rounds). No archive key starts
# with a dot segment (keys begin with the project name), so none can collide; anything
# here that outlives its operation is garbage (see ``staging.collect_abandoned``).
SCRATCH_PREFIX = ".rvcloud-scratch/"


class BlobNotFound(KeyError):
    """The object does not exist."""


@dataclass(frozen=True, slots=True)
class BlobInfo:
    key: str
    size: int
    uri: str
    content_type: str = "application/octet-stream"
    metadata: Mapping[str, str] = field(default_factory=dict)
    # Unix seconds of the last write (0.0 when the writer does not know it yet); what
    # age-based clean-up of abandoned upload parts goes by.
    updated: float = 0.0


class BlobWriter(abc.ABC):
    """A streaming write; nothing is visible under ``key`` before ``commit``."""

    key: str

    @abc.abstractmethod
    def write(self, data: bytes | memoryview) -> None: ...

    @abc.abstractmethod
    def commit(self) -> BlobInfo:
        """Make the object visible atomically (replacing any previous version)."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Discard everything written; safe to call twice or after commit (no-op)."""

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if et is not None:
            self.abort()


class BlobStore(abc.ABC):
    """Small interface in the spirit of Upspin's cloud/storage."""

    @abc.abstractmethod
    def writer(
        self,
        key: str,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
    ) -> BlobWriter: ...

    @abc.abstractmethod
    def compose(
        self,
        key: str,
        sources: Sequence[str],
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
    ) -> BlobInfo:
        """Make ``key`` the concatenation of the committed objects ``sources``, in order.

        Like a writer's commit: atomic, replaces an existing ``key``, and nothing is
        visible under ``key`` if it fails. The sources are left as they are (they may be
        deleted afterwards without touching the result) and may be repeated. Raises
        BlobNotFound when a source does not exist and ValueError for no sources.
        """

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the committed object; raises BlobNotFound."""

    @abc.abstractmethod
    def stat(self, key: str) -> BlobInfo:
        """Raises BlobNotFound."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; no error if it does not exist."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Committed objects whose key starts with prefix, in key order."""

    @abc.abstractmethod
    def uri(self, key: str) -> str:
        """Stable URI naming the object (file:///..., gs://bucket/...)."""

    @abc.abstractmethod
    def key_for_uri(self, uri: str) -> str:
        """Inverse of uri(); raises ValueError for a URI of another store."""

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except BlobNotFound:
            return False
        return True
