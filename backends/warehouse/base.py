"""Warehouse interface: tables ``ribs`` and ``updates`` loaded from Avro objects.

A load replaces every row of the listed source files in that table and inserts the
rows of the given Avro objects, atomically. ``load_id`` makes a load idempotent: a load
id that was already applied is not applied again (a retried job never loads twice).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LoadResult:
    load_id: str
    table: str
    rows: int
    already_applied: bool


class Warehouse(abc.ABC):
    # How long the loader lets converted files gather into one load by default. A
    # warehouse with a per-table load quota (BigQuery) needs a window; deployments set
    # one that fits the quota (deploy/: 300 s).
    default_batch_seconds: float = 2.0

    @abc.abstractmethod
    def ensure_tables(self) -> None:
        """Create ``ribs`` and ``updates`` from the row model if missing."""

    @abc.abstractmethod
    def load(
        self,
        table: str,
        avro_uris: Sequence[str],
        *,
        replace_sources: Sequence[tuple[str, str]],
        load_id: str,
    ) -> LoadResult:
        """Replace rows of (project, source_file) pairs with the rows in avro_uris."""

    @abc.abstractmethod
    def applied(self, load_id: str) -> bool:
        """Whether a load with this id has been applied (a loader taking over a dead
        loader's files asks this before loading them again)."""

    @abc.abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only SQL query (used by tests, the demo and `rvcloud query`)."""

    def close(self) -> None:  # noqa: B027 -- an optional hook, deliberately not abstract
        """Release resources (no-op by default)."""
