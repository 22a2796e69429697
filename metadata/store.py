"""Status store interface (the metadata service's storage).

``update`` is the only way to change a record: it reads the record, calls ``mutate``
with a copy, and writes the result only if nobody changed the record in between
(optimistic concurrency; retried internally). ``mutate`` returns None to leave the
record unchanged, which is how stages refuse a transition they do not expect.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

from rvcloud.metadata.record import FileRecord

Mutator = Callable[[FileRecord | None], FileRecord | None]


@dataclass(frozen=True, slots=True)
class ListFilter:
    project: str = ""
    collector: str = ""
    mrt_type: str = ""
    status: str = ""
    file_time_from: int | None = None  # inclusive, unix seconds
    file_time_to: int | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class Page:
    records: list[FileRecord]
    next_page_token: str


class StatusStore(abc.ABC):
    @abc.abstractmethod
    def get(self, project: str, filename: str) -> FileRecord | None: ...

    def get_many(self, project: str, filenames: list[str]) -> list[FileRecord | None]:
        """Records of several files, in order (backends with a batch read override this)."""
        return [self.get(project, f) for f in filenames]

    @abc.abstractmethod
    def update(self, project: str, filename: str, mutate: Mutator) -> tuple[FileRecord | None, bool]:
        """Apply ``mutate`` atomically; returns (resulting record, whether it changed).

        ``mutate`` receives None when no record exists; it must not mutate its argument
        in place (it gets a copy anyway) and must set ``updated_at`` itself.
        """

    @abc.abstractmethod
    def list(self, flt: ListFilter, page_size: int = 100, page_token: str = "") -> Page:
        """Records matching the filter, ordered by (project, filename)."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise if the store cannot be reached (health checks)."""

    def close(self) -> None:  # noqa: B027 -- an optional hook, deliberately not abstract
        """Release resources (no-op by default)."""
