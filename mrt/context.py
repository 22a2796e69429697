"""Per-decode state shared by the record decoders: row templates, caches, peer table, stats."""

from __future__ import annotations

from typing import Any, Final

from . import schema
from .attributes import Attrs, decode_attributes
from .nlri import PrefixParser
from .stats import DecodeStats

# Bounds on the attribute caches. A cached RIB template is ~1.5 KB (jinx: 80k distinct
# sets, ~120 MB); an ``Attrs`` holds two templates. Update streams rarely repeat a blob
# (MP_REACH carries the prefixes), so their cache is kept small. Clearing on overflow
# is crude but cheap and never wrong.
RIB_CACHE_LIMIT: Final = 200_000
ATTR_CACHE_LIMIT: Final = 20_000


class RecordError(Exception):
    """A record cannot be turned into rows; ``reason`` is its skip reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Context:
    __slots__ = (
        "attr_cache",
        "peers",
        "prefixes",
        "rib_cache_mp",
        "rib_cache_nh",
        "stats",
        "template",
    )

    def __init__(self, project: str, collector: str, source_file: str, stats: DecodeStats) -> None:
        t = schema.empty_row()
        t["project"] = project
        t["collector"] = collector
        t["source_file"] = source_file
        self.template: dict[str, Any] = t
        self.stats = stats
        self.prefixes = PrefixParser()
        # Keyed by (asn_size, raw attribute bytes).
        self.attr_cache: dict[tuple[int, bytes], Attrs] = {}
        # TABLE_DUMP_V2 hot path: raw bytes -> row template, by next-hop preference.
        self.rib_cache_nh: dict[bytes, dict[str, Any]] = {}
        self.rib_cache_mp: dict[bytes, dict[str, Any]] = {}
        self.peers: list[tuple[str, int]] | None = None

    def attrs(self, raw: bytes, asn_size: int, idx: int, off: int) -> Attrs:
        """Decoded attributes for ``raw`` (cached); raises AttributeError subclasses of ValueError."""
        key = (asn_size, raw)
        a = self.attr_cache.get(key)
        if a is None:
            a = decode_attributes(raw, asn_size, self.template)
            if a.notes:
                for n in a.notes:
                    self.note("attribute_problem", f"record {idx} @ {off}: {n}")
            if len(self.attr_cache) >= ATTR_CACHE_LIMIT:
                self.attr_cache.clear()
            self.attr_cache[key] = a
        return a

    def note(self, name: str, message: str | None = None) -> None:
        self.stats.skip("note:" + name)
        if message:
            self.stats.error(message)
