"""A small, deterministic MRT encoder (RFC 6396, RFC 8050, RFC 6793, RFC 4271/4760/8092/9234).

It is the inverse of the decoder for tests, fuzz seeds and synthetic benchmark files: a
data model goes in, bytes come out, and the same input always gives the same bytes.

Data model
    ``PathAttributes`` (with ``AsPathSegment``, ``Aggregator``, ``UnknownAttribute``)
    describes one route's BGP path attributes. ``Nlri`` is a prefix with an optional
    ADD-PATH path identifier. ``Update`` is a BGP UPDATE: IPv4 prefixes go into the
    classic withdrawn/NLRI fields, IPv6 prefixes into MP_REACH_NLRI / MP_UNREACH_NLRI.

Records
    Record builders return a ``Record`` (MRT type, subtype, body); ``MrtWriter`` adds
    the common header (and the microsecond field for BGP4MP_ET) and writes it.

    - TABLE_DUMP_V2: ``peer_index_table``, ``rib_entry_record`` (IPv4/IPv6 unicast,
      optionally the RFC 8050 ADDPATH subtypes). Attributes use 4-byte ASNs and the
      abbreviated MP_REACH_NLRI of RFC 6396 section 4.3.4 for IPv6.
    - TABLE_DUMP (v1): ``table_dump_record`` (2-byte ASNs; AS4_PATH when needed).
    - BGP4MP / BGP4MP_ET: ``bgp4mp_message`` wraps any BGP message (``bgp_update_message``,
      ``bgp_open_message``, ``bgp_keepalive_message``, ``bgp_notification_message``) in
      MESSAGE, MESSAGE_AS4 or their ADDPATH subtypes; ``bgp4mp_update`` is the
      shortcut for an UPDATE; ``bgp4mp_state_change`` writes STATE_CHANGE(_AS4).

Encoding rules
    - Attributes are written in type-code order; the extended-length flag is set exactly
      when a value is longer than 255 bytes.
    - On 2-byte-ASN encodings (BGP4MP MESSAGE, TABLE_DUMP v1) an ASN above 65535 in the
      AS path or aggregator is replaced by AS_TRANS (23456) and the real values travel
      in AS4_PATH / AS4_AGGREGATOR (RFC 6793; confederation segments are left out of
      AS4_PATH as that RFC requires).
    - AS_SEQUENCE / confederation-sequence segments longer than 255 ASNs are split;
      a set longer than 255 members is rejected (splitting would change its meaning).
    - BGP messages may exceed 4096 bytes (RFC 8654 extended messages) up to 65535.
    - Prefixes must be canonical (no host bits set); invalid input raises ``ValueError``.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, Protocol

AS_TRANS: Final = 23456
BGP_MAX_MESSAGE: Final = 65535
_MARKER: Final = b"\xff" * 16


class MrtType(IntEnum):
    TABLE_DUMP = 12
    TABLE_DUMP_V2 = 13
    BGP4MP = 16
    BGP4MP_ET = 17


class TableDumpV2Subtype(IntEnum):
    PEER_INDEX_TABLE = 1
    RIB_IPV4_UNICAST = 2
    RIB_IPV6_UNICAST = 4
    RIB_IPV4_UNICAST_ADDPATH = 8
    RIB_IPV6_UNICAST_ADDPATH = 10


class Bgp4mpSubtype(IntEnum):
    STATE_CHANGE = 0
    MESSAGE = 1
    MESSAGE_AS4 = 4
    STATE_CHANGE_AS4 = 5
    MESSAGE_LOCAL = 6
    MESSAGE_AS4_LOCAL = 7
    MESSAGE_ADDPATH = 8
    MESSAGE_AS4_ADDPATH = 9
    MESSAGE_LOCAL_ADDPATH = 10
    MESSAGE_AS4_LOCAL_ADDPATH = 11


class BgpMessageType(IntEnum):
    OPEN = 1
    UPDATE = 2
    NOTIFICATION = 3
    KEEPALIVE = 4


class Origin(IntEnum):
    IGP = 0
    EGP = 1
    INCOMPLETE = 2


class SegmentType(IntEnum):
    AS_SET = 1
    AS_SEQUENCE = 2
    AS_CONFED_SEQUENCE = 3
    AS_CONFED_SET = 4


class AttrType(IntEnum):
    ORIGIN = 1
    AS_PATH = 2
    NEXT_HOP = 3
    MULTI_EXIT_DISC = 4
    LOCAL_PREF = 5
    ATOMIC_AGGREGATE = 6
    AGGREGATOR = 7
    COMMUNITIES = 8
    ORIGINATOR_ID = 9
    CLUSTER_LIST = 10
    MP_REACH_NLRI = 14
    MP_UNREACH_NLRI = 15
    EXTENDED_COMMUNITIES = 16
    AS4_PATH = 17
    AS4_AGGREGATOR = 18
    IPV6_EXTENDED_COMMUNITIES = 25
    LARGE_COMMUNITIES = 32
    ONLY_TO_CUSTOMER = 35


FLAG_OPTIONAL: Final = 0x80
FLAG_TRANSITIVE: Final = 0x40
FLAG_EXTENDED_LENGTH: Final = 0x10

_WELL_KNOWN: Final = FLAG_TRANSITIVE
_OPT_NON_TRANSITIVE: Final = FLAG_OPTIONAL
_OPT_TRANSITIVE: Final = FLAG_OPTIONAL | FLAG_TRANSITIVE

AFI_IPV4: Final = 1
AFI_IPV6: Final = 2
SAFI_UNICAST: Final = 1


@dataclass(frozen=True, slots=True)
class AsPathSegment:
    type: SegmentType
    asns: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Aggregator:
    asn: int
    ip: str


@dataclass(frozen=True, slots=True)
class UnknownAttribute:
    """An attribute the writer does not model, written as given (type, flags, value).

    The extended-length bit is added to ``flags`` when ``value`` is longer than 255 bytes.
    """

    type_code: int
    flags: int
    value: bytes

    @property
    def wire_flags(self) -> int:
        return self.flags | (FLAG_EXTENDED_LENGTH if len(self.value) > 255 else 0)


@dataclass(frozen=True, slots=True)
class PathAttributes:
    """One route's path attributes. ``None`` / empty means "attribute absent".

    ``next_hop`` is the IPv4 NEXT_HOP attribute; ``mp_next_hop`` (global) and
    ``mp_next_hop_link_local`` go into MP_REACH_NLRI for IPv6 routes.
    ``extended_communities`` are 8-byte values, ``ipv6_extended_communities`` 20-byte.
    """

    origin: Origin | None = Origin.IGP
    as_path: tuple[AsPathSegment, ...] = ()
    next_hop: str | None = None
    mp_next_hop: str | None = None
    mp_next_hop_link_local: str | None = None
    med: int | None = None
    local_pref: int | None = None
    atomic_aggregate: bool = False
    aggregator: Aggregator | None = None
    communities: tuple[tuple[int, int], ...] = ()
    large_communities: tuple[tuple[int, int, int], ...] = ()
    extended_communities: tuple[bytes, ...] = ()
    ipv6_extended_communities: tuple[bytes, ...] = ()
    only_to_customer: int | None = None
    originator_id: str | None = None
    cluster_list: tuple[str, ...] = ()
    unknown: tuple[UnknownAttribute, ...] = ()


@dataclass(frozen=True, slots=True)
class Nlri:
    """A prefix in canonical CIDR text, with an ADD-PATH path id where the encoding has one."""

    prefix: str
    path_id: int | None = None


@dataclass(frozen=True, slots=True)
class Update:
    """A BGP UPDATE. IPv4 prefixes use the classic fields, IPv6 prefixes MP_(UN)REACH_NLRI."""

    announce: tuple[Nlri, ...] = ()
    withdraw: tuple[Nlri, ...] = ()
    attributes: PathAttributes | None = None


@dataclass(frozen=True, slots=True)
class Peer:
    """A PEER_INDEX_TABLE entry; ``as4=None`` writes a 4-byte ASN only when it is needed."""

    bgp_id: str
    ip: str
    asn: int
    as4: bool | None = None


@dataclass(frozen=True, slots=True)
class RibEntry:
    """A TABLE_DUMP_V2 RIB entry; ``attributes`` may be a ready attribute block (bytes),
    e.g. from ``encode_rib_entry_attributes`` or a deliberately malformed one."""

    peer_index: int
    originated_time: int
    attributes: PathAttributes | bytes
    path_id: int | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """The BGP4MP header fields of one BGP session (``ifindex`` is the interface index)."""

    peer_ip: str
    peer_as: int
    local_ip: str
    local_as: int
    ifindex: int = 0


@dataclass(frozen=True, slots=True)
class Record:
    type: MrtType
    subtype: int
    body: bytes


# ---- primitives ---------------------------------------------------------------------


def _u8(v: int) -> bytes:
    return struct.pack(">B", v)


def _u16(v: int) -> bytes:
    return struct.pack(">H", v)


def _u32(v: int) -> bytes:
    return struct.pack(">I", v)


def _ip(addr: str) -> bytes:
    return ipaddress.ip_address(addr).packed


def _ipv4(addr: str) -> bytes:
    return ipaddress.IPv4Address(addr).packed


def _ipv6(addr: str) -> bytes:
    return ipaddress.IPv6Address(addr).packed


def _network(prefix: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(prefix, strict=True)


def encode_prefix(prefix: str, path_id: int | None = None) -> bytes:
    """One NLRI entry: [path id (4)] length (1) and the significant prefix bytes."""
    net = _network(prefix)
    plen = net.prefixlen
    head = _u32(path_id) if path_id is not None else b""
    return head + _u8(plen) + net.network_address.packed[: (plen + 7) // 8]


def _is_v6(prefix: str) -> bool:
    return _network(prefix).version == 6


def _asn_fits(asn: int, as4: bool) -> int:
    if not 0 <= asn <= 0xFFFFFFFF:
        raise ValueError(f"ASN out of range: {asn}")
    if not as4 and asn > 0xFFFF:
        raise ValueError(f"ASN {asn} does not fit a 2-byte field")
    return asn


# ---- path attributes ----------------------------------------------------------------


def _attr(type_code: int, flags: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError(f"attribute {type_code} too long: {len(value)} bytes")
    if len(value) > 255:
        return _u8(flags | FLAG_EXTENDED_LENGTH) + _u8(type_code) + _u16(len(value)) + value
    return _u8(flags & ~FLAG_EXTENDED_LENGTH) + _u8(type_code) + _u8(len(value)) + value


def _split_segments(segments: Iterable[AsPathSegment]) -> list[AsPathSegment]:
    out: list[AsPathSegment] = []
    for seg in segments:
        if len(seg.asns) <= 255:
            out.append(seg)
        elif seg.type in (SegmentType.AS_SET, SegmentType.AS_CONFED_SET):
            raise ValueError(f"{seg.type.name} with {len(seg.asns)} members (> 255)")
        else:
            out.extend(AsPathSegment(seg.type, seg.asns[i : i + 255]) for i in range(0, len(seg.asns), 255))
    return out


def _encode_as_path(segments: Sequence[AsPathSegment], asn_size: int) -> bytes:
    fmt = ">H" if asn_size == 2 else ">I"
    out = bytearray()
    for seg in _split_segments(segments):
        out += _u8(seg.type) + _u8(len(seg.asns))
        for asn in seg.asns:
            out += struct.pack(fmt, asn)
    return bytes(out)


def _needs_as4(attrs: PathAttributes) -> tuple[bool, bool]:
    """(AS4_PATH needed, AS4_AGGREGATOR needed) for a 2-byte-ASN encoding."""
    path = any(a > 0xFFFF for s in attrs.as_path for a in s.asns)
    agg = attrs.aggregator is not None and attrs.aggregator.asn > 0xFFFF
    return path, agg


def encode_path_attributes(
    attrs: PathAttributes,
    *,
    as4: bool,
    mp_reach: bytes | None = None,
    mp_unreach: bytes | None = None,
) -> bytes:
    """The path attribute block. ``mp_reach``/``mp_unreach`` are ready attribute values."""
    items: list[tuple[int, bytes]] = []

    def add(type_code: int, flags: int, value: bytes) -> None:
        items.append((type_code, _attr(type_code, flags, value)))

    if attrs.origin is not None:
        add(AttrType.ORIGIN, _WELL_KNOWN, _u8(attrs.origin))
    for seg in attrs.as_path:
        for asn in seg.asns:
            _asn_fits(asn, True)
    as4_path, as4_agg = (False, False) if as4 else _needs_as4(attrs)
    if as4:
        add(AttrType.AS_PATH, _WELL_KNOWN, _encode_as_path(attrs.as_path, 4))
    else:
        two = tuple(
            AsPathSegment(s.type, tuple(a if a <= 0xFFFF else AS_TRANS for a in s.asns))
            for s in attrs.as_path
        )
        add(AttrType.AS_PATH, _WELL_KNOWN, _encode_as_path(two, 2))
        if as4_path:
            no_confed = [s for s in attrs.as_path if s.type in (SegmentType.AS_SET, SegmentType.AS_SEQUENCE)]
            add(AttrType.AS4_PATH, _OPT_TRANSITIVE, _encode_as_path(no_confed, 4))
    if attrs.next_hop is not None:
        add(AttrType.NEXT_HOP, _WELL_KNOWN, _ipv4(attrs.next_hop))
    if attrs.med is not None:
        add(AttrType.MULTI_EXIT_DISC, _OPT_NON_TRANSITIVE, _u32(attrs.med))
    if attrs.local_pref is not None:
        add(AttrType.LOCAL_PREF, _WELL_KNOWN, _u32(attrs.local_pref))
    if attrs.atomic_aggregate:
        add(AttrType.ATOMIC_AGGREGATE, _WELL_KNOWN, b"")
    if attrs.aggregator is not None:
        agg = attrs.aggregator
        _asn_fits(agg.asn, True)
        if as4:
            add(AttrType.AGGREGATOR, _OPT_TRANSITIVE, _u32(agg.asn) + _ipv4(agg.ip))
        else:
            add(AttrType.AGGREGATOR, _OPT_TRANSITIVE, _u16(AS_TRANS if as4_agg else agg.asn) + _ipv4(agg.ip))
            if as4_agg:
                add(AttrType.AS4_AGGREGATOR, _OPT_TRANSITIVE, _u32(agg.asn) + _ipv4(agg.ip))
    if attrs.communities:
        add(AttrType.COMMUNITIES, _OPT_TRANSITIVE, b"".join(_u16(a) + _u16(v) for a, v in attrs.communities))
    if attrs.originator_id is not None:
        add(AttrType.ORIGINATOR_ID, _OPT_NON_TRANSITIVE, _ipv4(attrs.originator_id))
    if attrs.cluster_list:
        add(AttrType.CLUSTER_LIST, _OPT_NON_TRANSITIVE, b"".join(_ipv4(c) for c in attrs.cluster_list))
    if mp_reach is not None:
        add(AttrType.MP_REACH_NLRI, _OPT_NON_TRANSITIVE, mp_reach)
    if mp_unreach is not None:
        add(AttrType.MP_UNREACH_NLRI, _OPT_NON_TRANSITIVE, mp_unreach)
    if attrs.extended_communities:
        for ec in attrs.extended_communities:
            if len(ec) != 8:
                raise ValueError(f"extended community must be 8 bytes, got {len(ec)}")
        add(AttrType.EXTENDED_COMMUNITIES, _OPT_TRANSITIVE, b"".join(attrs.extended_communities))
    if attrs.ipv6_extended_communities:
        for ec in attrs.ipv6_extended_communities:
            if len(ec) != 20:
                raise ValueError(f"IPv6 extended community must be 20 bytes, got {len(ec)}")
        add(AttrType.IPV6_EXTENDED_COMMUNITIES, _OPT_TRANSITIVE, b"".join(attrs.ipv6_extended_communities))
    if attrs.large_communities:
        add(
            AttrType.LARGE_COMMUNITIES,
            _OPT_TRANSITIVE,
            b"".join(_u32(g) + _u32(a) + _u32(b) for g, a, b in attrs.large_communities),
        )
    if attrs.only_to_customer is not None:
        add(AttrType.ONLY_TO_CUSTOMER, _OPT_TRANSITIVE, _u32(attrs.only_to_customer))
    for unk in attrs.unknown:
        items.append((unk.type_code, _attr(unk.type_code, unk.wire_flags, unk.value)))
    items.sort(key=lambda item: item[0])
    return b"".join(blob for _, blob in items)


def _mp_next_hop(attrs: PathAttributes) -> bytes:
    if attrs.mp_next_hop is None:
        raise ValueError("IPv6 routes need mp_next_hop")
    nh = _ipv6(attrs.mp_next_hop)
    if attrs.mp_next_hop_link_local is not None:
        nh += _ipv6(attrs.mp_next_hop_link_local)
    return _u8(len(nh)) + nh


def mp_reach_value(attrs: PathAttributes, nlri: Sequence[Nlri]) -> bytes:
    """Full MP_REACH_NLRI value for IPv6 unicast (RFC 4760)."""
    prefixes = b"".join(encode_prefix(n.prefix, n.path_id) for n in nlri)
    return _u16(AFI_IPV6) + _u8(SAFI_UNICAST) + _mp_next_hop(attrs) + b"\x00" + prefixes


def mp_unreach_value(nlri: Sequence[Nlri]) -> bytes:
    """MP_UNREACH_NLRI value for IPv6 unicast."""
    return _u16(AFI_IPV6) + _u8(SAFI_UNICAST) + b"".join(encode_prefix(n.prefix, n.path_id) for n in nlri)


# ---- BGP messages -------------------------------------------------------------------


def _bgp_message(msg_type: BgpMessageType, payload: bytes) -> bytes:
    length = 19 + len(payload)
    if length > BGP_MAX_MESSAGE:
        raise ValueError(f"BGP message of {length} bytes exceeds {BGP_MAX_MESSAGE}")
    return _MARKER + _u16(length) + _u8(msg_type) + payload


def _check_path_ids(nlri: Iterable[Nlri], addpath: bool) -> None:
    for n in nlri:
        if addpath != (n.path_id is not None):
            raise ValueError(f"{n.prefix}: path_id must be set exactly when ADD-PATH is used")


def bgp_update_message(update: Update, *, as4: bool, addpath: bool = False) -> bytes:
    """A BGP UPDATE message; ``as4`` selects 4-byte AS_PATH, ``addpath`` path ids in NLRI."""
    _check_path_ids(update.announce, addpath)
    _check_path_ids(update.withdraw, addpath)
    withdraw4 = [n for n in update.withdraw if not _is_v6(n.prefix)]
    withdraw6 = [n for n in update.withdraw if _is_v6(n.prefix)]
    announce4 = [n for n in update.announce if not _is_v6(n.prefix)]
    announce6 = [n for n in update.announce if _is_v6(n.prefix)]
    if update.announce and update.attributes is None:
        raise ValueError("announcements need attributes")
    attrs = update.attributes
    if attrs is not None and announce4 and attrs.next_hop is None:
        raise ValueError("IPv4 announcements need next_hop")
    mp_reach = mp_reach_value(attrs, announce6) if attrs is not None and announce6 else None
    mp_unreach = mp_unreach_value(withdraw6) if withdraw6 else None
    if attrs is not None:
        path_attrs = encode_path_attributes(attrs, as4=as4, mp_reach=mp_reach, mp_unreach=mp_unreach)
    elif mp_unreach is not None:
        path_attrs = _attr(AttrType.MP_UNREACH_NLRI, _OPT_NON_TRANSITIVE, mp_unreach)
    else:
        path_attrs = b""
    withdrawn = b"".join(encode_prefix(n.prefix, n.path_id) for n in withdraw4)
    nlri = b"".join(encode_prefix(n.prefix, n.path_id) for n in announce4)
    payload = _u16(len(withdrawn)) + withdrawn + _u16(len(path_attrs)) + path_attrs + nlri
    return _bgp_message(BgpMessageType.UPDATE, payload)


def bgp_open_message(
    asn: int,
    bgp_id: str,
    *,
    hold_time: int = 180,
    as4: bool = True,
    ipv6: bool = False,
    addpath: bool = False,
) -> bytes:
    """An OPEN with capabilities: multiprotocol IPv4 (+IPv6), 4-byte ASN, ADD-PATH receive/send."""
    caps = bytearray(b"\x01\x04" + _u16(AFI_IPV4) + b"\x00" + _u8(SAFI_UNICAST))
    if ipv6:
        caps += b"\x01\x04" + _u16(AFI_IPV6) + b"\x00" + _u8(SAFI_UNICAST)
    if as4:
        caps += b"\x41\x04" + _u32(asn)
    if addpath:
        afis = [AFI_IPV4, AFI_IPV6] if ipv6 else [AFI_IPV4]
        caps += b"\x45" + _u8(4 * len(afis)) + b"".join(_u16(a) + _u8(SAFI_UNICAST) + b"\x03" for a in afis)
    params = b"\x02" + _u8(len(caps)) + bytes(caps)
    my_as = asn if asn <= 0xFFFF else AS_TRANS
    payload = _u8(4) + _u16(my_as) + _u16(hold_time) + _ipv4(bgp_id) + _u8(len(params)) + params
    return _bgp_message(BgpMessageType.OPEN, payload)


def bgp_keepalive_message() -> bytes:
    return _bgp_message(BgpMessageType.KEEPALIVE, b"")


def bgp_notification_message(code: int, subcode: int, data: bytes = b"") -> bytes:
    return _bgp_message(BgpMessageType.NOTIFICATION, _u8(code) + _u8(subcode) + data)


# ---- BGP4MP records -----------------------------------------------------------------


def _bgp4mp_header(session: Session, as4: bool) -> bytes:
    peer = ipaddress.ip_address(session.peer_ip)
    local = ipaddress.ip_address(session.local_ip)
    if peer.version != local.version:
        raise ValueError("peer and local address must be of the same family")
    size = _u32 if as4 else _u16
    return (
        size(_asn_fits(session.peer_as, as4))
        + size(_asn_fits(session.local_as, as4))
        + _u16(session.ifindex)
        + _u16(AFI_IPV4 if peer.version == 4 else AFI_IPV6)
        + peer.packed
        + local.packed
    )


def bgp4mp_message(
    session: Session, message: bytes, *, as4: bool = True, addpath: bool = False, local: bool = False
) -> Record:
    """BGP4MP MESSAGE / MESSAGE_AS4 (and _LOCAL / _ADDPATH variants) around a BGP message."""
    subtype = {
        (False, False, False): Bgp4mpSubtype.MESSAGE,
        (True, False, False): Bgp4mpSubtype.MESSAGE_AS4,
        (False, True, False): Bgp4mpSubtype.MESSAGE_LOCAL,
        (True, True, False): Bgp4mpSubtype.MESSAGE_AS4_LOCAL,
        (False, False, True): Bgp4mpSubtype.MESSAGE_ADDPATH,
        (True, False, True): Bgp4mpSubtype.MESSAGE_AS4_ADDPATH,
        (False, True, True): Bgp4mpSubtype.MESSAGE_LOCAL_ADDPATH,
        (True, True, True): Bgp4mpSubtype.MESSAGE_AS4_LOCAL_ADDPATH,
    }[(as4, local, addpath)]
    return Record(MrtType.BGP4MP, subtype, _bgp4mp_header(session, as4) + message)


def bgp4mp_update(session: Session, update: Update, *, as4: bool = True, addpath: bool = False) -> Record:
    """An UPDATE in a BGP4MP record whose ASN size and ADD-PATH mode match the subtype."""
    msg = bgp_update_message(update, as4=as4, addpath=addpath)
    return bgp4mp_message(session, msg, as4=as4, addpath=addpath)


def bgp4mp_state_change(session: Session, old_state: int, new_state: int, *, as4: bool = True) -> Record:
    """STATE_CHANGE (2-byte ASNs) or STATE_CHANGE_AS4; states as in schema.BGP_STATES."""
    subtype = Bgp4mpSubtype.STATE_CHANGE_AS4 if as4 else Bgp4mpSubtype.STATE_CHANGE
    body = _bgp4mp_header(session, as4) + _u16(old_state) + _u16(new_state)
    return Record(MrtType.BGP4MP, subtype, body)


# ---- TABLE_DUMP_V2 / TABLE_DUMP -----------------------------------------------------


def peer_index_table(collector_id: str, view_name: str, peers: Sequence[Peer]) -> Record:
    """TABLE_DUMP_V2 PEER_INDEX_TABLE."""
    name = view_name.encode()
    out = bytearray(_ipv4(collector_id) + _u16(len(name)) + name + _u16(len(peers)))
    for p in peers:
        addr = ipaddress.ip_address(p.ip)
        as4 = p.asn > 0xFFFF if p.as4 is None else p.as4
        out += _u8((1 if addr.version == 6 else 0) | (2 if as4 else 0)) + _ipv4(p.bgp_id) + addr.packed
        out += _u32(_asn_fits(p.asn, True)) if as4 else _u16(_asn_fits(p.asn, False))
    return Record(MrtType.TABLE_DUMP_V2, TableDumpV2Subtype.PEER_INDEX_TABLE, bytes(out))


def _rib_attributes(attrs: PathAttributes, v6: bool) -> bytes:
    mp_reach = _mp_next_hop(attrs) if v6 else None
    return encode_path_attributes(attrs, as4=True, mp_reach=mp_reach)


def rib_entry_record(seq: int, prefix: str, entries: Sequence[RibEntry], *, addpath: bool = False) -> Record:
    """TABLE_DUMP_V2 RIB_IPV4/IPV6_UNICAST (or the RFC 8050 _ADDPATH subtypes)."""
    v6 = _is_v6(prefix)
    if addpath:
        subtype = (
            TableDumpV2Subtype.RIB_IPV6_UNICAST_ADDPATH if v6 else TableDumpV2Subtype.RIB_IPV4_UNICAST_ADDPATH
        )
    else:
        subtype = TableDumpV2Subtype.RIB_IPV6_UNICAST if v6 else TableDumpV2Subtype.RIB_IPV4_UNICAST
    if len(entries) > 0xFFFF:
        raise ValueError("too many RIB entries")
    out = bytearray(_u32(seq) + encode_prefix(prefix) + _u16(len(entries)))
    for e in entries:
        if addpath != (e.path_id is not None):
            raise ValueError("path_id must be set exactly when addpath=True")
        attrs = e.attributes if isinstance(e.attributes, bytes) else _rib_attributes(e.attributes, v6)
        out += _u16(e.peer_index) + _u32(e.originated_time)
        if e.path_id is not None:
            out += _u32(e.path_id)
        out += _u16(len(attrs)) + attrs
    return Record(MrtType.TABLE_DUMP_V2, subtype, bytes(out))


def encode_rib_entry_attributes(attrs: PathAttributes, *, v6: bool) -> bytes:
    """The attribute block exactly as ``rib_entry_record`` writes it (for attribute-set statistics)."""
    return _rib_attributes(attrs, v6)


def table_dump_record(
    *,
    view: int,
    seq: int,
    prefix: str,
    originated_time: int,
    peer_ip: str,
    peer_as: int,
    attributes: PathAttributes,
    status: int = 1,
) -> Record:
    """TABLE_DUMP (v1) AFI_IPv4 / AFI_IPv6 record; 2-byte ASNs (AS4_PATH when needed).

    The peer address must be of the prefix's family (that is all v1 can express).
    IPv6 routes carry a full MP_REACH_NLRI with the prefix as its NLRI.
    """
    net = _network(prefix)
    v6 = net.version == 6
    peer = _ipv6(peer_ip) if v6 else _ipv4(peer_ip)
    mp_reach = mp_reach_value(attributes, [Nlri(prefix)]) if v6 else None
    attrs = encode_path_attributes(attributes, as4=False, mp_reach=mp_reach)
    body = (
        _u16(view)
        + _u16(seq & 0xFFFF)
        + net.network_address.packed
        + _u8(net.prefixlen)
        + _u8(status)
        + _u32(originated_time)
        + peer
        + _u16(_asn_fits(peer_as, False))
        + _u16(len(attrs))
        + attrs
    )
    return Record(MrtType.TABLE_DUMP, AFI_IPV6 if v6 else AFI_IPV4, body)


# ---- framing ------------------------------------------------------------------------


def encode_record(record: Record, timestamp: int, microseconds: int | None = None) -> bytes:
    """Common header + body. With ``microseconds`` a BGP4MP record is written as BGP4MP_ET."""
    mrt_type = int(record.type)
    body = record.body
    if microseconds is not None:
        if record.type is not MrtType.BGP4MP:
            raise ValueError("extended timestamps are only written for BGP4MP records")
        if not 0 <= microseconds < 1_000_000:
            raise ValueError(f"microseconds out of range: {microseconds}")
        mrt_type = MrtType.BGP4MP_ET
        body = _u32(microseconds) + body
    return _u32(timestamp) + _u16(mrt_type) + _u16(record.subtype) + _u32(len(body)) + body


class ByteSink(Protocol):
    """Anything with ``write(bytes)``: a file, BytesIO, bz2.BZ2File, gzip.GzipFile."""

    def write(self, data: bytes, /) -> object: ...


@dataclass(slots=True)
class MrtWriter:
    """Writes records to a binary stream and counts them."""

    stream: ByteSink
    records: int = 0
    bytes_written: int = 0

    def write(self, record: Record, timestamp: int, microseconds: int | None = None) -> int:
        """Write one record; returns its byte offset in the (uncompressed) stream."""
        data = encode_record(record, timestamp, microseconds)
        offset = self.bytes_written
        self.stream.write(data)
        self.records += 1
        self.bytes_written += len(data)
        return offset
