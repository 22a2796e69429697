"""Archive paths: validating object keys and reading collector, type and time from them.

An archive path (e.g. ``route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2``)
arrives over the wire and becomes an object key in the blob store, so it is validated
as an untrusted string: it is never joined to a filesystem path before ``validate_key``
has accepted it, and the rules below are strict enough that a valid key can be used
under a directory without escaping it.

``parse_archive_path`` knows the RouteViews and RIS layouts:

- RouteViews: ``bgpdata/...`` and ``route-views2/bgpdata/...`` belong to the collector
  ``route-views2`` (its files historically live at the archive root); any other
  ``<name>/bgpdata/...`` belongs to ``<name>`` (``route-views.jinx``, ``route-views3``...).
- RIS: ``rrcNN/...`` belongs to ``rrcNN``.

``archive_path_from_local`` is the CLI's inverse direction: it cuts a local file path
down to the archive path (from the collector directory on).
"""

from __future__ import annotations

import calendar
import os
import re
from dataclasses import dataclass
from typing import Final

MAX_KEY_BYTES: Final = 1024

# Characters allowed in a key segment. Deliberately small: no spaces, quotes, '%',
# '~', '*', '?' or '#', so a key is safe in a filesystem path, a URI and a shell.
_KEY_CHARS: Final = re.compile(r"[A-Za-z0-9._+=@,\-/]+")
_PROJECT: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_RIS_COLLECTOR: Final = re.compile(r"rrc\d\d")
# RouteViews collectors are all named route-views*, e.g. route-views2, route-views.jinx.
_RV_COLLECTOR: Final = re.compile(r"route-views[A-Za-z0-9._-]*")
# ".YYYYMMDD.HHMM" followed by a dot (the compression suffix) or the end of the name.
_FILE_TIME: Final = re.compile(r"\.(\d{4})(\d{2})(\d{2})\.(\d{2})(\d{2})(?=\.|$)")

ROUTEVIEWS2: Final = "route-views2"
BGPDATA: Final = "bgpdata"


class InvalidKey(ValueError):
    """An archive path / object key that is not acceptable."""


@dataclass(frozen=True, slots=True)
class ArchivePathInfo:
    collector: str  # "" when the layout is not recognised
    mrt_type: str  # "RIB", "UPDATES" or "" (unknown)
    file_time: int | None  # unix seconds (UTC) from the name, None if absent


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is a valid object key, else raise InvalidKey."""
    if not isinstance(key, str):
        raise InvalidKey(f"key must be a string, not {type(key).__name__}")
    if not key:
        raise InvalidKey("key is empty")
    try:
        n = len(key.encode("utf-8"))
    except UnicodeEncodeError as e:  # lone surrogates
        raise InvalidKey(f"key is not valid UTF-8: {key!r}") from e
    if n > MAX_KEY_BYTES:
        raise InvalidKey(f"key is {n} bytes long, the maximum is {MAX_KEY_BYTES}")
    # The specific checks come before the character-class check so that the message
    # names the actual problem.
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        raise InvalidKey(f"key contains a control character: {key!r}")
    if "\\" in key:
        raise InvalidKey(f"key contains a backslash: {key!r}")
    if key.startswith("/"):
        raise InvalidKey(f"key must be relative (no leading '/'): {key!r}")
    if key.endswith("/"):
        raise InvalidKey(f"key must name an object, not a directory (trailing '/'): {key!r}")
    if "//" in key:
        raise InvalidKey(f"key has an empty segment ('//'): {key!r}")
    for seg in key.split("/"):
        if seg in (".", ".."):
            raise InvalidKey(f"key has a {seg!r} segment: {key!r}")
    if not _KEY_CHARS.fullmatch(key):
        bad = sorted({ch for ch in key if not _KEY_CHARS.fullmatch(ch)})
        raise InvalidKey(f"key contains characters outside [A-Za-z0-9._+=@,-/]: {bad!r} in {key!r}")
    return key


def validate_project(project: str) -> str:
    """Return ``project`` if it matches [a-z0-9][a-z0-9_-]{0,62}, else raise ValueError."""
    if not isinstance(project, str) or not _PROJECT.fullmatch(project):
        raise ValueError(f"invalid project {project!r}: expected [a-z0-9][a-z0-9_-]{{0,62}}")
    return project


def _file_time(basename: str) -> int | None:
    m = _FILE_TIME.search(basename)
    if not m:
        return None
    year, month, day, hour, minute = (int(g) for g in m.groups())
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        return None
    if not (hour < 24 and minute < 60):
        return None
    return calendar.timegm((year, month, day, hour, minute, 0, 0, 0, 0))


def _mrt_type(dirs: list[str], basename: str) -> str:
    # The name prefix is the most specific evidence; the directory is the fallback
    # (RouteViews keeps RIBS/ and UPDATES/ directories, RIS does not).
    low = basename.lower()
    if low.startswith(("rib.", "bview.")):
        return "RIB"
    if low.startswith("updates."):
        return "UPDATES"
    for d in reversed(dirs):
        if d == "RIBS":
            return "RIB"
        if d == "UPDATES":
            return "UPDATES"
    return ""


def _collector(segments: list[str]) -> str:
    if len(segments) < 2:
        return ""
    if segments[0] == BGPDATA:
        return ROUTEVIEWS2
    if len(segments) >= 3 and segments[1] == BGPDATA:
        return segments[0]
    if _RIS_COLLECTOR.fullmatch(segments[0]):
        return segments[0]
    return ""


def parse_archive_path(project: str, path: str) -> ArchivePathInfo:
    """Collector, MRT type and file time of an archive path.

    The layout decides the collector whatever the project (a RIS-style path is read as
    RIS); ``project`` is validated so callers get one error for a bad (project, path).
    An unrecognised layout gives collector "" and leaves the decision to the caller.
    """
    validate_project(project)
    validate_key(path)
    segments = path.split("/")
    basename = segments[-1]
    return ArchivePathInfo(
        collector=_collector(segments),
        mrt_type=_mrt_type(segments[:-1], basename),
        file_time=_file_time(basename),
    )


def archive_path_from_local(path: str) -> str:
    """The archive path inside a local file path: the part from the collector directory on.

    Recognised collector directories (the rightmost one wins, being closest to the file):
    ``route-views*/bgpdata/`` (kept with the collector name), a ``bgpdata/`` not preceded
    by a route-views* directory (route-views2's root layout), and ``rrcNN/``.
    Raises ValueError if none is found or the result is not a valid key.
    """
    norm = os.path.normpath(path)
    parts = [p for p in norm.split(os.sep) if p]
    dirs = parts[:-1]
    start: int | None = None
    for i in range(len(dirs) - 1, -1, -1):
        d = dirs[i]
        if d == BGPDATA:
            start = i - 1 if i > 0 and _RV_COLLECTOR.fullmatch(dirs[i - 1]) else i
            break
        if _RIS_COLLECTOR.fullmatch(d):
            start = i
            break
    if start is None:
        raise ValueError(
            f"cannot find the collector directory in {path!r}: expected .../route-views*/bgpdata/..., "
            ".../bgpdata/... or .../rrcNN/..."
        )
    return validate_key("/".join(parts[start:]))
