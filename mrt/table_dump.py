"""TABLE_DUMP (RFC 6396 4.2) and TABLE_DUMP_V2 (RFC 6396 4.3, RFC 8050) record decoders.

Each decoder gets the record body ``buf[start:end]`` and returns its rows, or a
skip reason string. TABLE_DUMP_V2 RIB records are the hot path of a RIB
conversion and are written for speed (see ``attributes`` for the caching).

TABLE_DUMP quirks handled:
- early RIS dumps (2000) batch many entries in one record: after the first entry
  the prefix..attributes part repeats without view/sequence;
- OpenBGPD writes IPv4 peers of AFI_IPv6 records as the IPv4 address followed by
  twelve zero bytes: those are shown as the IPv4 address;
- subtypes 3/4 (AFI_IPv4/IPv6 with 4-byte ASNs, a bgpdump extension) are accepted.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from .attributes import AttrError, decode_attributes
from .context import RIB_CACHE_LIMIT, Context, RecordError
from .nlri import AFI_IPV4, AFI_IPV6, ip_text, ipv4_text, prefix_text

_U16 = struct.Struct(">H")
_ENTRY = struct.Struct(">HIH")
_ENTRY_AP = struct.Struct(">HIIH")
_SEQ_PLEN = struct.Struct(">IB")
_GEN = struct.Struct(">IHB")

# subtype -> (afi, safi, addpath)
RIB_SUBTYPES: Final = {
    2: (AFI_IPV4, 1, False),
    3: (AFI_IPV4, 2, False),
    4: (AFI_IPV6, 1, False),
    5: (AFI_IPV6, 2, False),
    8: (AFI_IPV4, 1, True),
    9: (AFI_IPV4, 2, True),
    10: (AFI_IPV6, 1, True),
    11: (AFI_IPV6, 2, True),
}
PEER_INDEX_TABLE: Final = 1
RIB_GENERIC: Final = 6
RIB_GENERIC_ADDPATH: Final = 12

_ZERO12: Final = bytes(12)


def peer_index_table(ctx: Context, buf: bytes, start: int, end: int) -> str:
    """Decode a PEER_INDEX_TABLE into ``ctx.peers`` (a later table replaces an earlier one)."""
    p = start + 4
    (vlen,) = _U16.unpack_from(buf, p)
    p += 2 + vlen
    (count,) = _U16.unpack_from(buf, p)
    p += 2
    peers: list[tuple[str, int]] = []
    for _ in range(count):
        ptype = buf[p]
        p += 5  # type + BGP ID
        alen = 16 if ptype & 1 else 4
        ip = ip_text(buf[p : p + alen])
        p += alen
        if ptype & 2:
            asn = struct.unpack_from(">I", buf, p)[0]
            p += 4
        else:
            asn = _U16.unpack_from(buf, p)[0]
            p += 2
        peers.append((ip, asn))
    if p > end:
        raise RecordError("malformed_peer_index_table", f"PEER_INDEX_TABLE overruns record by {p - end}")
    ctx.peers = peers
    return "peer_index_table"


def rib_afi(
    ctx: Context, buf: bytes, start: int, end: int, subtype: int, ts_us: int, idx: int, off: int
) -> list[dict[str, Any]] | str:
    """RIB_IPV4/IPV6_UNICAST/MULTICAST and their ADDPATH variants."""
    peers = ctx.peers
    if peers is None:
        return "missing_peer_index_table"
    afi, safi, addpath = RIB_SUBTYPES[subtype]
    _seq, plen = _SEQ_PLEN.unpack_from(buf, start)
    if plen > (32 if afi == AFI_IPV4 else 128):
        raise RecordError("malformed_prefix", f"prefix length {plen}")
    p = start + 5
    nb = (plen + 7) >> 3
    pfx = prefix_text(afi, plen, buf[p : p + nb])
    p += nb
    (count,) = _U16.unpack_from(buf, p)
    p += 2
    cache = ctx.rib_cache_nh if afi == AFI_IPV4 else ctx.rib_cache_mp
    template = ctx.template
    rows: list[dict[str, Any]] = []
    append = rows.append
    npeers = len(peers)
    unpack = _ENTRY_AP.unpack_from if addpath else _ENTRY.unpack_from
    esize = 12 if addpath else 8
    path_id = None
    for i in range(count):
        if p + esize > end:
            ctx.note("rib_entries_lost", f"record {idx} @ {off}: entry {i} of {count} truncated")
            break
        if addpath:
            pi, ot, path_id, alen = unpack(buf, p)
        else:
            pi, ot, alen = unpack(buf, p)
        p += esize
        q = p + alen
        if q > end:
            ctx.note("rib_entries_lost", f"record {idx} @ {off}: entry {i} attributes overrun record")
            break
        raw = buf[p:q]
        p = q
        base = cache.get(raw)
        if base is None:
            try:
                a = decode_attributes(raw, 4, template)
            except AttrError as e:
                ctx.note("rib_entries_lost", f"record {idx} @ {off}: entry {i}: {e}")
                continue
            for n in a.notes:
                ctx.note("attribute_problem", f"record {idx} @ {off}: {n}")
            base = a.base if afi == AFI_IPV4 else a.base_mp
            if len(cache) >= RIB_CACHE_LIMIT:
                cache.clear()
            cache[raw] = base
        if pi >= npeers:
            ctx.note("rib_entries_lost", f"record {idx} @ {off}: peer index {pi} >= {npeers}")
            continue
        row = base.copy()
        row["timestamp"] = ts_us
        row["originated_time"] = ot * 1000000
        row["elem_type"] = "RIB"
        row["peer_ip"], row["peer_asn"] = peers[pi]
        row["prefix"] = pfx
        row["path_id"] = path_id
        row["afi"] = afi
        row["safi"] = safi
        row["record_index"] = idx
        row["record_offset"] = off
        append(row)
    if not rows:
        return "empty_rib_record" if count == 0 else "malformed_rib_record"
    return rows


def rib_generic(
    ctx: Context, buf: bytes, start: int, end: int, subtype: int, ts_us: int, idx: int, off: int
) -> list[dict[str, Any]] | str:
    """RIB_GENERIC(_ADDPATH): any AFI/SAFI, prefix in NLRI encoding (VPN prefixes as RD:prefix)."""
    peers = ctx.peers
    if peers is None:
        return "missing_peer_index_table"
    addpath = subtype == RIB_GENERIC_ADDPATH
    _seq, afi, safi = _GEN.unpack_from(buf, start)
    p = start + 7
    pend = p + 1 + ((buf[p] + 7) >> 3)
    prefixes, problem = ctx.prefixes.parse(buf, p, pend, afi, safi, False)
    if problem or len(prefixes) != 1:
        raise RecordError("unsupported_afi_safi", f"RIB_GENERIC AFI {afi} SAFI {safi}: {problem}")
    pfx = prefixes[0][0]
    p = pend
    (count,) = _U16.unpack_from(buf, p)
    p += 2
    rows: list[dict[str, Any]] = []
    for i in range(count):
        path_id = None
        if addpath:
            pi, ot, path_id, alen = _ENTRY_AP.unpack_from(buf, p)
            p += 12
        else:
            pi, ot, alen = _ENTRY.unpack_from(buf, p)
            p += 8
        raw = buf[p : p + alen]
        p += alen
        if p > end:
            ctx.note("rib_entries_lost", f"record {idx} @ {off}: entry {i} attributes overrun record")
            break
        try:
            a = ctx.attrs(raw, 4, idx, off)
        except AttrError as e:
            ctx.note("rib_entries_lost", f"record {idx} @ {off}: entry {i}: {e}")
            continue
        if pi >= len(peers):
            ctx.note("rib_entries_lost", f"record {idx} @ {off}: peer index {pi} >= {len(peers)}")
            continue
        row = (a.base_mp if a.mp_reach is not None else a.base).copy()
        row["timestamp"] = ts_us
        row["originated_time"] = ot * 1000000
        row["elem_type"] = "RIB"
        row["peer_ip"], row["peer_asn"] = peers[pi]
        row["prefix"] = pfx
        row["path_id"] = path_id
        row["afi"] = afi
        row["safi"] = safi
        row["record_index"] = idx
        row["record_offset"] = off
        rows.append(row)
    if not rows:
        return "empty_rib_record" if count == 0 else "malformed_rib_record"
    return rows


# TABLE_DUMP subtype -> (afi, address bytes, ASN bytes)
TD1_SUBTYPES: Final = {1: (AFI_IPV4, 4, 2), 2: (AFI_IPV6, 16, 2), 3: (AFI_IPV4, 4, 4), 4: (AFI_IPV6, 16, 4)}


def table_dump(
    ctx: Context,
    buf: bytes,
    start: int,
    end: int,
    subtype: int,
    ts_us: int,
    idx: int,
    off: int,
    strict: bool = False,
) -> list[dict[str, Any]] | str:
    """TABLE_DUMP (v1) record: one entry, or several batched entries (early RIS).

    With ``strict`` any leftover or overrun raises RecordError: the caller uses it
    to test an alternative record length.
    """
    spec = TD1_SUBTYPES.get(subtype)
    if spec is None:
        return f"unsupported_subtype:12/{subtype}"
    afi, asz, nsz = spec
    p = start + 4  # view, sequence
    rows: list[dict[str, Any]] = []
    maxbits = 32 if afi == AFI_IPV4 else 128
    fixed = asz + 6 + asz + nsz + 2
    while p < end:
        if p + fixed > end:
            if strict:
                raise RecordError("malformed_record", "entry header overruns record")
            ctx.note("td1_trailing_bytes", f"record {idx} @ {off}: {end - p} trailing byte(s)")
            break
        addr = buf[p : p + asz]
        p += asz
        plen = buf[p]
        ot = struct.unpack_from(">I", buf, p + 2)[0]
        p += 6
        peer_raw = buf[p : p + asz]
        p += asz
        peer_asn = int.from_bytes(buf[p : p + nsz], "big")
        p += nsz
        (alen,) = _U16.unpack_from(buf, p)
        p += 2
        if p + alen > end:
            if strict:
                raise RecordError("malformed_record", "attributes overrun record")
            ctx.note("td1_trailing_bytes", f"record {idx} @ {off}: entry attributes overrun record")
            break
        raw = buf[p : p + alen]
        p += alen
        if plen > maxbits:
            if strict:
                raise RecordError("malformed_prefix", f"prefix length {plen}")
            ctx.note("rib_entries_lost", f"record {idx} @ {off}: prefix length {plen}")
            continue
        try:
            a = ctx.attrs(raw, nsz, idx, off)
        except AttrError as e:
            if strict:
                raise RecordError("malformed_attribute", str(e)) from None
            ctx.note("rib_entries_lost", f"record {idx} @ {off}: {e}")
            continue
        if afi == AFI_IPV6 and peer_raw[4:] == _ZERO12 and peer_raw[:4] != b"\0\0\0\0":
            peer_ip = ipv4_text(peer_raw[:4])
        else:
            peer_ip = ip_text(peer_raw)
        row = (a.base if afi == AFI_IPV4 else a.base_mp).copy()
        row["timestamp"] = ts_us
        row["originated_time"] = ot * 1000000
        row["elem_type"] = "RIB"
        row["peer_ip"] = peer_ip
        row["peer_asn"] = peer_asn
        row["prefix"] = prefix_text(afi, plen, addr[: (plen + 7) >> 3])
        row["afi"] = afi
        row["safi"] = 1
        row["record_index"] = idx
        row["record_offset"] = off
        rows.append(row)
    if not rows:
        return "malformed_rib_record"
    return rows
