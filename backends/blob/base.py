"""Blob store interface: named immutable objects written by streaming.

Keys are validated object keys (``rvcloud.metadata.archive_path.validate_key``), never
filesystem paths.
A writer makes nothing visible until ``commit()``; ``abort()`` (or an exception inside
the ``with`` block) leaves no trace. Committing replaces an existing object atomically.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import BinaryIO


class BlobNotFound(KeyError):
    """The object does not exist."""


@dataclass(frozen=True, slots=True)
class BlobInfo:
    key: str
    size: int
    uri: str
    content_type: str = "application/octet-stream"
    metadata: Mapping[str, str] = field(default_factory=dict)


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
