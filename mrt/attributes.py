"""BGP path attributes (RFC 4271 and friends) decoded into row columns.

``decode_attributes`` turns one raw attribute blob into an :class:`Attrs`: two
ready-made row templates (``base`` with the NEXT_HOP attribute as next hop,
``base_mp`` with the MP_REACH next hop) plus the MP_REACH/MP_UNREACH prefix
fields, which stay raw because their reading depends on the record (ADD-PATH).

Callers cache ``Attrs`` by the raw bytes: a RIB repeats a few tens of thousands
of attribute sets hundreds of thousands of times, so each is decoded once and a
row is a ``dict`` copy of the template plus the per-route keys. Templates and the
lists inside them are shared between rows: rows must be treated as read-only.

Malformed attributes follow RFC 7606 in spirit: an unreadable attribute that only
decorates a route (AGGREGATOR, communities, ...) is kept raw in
``unknown_attributes`` and reported; one the route cannot be understood without
(ORIGIN, AS_PATH, NEXT_HOP, MP_REACH, ...) raises :class:`AttrError` and the
caller drops the route.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from . import aspath, communities
from .nlri import ip_text, ipv4_text

ORIGIN: Final = 1
AS_PATH: Final = 2
NEXT_HOP: Final = 3
MED: Final = 4
LOCAL_PREF: Final = 5
ATOMIC_AGGREGATE: Final = 6
AGGREGATOR: Final = 7
COMMUNITIES: Final = 8
ORIGINATOR_ID: Final = 9
CLUSTER_LIST: Final = 10
MP_REACH: Final = 14
MP_UNREACH: Final = 15
EXT_COMMUNITIES: Final = 16
AS4_PATH: Final = 17
AS4_AGGREGATOR: Final = 18
IPV6_EXT_COMMUNITIES: Final = 25
LARGE_COMMUNITY: Final = 32
ONLY_TO_CUSTOMER: Final = 35

FLAG_EXTENDED_LENGTH: Final = 0x10

ORIGIN_NAMES: Final = {0: "IGP", 1: "EGP", 2: "INCOMPLETE"}

# Attributes whose damage loses information but not the route (RFC 7606 "attribute discard").
_DISCARDABLE: Final = frozenset(
    {
        ATOMIC_AGGREGATE,
        AGGREGATOR,
        AS4_AGGREGATOR,
        COMMUNITIES,
        EXT_COMMUNITIES,
        IPV6_EXT_COMMUNITIES,
        LARGE_COMMUNITY,
        ORIGINATOR_ID,
        CLUSTER_LIST,
        ONLY_TO_CUSTOMER,
        AS4_PATH,
        MED,
        LOCAL_PREF,
    }
)

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_AGG2 = struct.Struct(">H4s")
_AGG4 = struct.Struct(">I4s")


class AttrError(ValueError):
    """An attribute the route depends on is malformed."""


class MPNLRI:
    """Prefixes carried in MP_REACH_NLRI / MP_UNREACH_NLRI (kept raw until the record is known)."""

    __slots__ = ("afi", "data", "next_hop", "next_hop_ll", "safi")

    def __init__(
        self, afi: int, safi: int, data: bytes, next_hop: str | None = None, next_hop_ll: str | None = None
    ) -> None:
        self.afi = afi
        self.safi = safi
        self.data = data
        self.next_hop = next_hop
        self.next_hop_ll = next_hop_ll


class Attrs:
    """One decoded attribute blob."""

    __slots__ = ("base", "base_mp", "mp_reach", "mp_unreach", "notes")

    def __init__(self) -> None:
        self.base: dict[str, Any] = {}
        self.base_mp: dict[str, Any] = {}
        self.mp_reach: MPNLRI | None = None
        self.mp_unreach: MPNLRI | None = None
        self.notes: list[str] = []


def _next_hop(nh: bytes) -> tuple[str | None, str | None]:
    """Decode an MP_REACH next hop by its length (RFC 4760, 4364, 2545, 5549)."""
    n = len(nh)
    if n == 4:
        return ipv4_text(nh), None
    if n == 16:
        return ip_text(nh), None
    if n == 32:
        return ip_text(nh[:16]), ip_text(nh[16:])
    if n == 12:  # RD (always zero) + IPv4
        return ipv4_text(nh[8:]), None
    if n == 24:  # RD + IPv6
        return ip_text(nh[8:]), None
    if n == 48:  # RD + IPv6 + RD + link-local
        return ip_text(nh[8:24]), ip_text(nh[32:])
    if n == 0:
        return None, None
    raise AttrError(f"MP_REACH next hop length {n}")


def _mp_reach(v: bytes) -> MPNLRI:
    n = len(v)
    if n >= 1 and v[0] == n - 1:
        # RFC 6396 4.3.4: TABLE_DUMP_V2 keeps only next-hop length + next hop.
        nh, ll = _next_hop(v[1:])
        return MPNLRI(0, 0, b"", nh, ll)
    if n < 5:
        raise AttrError(f"MP_REACH too short ({n} bytes)")
    afi = (v[0] << 8) | v[1]
    safi = v[2]
    nhlen = v[3]
    p = 4 + nhlen
    if p + 1 > n:
        raise AttrError("MP_REACH next hop overruns attribute")
    nh, ll = _next_hop(v[4:p])
    # RFC 4760 reserved byte; it was the SNPA count in RFC 2858.
    snpas = v[p]
    p += 1
    for _ in range(snpas):
        if p >= n:
            raise AttrError("MP_REACH SNPA overruns attribute")
        p += 1 + (v[p] + 1) // 2
    if p > n:
        raise AttrError("MP_REACH SNPA overruns attribute")
    return MPNLRI(afi, safi, v[p:], nh, ll)


def decode_attributes(raw: bytes, asn_size: int, template: dict[str, Any]) -> Attrs:
    """Decode ``raw`` (the path attribute field) for a session with ``asn_size``-byte ASNs."""
    a = Attrs()
    base = template.copy()
    notes = a.notes
    unknown: list[str] = []
    seen: set[int] = set()
    segs: list[aspath.Segment] | None = None
    as4_segs: list[aspath.Segment] | None = None
    agg: tuple[int, str] | None = None
    as4_agg: tuple[int, str] | None = None
    next_hop: str | None = None
    ext: list[str] = []
    p = 0
    end = len(raw)
    while p < end:
        if p + 3 > end:
            raise AttrError(f"attribute header truncated at byte {p}")
        flags = raw[p]
        typ = raw[p + 1]
        if flags & FLAG_EXTENDED_LENGTH:
            if p + 4 > end:
                raise AttrError(f"attribute header truncated at byte {p}")
            alen = (raw[p + 2] << 8) | raw[p + 3]
            p += 4
        else:
            alen = raw[p + 2]
            p += 3
        if p + alen > end:
            raise AttrError(f"attribute {typ} (length {alen}) overruns the attribute field")
        v = raw[p : p + alen]
        p += alen
        if typ in seen:
            notes.append(f"duplicate attribute {typ} ignored")
            continue
        seen.add(typ)
        try:
            if typ == ORIGIN:
                if alen != 1 or v[0] not in ORIGIN_NAMES:
                    raise AttrError(f"bad ORIGIN {v.hex()}")
                base["origin"] = ORIGIN_NAMES[v[0]]
            elif typ == AS_PATH:
                try:
                    segs, swapped = aspath.parse_segments_any(v, asn_size)
                except aspath.ASPathError as e:
                    raise AttrError(f"AS_PATH: {e}") from None
                if swapped:
                    notes.append(f"AS_PATH decoded with {6 - asn_size}-byte ASNs")
            elif typ == NEXT_HOP:
                if alen not in (4, 16):
                    raise AttrError(f"NEXT_HOP length {alen}")
                next_hop = ip_text(v)
            elif typ == MED:
                if alen != 4:
                    raise AttrError(f"MED length {alen}")
                base["med"] = _U32.unpack(v)[0]
            elif typ == LOCAL_PREF:
                if alen != 4:
                    raise AttrError(f"LOCAL_PREF length {alen}")
                base["local_pref"] = _U32.unpack(v)[0]
            elif typ == ATOMIC_AGGREGATE:
                base["atomic_aggregate"] = True
            elif typ == AGGREGATOR:
                # The length, not the session, tells the ASN size (OpenBGPD writes 8 bytes in TABLE_DUMP).
                if alen == 6:
                    asn, ip = _AGG2.unpack(v)
                elif alen == 8:
                    asn, ip = _AGG4.unpack(v)
                else:
                    raise AttrError(f"AGGREGATOR length {alen}")
                agg = (asn, ipv4_text(ip))
            elif typ == COMMUNITIES:
                base["communities"] = communities.standard(v)
            elif typ == ORIGINATOR_ID:
                if alen != 4:
                    raise AttrError(f"ORIGINATOR_ID length {alen}")
                base["originator_id"] = ipv4_text(v)
            elif typ == CLUSTER_LIST:
                if alen % 4:
                    raise AttrError(f"CLUSTER_LIST length {alen}")
                base["cluster_list"] = [ipv4_text(v[i : i + 4]) for i in range(0, alen, 4)]
            elif typ == MP_REACH:
                a.mp_reach = _mp_reach(v)
            elif typ == MP_UNREACH:
                if alen < 3:
                    raise AttrError(f"MP_UNREACH length {alen}")
                a.mp_unreach = MPNLRI((v[0] << 8) | v[1], v[2], v[3:])
            elif typ == EXT_COMMUNITIES:
                ext.extend(communities.extended(v))
            elif typ == IPV6_EXT_COMMUNITIES:
                ext.extend(communities.extended(v, communities.IPV6_EXT_SIZE))
            elif typ == AS4_PATH:
                try:
                    as4_segs = aspath.parse_segments(v, 4)
                except aspath.ASPathError as e:
                    raise AttrError(f"AS4_PATH: {e}") from None
            elif typ == AS4_AGGREGATOR:
                if alen != 8:
                    raise AttrError(f"AS4_AGGREGATOR length {alen}")
                asn, ip = _AGG4.unpack(v)
                as4_agg = (asn, ipv4_text(ip))
            elif typ == LARGE_COMMUNITY:
                base["large_communities"] = communities.large(v)
            elif typ == ONLY_TO_CUSTOMER:
                if alen != 4:
                    raise AttrError(f"ONLY_TO_CUSTOMER length {alen}")
                base["only_to_customer"] = _U32.unpack(v)[0]
            else:
                unknown.append(f"{typ}:{flags}:{v.hex()}")
        except (AttrError, communities.CommunityError) as e:
            if typ not in _DISCARDABLE:
                raise AttrError(str(e)) from None
            notes.append(f"malformed attribute discarded: {e}")
            unknown.append(f"{typ}:{flags}:{v.hex()}")

    if asn_size == 2:
        # RFC 6793 4.2.3: an AGGREGATOR that is not AS_TRANS means a 2-byte speaker
        # aggregated after the AS4 part, so AS4_AGGREGATOR and AS4_PATH are stale.
        use_as4 = True
        if agg is not None and as4_agg is not None:
            if agg[0] == aspath.AS_TRANS:
                agg = as4_agg
            else:
                use_as4 = False
        if use_as4 and as4_segs is not None and segs is not None:
            if aspath.path_length(segs) >= aspath.path_length(as4_segs):
                segs = aspath.merge_as4(segs, as4_segs)
            else:
                notes.append("AS4_PATH longer than AS_PATH ignored")
    if segs is not None:
        base["as_path"] = aspath.path_text(segs)
        base["as_path_asns"] = aspath.flatten(segs)
        base["origin_asns"] = aspath.origin_asns(segs)
    if agg is not None:
        base["aggregator_asn"] = agg[0]
        base["aggregator_ip"] = agg[1]
    if ext:
        base["extended_communities"] = ext
    if unknown:
        base["unknown_attributes"] = unknown

    mp = a.mp_reach
    base_mp = base.copy()
    if mp is not None:
        base_mp["next_hop"] = mp.next_hop
        base_mp["next_hop_link_local"] = mp.next_hop_ll
    else:
        base_mp["next_hop"] = next_hop
    if next_hop is not None:
        base["next_hop"] = next_hop
    elif mp is not None:
        base["next_hop"] = mp.next_hop
        base["next_hop_link_local"] = mp.next_hop_ll
    a.base = base
    a.base_mp = base_mp
    return a
