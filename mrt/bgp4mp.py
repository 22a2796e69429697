"""BGP4MP / BGP4MP_ET (RFC 6396 4.4-4.5, RFC 8050) and legacy MRT type 5 (BGP) decoders.

UPDATE messages become one row per prefix, in bgpdump's order: withdrawn routes,
MP_UNREACH_NLRI, NLRI, MP_REACH_NLRI. STATE_CHANGE records become STATE rows.
Other BGP messages are counted as skipped by type.

Quirks handled:
- ADD-PATH NLRI under non-ADD-PATH subtypes (BIRD) is detected per prefix field
  (see ``PrefixParser.parse_guess_addpath``) and counted as ``note:addpath_nlri_detected``;
- UPDATEs longer than 4096 bytes (RFC 8654) are fine: the BGP length is trusted up
  to the end of the record;
- an NLRI field with trailing bytes that do not form a prefix keeps the prefixes
  before them (``note:nlri_malformed_tail``);
- Zebra's 8-byte STATE_CHANGE bodies (no peer address) and OPEN records written
  without interface/AFI/addresses are skipped as ``short_state_change`` /
  ``truncated_open``;
- legacy type 5 UPDATE bodies are peer AS(2), peer IP(4), local AS(2), local IP(4)
  and the UPDATE without marker/length/type; withdrawals keep their real prefixes
  (bgpdump -m prints the peer address instead);
- BGP4MP_ENTRY (subtype 2, deprecated, written by OpenBGPD) is decoded as RIB rows;
  its first AS/address pair is the local side, the second the peer (OpenBGPD mrt.c).
"""

from __future__ import annotations

import struct
from typing import Any, Final

from .attributes import AttrError, Attrs
from .context import Context, RecordError
from .nlri import AFI_IPV4, SUPPORTED_SAFIS, ip_text
from .schema import BGP_STATES

_HH = struct.Struct(">HH")
_II = struct.Struct(">II")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_MARKER: Final = b"\xff" * 16

MSG_OPEN: Final = 1
MSG_UPDATE: Final = 2
MSG_NOTIFICATION: Final = 3
MSG_KEEPALIVE: Final = 4
MSG_ROUTE_REFRESH: Final = 5
_MSG_REASON: Final = {
    MSG_OPEN: "open",
    MSG_NOTIFICATION: "notification",
    MSG_KEEPALIVE: "keepalive",
    MSG_ROUTE_REFRESH: "route_refresh",
}

STATE_CHANGE: Final = 0
MESSAGE: Final = 1
ENTRY: Final = 2
SNAPSHOT: Final = 3
STATE_CHANGE_AS4: Final = 5
# message subtype -> (asn size, addpath)
MESSAGE_SUBTYPES: Final = {
    1: (2, False),
    4: (4, False),
    6: (2, False),
    7: (4, False),
    8: (2, True),
    9: (4, True),
    10: (2, True),
    11: (4, True),
}


def _state_name(v: int) -> str:
    return BGP_STATES.get(v, str(v))


def bgp4mp(
    ctx: Context, buf: bytes, start: int, end: int, subtype: int, ts_us: int, idx: int, off: int
) -> list[dict[str, Any]] | str:
    spec = MESSAGE_SUBTYPES.get(subtype)
    if spec is not None:
        return _message(ctx, buf, start, end, spec[0], spec[1], ts_us, idx, off)
    if subtype in (STATE_CHANGE, STATE_CHANGE_AS4):
        return _state_change(ctx, buf, start, end, 4 if subtype == STATE_CHANGE_AS4 else 2, ts_us, idx, off)
    if subtype == ENTRY:
        return _entry(ctx, buf, start, end, ts_us, idx, off)
    return f"unsupported_subtype:16/{subtype}"


def _peer_header(
    buf: bytes, start: int, end: int, asz: int
) -> tuple[str, int, int, int] | tuple[None, int, int, int]:
    """Peer AS, local AS, ifindex, AFI, peer IP, local IP -> (peer_ip, peer_as, afi, next offset)."""
    if asz == 4:
        peer_as, _local_as = _II.unpack_from(buf, start)
    else:
        peer_as, _local_as = _HH.unpack_from(buf, start)
    p = start + 2 * asz
    _ifindex, afi = _HH.unpack_from(buf, p)
    p += 4
    if afi == 1:
        alen = 4
    elif afi == 2:
        alen = 16
    else:
        return None, peer_as, afi, p
    if p + 2 * alen > end:
        raise RecordError("malformed_record", "peer addresses overrun record")
    return ip_text(buf[p : p + alen]), peer_as, afi, p + 2 * alen


def _state_change(
    ctx: Context, buf: bytes, start: int, end: int, asz: int, ts_us: int, idx: int, off: int
) -> list[dict[str, Any]] | str:
    if end - start == 8 and asz == 2:
        # Zebra bug: AS numbers and states only, no interface/AFI/addresses.
        return "short_state_change"
    peer_ip, peer_as, afi, p = _peer_header(buf, start, end, asz)
    if peer_ip is None:
        raise RecordError("malformed_record", f"STATE_CHANGE with AFI {afi}")
    if p + 4 > end:
        raise RecordError("malformed_record", "STATE_CHANGE states overrun record")
    old, new = _HH.unpack_from(buf, p)
    row = ctx.template.copy()
    row["timestamp"] = ts_us
    row["elem_type"] = "STATE"
    row["peer_ip"] = peer_ip
    row["peer_asn"] = peer_as
    row["old_state"] = _state_name(old)
    row["new_state"] = _state_name(new)
    row["record_index"] = idx
    row["record_offset"] = off
    return [row]


def _message(
    ctx: Context,
    buf: bytes,
    start: int,
    end: int,
    asz: int,
    addpath: bool,
    ts_us: int,
    idx: int,
    off: int,
) -> list[dict[str, Any]] | str:
    peer_ip, peer_as, afi, p = _peer_header(buf, start, end, asz)
    if peer_ip is None:
        # Zebra wrote some OPENs without interface/AFI/addresses: the "AFI" is marker bytes.
        mp = start + 2 * asz
        if buf[mp : mp + 16] == _MARKER and mp + 18 < end:
            mtype = buf[mp + 18]
            return "truncated_open" if mtype == MSG_OPEN else "missing_peer_address"
        raise RecordError("unsupported_peer_afi", f"BGP4MP message with AFI {afi}")
    if p + 19 > end:
        raise RecordError("malformed_bgp_message", "BGP header overruns record")
    if buf[p : p + 16] != _MARKER:
        raise RecordError("bad_bgp_marker", "BGP marker is not all ones")
    (mlen,) = _U16.unpack_from(buf, p + 16)
    mtype = buf[p + 18]
    if mlen < 19:
        raise RecordError("malformed_bgp_message", f"BGP length {mlen}")
    mend = p + mlen
    if mend > end:
        ctx.note("bgp_length_exceeds_record", f"record {idx} @ {off}: BGP length {mlen} exceeds record")
        mend = end
    if mtype != MSG_UPDATE:
        return _MSG_REASON.get(mtype, f"bgp_message_type:{mtype}")
    return update_rows(ctx, buf, p + 19, mend, asz, addpath, peer_ip, peer_as, ts_us, idx, off)


def update_rows(
    ctx: Context,
    buf: bytes,
    p: int,
    end: int,
    asz: int,
    addpath: bool,
    peer_ip: str,
    peer_as: int,
    ts_us: int,
    idx: int,
    off: int,
) -> list[dict[str, Any]] | str:
    """Rows of one UPDATE body (from the withdrawn-routes length to the end of the NLRI)."""
    if p + 4 > end:
        raise RecordError("malformed_update", "UPDATE shorter than 4 bytes")
    (wlen,) = _U16.unpack_from(buf, p)
    wstart = p + 2
    wend = wstart + wlen
    if wend + 2 > end:
        raise RecordError("malformed_update", f"withdrawn length {wlen} overruns message")
    (alen,) = _U16.unpack_from(buf, wend)
    astart = wend + 2
    aend = astart + alen
    if aend > end:
        raise RecordError("malformed_update", f"attribute length {alen} overruns message")
    attrs: Attrs | None = None
    if alen:
        try:
            attrs = ctx.attrs(buf[astart:aend], asz, idx, off)
        except AttrError as e:
            raise RecordError("malformed_attribute", str(e)) from None

    template = ctx.template
    parse = ctx.prefixes.parse_guess_addpath
    rows: list[dict[str, Any]] = []

    common = {
        "timestamp": ts_us,
        "peer_ip": peer_ip,
        "peer_asn": peer_as,
        "record_index": idx,
        "record_offset": off,
    }

    def emit(
        base: dict[str, Any], etype: str, afi: int, safi: int, pfx: list[tuple[str, int | None]]
    ) -> None:
        for text, path_id in pfx:
            row = base.copy()
            row.update(common)
            row["elem_type"] = etype
            row["prefix"] = text
            row["path_id"] = path_id
            row["afi"] = afi
            row["safi"] = safi
            rows.append(row)

    trouble: list[str] = []

    def prefixes(data: bytes, start: int, stop: int, afi: int, safi: int) -> list[tuple[str, int | None]]:
        if safi not in SUPPORTED_SAFIS:
            ctx.note(f"unsupported_afi_safi:{afi}/{safi}", f"record {idx} @ {off}: AFI {afi} SAFI {safi}")
            trouble.append("unsupported_afi_safi")
            return []
        pfx, problem, guessed = parse(data, start, stop, afi, safi, addpath)
        if guessed:
            ctx.note("addpath_nlri_detected")
        if problem:
            ctx.note("nlri_malformed_tail", f"record {idx} @ {off}: {problem}")
            trouble.append("malformed_nlri")
        return pfx

    if wlen:
        emit(template, "WITHDRAW", AFI_IPV4, 1, prefixes(buf, wstart, wend, AFI_IPV4, 1))
    mpu = attrs.mp_unreach if attrs is not None else None
    if mpu is not None and mpu.data:
        emit(template, "WITHDRAW", mpu.afi, mpu.safi, prefixes(mpu.data, 0, len(mpu.data), mpu.afi, mpu.safi))
    if aend < end:
        base = attrs.base if attrs is not None else template
        emit(base, "ANNOUNCE", AFI_IPV4, 1, prefixes(buf, aend, end, AFI_IPV4, 1))
    mpr = attrs.mp_reach if attrs is not None else None
    if mpr is not None and mpr.data and attrs is not None:
        emit(
            attrs.base_mp,
            "ANNOUNCE",
            mpr.afi,
            mpr.safi,
            prefixes(mpr.data, 0, len(mpr.data), mpr.afi, mpr.safi),
        )
    if rows:
        return rows
    if trouble:
        # Prefixes were there but none could be used: say why rather than "empty".
        return trouble[0]
    if wlen == 0 and aend == end and (alen == 0 or (mpu is not None and not mpu.data and mpr is None)):
        return "end_of_rib"
    return "empty_update"


def legacy_bgp(
    ctx: Context, buf: bytes, start: int, end: int, subtype: int, ts_us: int, idx: int, off: int
) -> list[dict[str, Any]] | str:
    """MRT type 5 (BGP, 1999-2001 RIS): UPDATE, STATE_CHANGE, OPEN, NOTIFY, KEEPALIVE."""
    if subtype == 1:  # UPDATE
        if start + 12 > end:
            raise RecordError("malformed_record", "BGP UPDATE record too short")
        (peer_as,) = _U16.unpack_from(buf, start)
        peer_ip = ip_text(buf[start + 2 : start + 6])
        return update_rows(ctx, buf, start + 12, end, 2, False, peer_ip, peer_as, ts_us, idx, off)
    if subtype == 3:  # STATE_CHANGE
        if start + 10 > end:
            raise RecordError("malformed_record", "BGP STATE_CHANGE record too short")
        (peer_as,) = _U16.unpack_from(buf, start)
        old, new = _HH.unpack_from(buf, start + 6)
        row = ctx.template.copy()
        row["timestamp"] = ts_us
        row["elem_type"] = "STATE"
        row["peer_ip"] = ip_text(buf[start + 2 : start + 6])
        row["peer_asn"] = peer_as
        row["old_state"] = _state_name(old)
        row["new_state"] = _state_name(new)
        row["record_index"] = idx
        row["record_offset"] = off
        return [row]
    if subtype == 5:
        return "open"
    if subtype == 6:
        return "notification"
    if subtype == 7:
        return "keepalive"
    return f"unsupported_subtype:5/{subtype}"


def _entry(
    ctx: Context, buf: bytes, start: int, end: int, ts_us: int, idx: int, off: int
) -> list[dict[str, Any]] | str:
    """BGP4MP_ENTRY: a RIB entry with its own AFI/SAFI/next hop, 2-byte ASNs."""
    _local_as, peer_as, _ifindex, afi = struct.unpack_from(">HHHH", buf, start)
    p = start + 8
    alen = 4 if afi == 1 else 16 if afi == 2 else 0
    if not alen:
        raise RecordError("unsupported_peer_afi", f"BGP4MP_ENTRY with AFI {afi}")
    peer_ip = ip_text(buf[p + alen : p + 2 * alen])
    p += 2 * alen
    _view, _status, changed = struct.unpack_from(">HHI", buf, p)
    p += 8
    pafi, psafi, nhlen = struct.unpack_from(">HBB", buf, p)
    p += 4
    nh_raw = buf[p : p + nhlen]
    p += nhlen
    pend = p + 1 + ((buf[p] + 7) >> 3)
    pfx, problem = ctx.prefixes.parse(buf, p, pend, pafi, psafi, False)
    if problem or len(pfx) != 1:
        raise RecordError("malformed_prefix", f"BGP4MP_ENTRY prefix: {problem}")
    p = pend
    (attr_len,) = _U16.unpack_from(buf, p)
    p += 2
    if p + attr_len > end:
        raise RecordError("malformed_record", "BGP4MP_ENTRY attributes overrun record")
    try:
        a = ctx.attrs(buf[p : p + attr_len], 2, idx, off)
    except AttrError as e:
        raise RecordError("malformed_attribute", str(e)) from None
    row = a.base.copy()
    if nhlen in (4, 16):
        row["next_hop"] = ip_text(nh_raw)
    elif nhlen == 32:
        row["next_hop"] = ip_text(nh_raw[:16])
        row["next_hop_link_local"] = ip_text(nh_raw[16:])
    row["timestamp"] = ts_us
    row["originated_time"] = changed * 1000000
    row["elem_type"] = "RIB"
    row["peer_ip"] = peer_ip
    row["peer_asn"] = peer_as
    row["prefix"] = pfx[0][0]
    row["afi"] = pafi
    row["safi"] = psafi
    row["record_index"] = idx
    row["record_offset"] = off
    return [row]
