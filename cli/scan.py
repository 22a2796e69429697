"""Finding archive files under a local tree: layouts, archive paths and filters.

Recognised (see ``metadata.archive_path``): RouteViews ``COLLECTOR/bgpdata/YYYY.MM/
{RIBS,UPDATES}/{rib,updates}.YYYYMMDD.HHMM.bz2``, the old route-views2 layout
``bgpdata/YYYY.MM/...`` without a collector directory, and RIS ``rrcNN/YYYY.MM/
{bview,updates}.YYYYMMDD.HHMM.gz``. Only names shaped like archive files count, so
README files, checksums and partial files are ignored; so are hidden names, which is
where rsync and most collectors write a file before renaming it into place.
Symlinked files are followed, symlinked directories are not (no loops).

The walk costs one ``stat`` per file and reads nothing, so it is cheap enough to run
again on every backfill and on every start of ``watch``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Final

from rvcloud.metadata.archive_path import archive_path_from_local, parse_archive_path

# rib.20240101.0000.bz2, updates.20240101.0015.bz2, bview.20240101.0000.gz (an optional
# compression suffix; uncompressed archives exist in old RIS data).
ARCHIVE_NAME: Final = re.compile(r"(rib|bview|updates)\.\d{8}\.\d{4}(\.(bz2|gz))?")
TYPES: Final = {"ribs": "RIB", "rib": "RIB", "updates": "UPDATES"}


@dataclass(frozen=True, slots=True)
class LocalFile:
    """One archive file found on disk and what its path says about it."""

    path: str  # absolute local path
    filename: str  # archive path, e.g. route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2
    size: int
    mtime_ns: int
    collector: str
    mrt_type: str  # RIB or UPDATES
    file_time: int | None


@dataclass(slots=True)
class Filters:
    """Which files a backfill takes: empty collections mean "all"."""

    collectors: Collection[str] = ()
    types: Collection[str] = ()  # RIB, UPDATES
    since: int | None = None  # unix seconds, inclusive
    until: int | None = None  # unix seconds, exclusive

    def accepts(self, f: LocalFile) -> bool:
        if self.collectors and f.collector not in self.collectors:
            return False
        if self.types and f.mrt_type not in self.types:
            return False
        if self.since is not None and (f.file_time is None or f.file_time < self.since):
            return False
        return not (self.until is not None and (f.file_time is None or f.file_time >= self.until))


def parse_types(text: str) -> frozenset[str]:
    """``ribs,updates`` → {RIB, UPDATES}."""
    out = set()
    for word in text.split(","):
        word = word.strip().lower()
        if not word:
            continue
        if word not in TYPES:
            raise ValueError(f"unknown type {word!r}: use ribs and/or updates")
        out.add(TYPES[word])
    return frozenset(out)


@dataclass(slots=True)
class ScanStats:
    ignored: int = 0  # names that are not archive files, or paths outside the layouts
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def describe(path: str, project: str, st: os.stat_result) -> LocalFile | None:
    """The LocalFile for an archive file at ``path``; None if it is not one."""
    if not ARCHIVE_NAME.fullmatch(os.path.basename(path)):
        return None
    try:
        filename = archive_path_from_local(path)
    except ValueError:
        return None
    info = parse_archive_path(project, filename)
    if not info.collector or not info.mrt_type:
        return None
    return LocalFile(
        path=path,
        filename=filename,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        collector=info.collector,
        mrt_type=info.mrt_type,
        file_time=info.file_time,
    )


def _walk(directory: str, stats: ScanStats) -> Iterator[tuple[str, os.stat_result]]:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as e:
        stats.unreadable.append((directory, e.strerror or str(e)))
        return
    for entry in entries:
        if entry.name.startswith("."):
            stats.ignored += 1
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(entry.path, stats)
            elif entry.is_file(follow_symlinks=True):
                yield entry.path, entry.stat(follow_symlinks=True)
        except OSError as e:
            stats.unreadable.append((entry.path, e.strerror or str(e)))


def scan(root: str, project: str, filters: Filters, stats: ScanStats | None = None) -> list[LocalFile]:
    """Every archive file under ``root`` that the filters accept, oldest file time first."""
    stats = stats if stats is not None else ScanStats()
    found: list[LocalFile] = []
    for path, st in _walk(os.path.abspath(root), stats):
        f = describe(path, project, st)
        if f is None:
            stats.ignored += 1
        elif filters.accepts(f):
            found.append(f)
    found.sort(key=lambda f: (f.file_time or 0, f.filename))
    return found
