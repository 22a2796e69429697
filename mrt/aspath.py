"""AS_PATH / AS4_PATH decoding, the RFC 6793 merge, and bgpdump's text form.

A path is a list of segments ``(type, asns)``. Text follows ``bgpdump -m``:
AS_SEQUENCE members space separated, AS_SET ``{a,b}``, AS_CONFED_SEQUENCE
``(a b)``, AS_CONFED_SET ``[a,b]``, segments separated by a space.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

AS_SET: Final = 1
AS_SEQUENCE: Final = 2
AS_CONFED_SEQUENCE: Final = 3
AS_CONFED_SET: Final = 4

AS_TRANS: Final = 23456

_OPEN: Final = {AS_SET: "{", AS_CONFED_SEQUENCE: "(", AS_CONFED_SET: "["}
_CLOSE: Final = {AS_SET: "}", AS_CONFED_SEQUENCE: ")", AS_CONFED_SET: "]"}
_SEP: Final = {AS_SET: ",", AS_SEQUENCE: " ", AS_CONFED_SEQUENCE: " ", AS_CONFED_SET: ","}

Segment = tuple[int, tuple[int, ...]]

_FMT_CACHE: dict[tuple[int, int], struct.Struct] = {}


class ASPathError(ValueError):
    """The AS_PATH bytes are not a valid sequence of segments."""


def _fmt(n: int, size: int) -> struct.Struct:
    s = _FMT_CACHE.get((n, size))
    if s is None:
        s = struct.Struct(">" + ("I" if size == 4 else "H") * n)
        _FMT_CACHE[(n, size)] = s
    return s


def parse_segments(data: bytes, asn_size: int) -> list[Segment]:
    """Split AS_PATH bytes into segments; ``asn_size`` is 2 or 4."""
    segs: list[Segment] = []
    p = 0
    end = len(data)
    while p < end:
        if p + 2 > end:
            raise ASPathError("segment header truncated")
        typ = data[p]
        n = data[p + 1]
        if typ not in _SEP:
            raise ASPathError(f"bad segment type {typ}")
        q = p + 2 + n * asn_size
        if q > end:
            raise ASPathError("segment overruns attribute")
        segs.append((typ, _fmt(n, asn_size).unpack_from(data, p + 2)))
        p = q
    return segs


def parse_segments_any(data: bytes, asn_size: int) -> tuple[list[Segment], bool]:
    """Parse with ``asn_size``; if that fails, try the other size.

    Returns ``(segments, swapped)``. Some writers put 4-byte paths into records
    whose subtype implies 2-byte ASNs (and vice versa).
    """
    try:
        return parse_segments(data, asn_size), False
    except ASPathError:
        return parse_segments(data, 6 - asn_size), True


def path_text(segs: Sequence[Segment]) -> str:
    """The ``bgpdump -m`` rendering of a path."""
    parts = []
    for typ, asns in segs:
        if not asns:
            continue
        body = _SEP[typ].join(map(str, asns))
        if typ == AS_SEQUENCE:
            parts.append(body)
        else:
            parts.append(_OPEN[typ] + body + _CLOSE[typ])
    return " ".join(parts)


def path_length(segs: Sequence[Segment]) -> int:
    """RFC 4271 path length as bgpdump counts it for the AS4 merge: sets count 1."""
    n = 0
    for typ, asns in segs:
        n += 1 if typ in (AS_SET, AS_CONFED_SET) else len(asns)
    return n


def merge_as4(as_path: Sequence[Segment], as4_path: Sequence[Segment]) -> list[Segment]:
    """RFC 6793 section 4.2.3: keep the leading part of AS_PATH, then AS4_PATH.

    If AS4_PATH is longer than AS_PATH it is ignored (the caller checks this).
    """
    keep = path_length(as_path) - path_length(as4_path)
    out: list[Segment] = []
    count = 0
    for typ, asns in as_path:
        if count >= keep:
            break
        if typ in (AS_SET, AS_CONFED_SET):
            out.append((typ, asns))
            count += 1
        else:
            take = min(len(asns), keep - count)
            out.append((typ, asns[:take]))
            count += take
    out.extend(as4_path)
    return out


def flatten(segs: Sequence[Segment]) -> list[int]:
    out: list[int] = []
    for _, asns in segs:
        out.extend(asns)
    return out


def origin_asns(segs: Sequence[Segment]) -> list[int]:
    """Last ASN of the path, or every member of a trailing (confed) set."""
    for typ, asns in reversed(segs):
        if not asns:
            continue
        if typ in (AS_SET, AS_CONFED_SET):
            return list(asns)
        return [asns[-1]]
    return []
