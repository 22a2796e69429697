"""MRT record framing over a block-buffered stream, and recovery from damaged framing.

The stream is read in large blocks (``BlockReader``) and records are delimited
with ``struct.unpack_from`` on the buffer: no per-record reads.

A header is *plausible* when its type is a registered MRT type, its subtype is
valid for the types we decode, and its length is at most ``MAX_RECORD_LEN``.

Resync (damaged framing). When the header where the next record should start is
not plausible, the decoder scans forward for the next offset that

1. holds a plausible header of a type we decode (BGP, TABLE_DUMP, TABLE_DUMP_V2,
   BGP4MP, BGP4MP_ET) whose timestamp is within ``RESYNC_MAX_TIME_SKEW`` seconds of
   the last good record, and
2. is followed, right after that record, by another such header or by the exact
   end of the stream.

The scan uses a regular expression on the type/subtype bytes, so it runs at C
speed, and gives up after ``RESYNC_MAX_SCAN`` bytes (the rest of the stream is
then counted as unrecoverable). Skipped bytes are counted under
``bytes:resync_skipped`` and each skipped range is reported in ``first_errors``.
"""

from __future__ import annotations

import re
import struct
from typing import BinaryIO, Final

HEADER: Final = struct.Struct(">IHHI")
HEADER_LEN: Final = 12

MAX_RECORD_LEN: Final = 16 << 20
BLOCK_SIZE: Final = 4 << 20
RESYNC_MAX_SCAN: Final = 16 << 20
RESYNC_MAX_TIME_SKEW: Final = 7 * 86400

T_BGP: Final = 5
T_TABLE_DUMP: Final = 12
T_TABLE_DUMP_V2: Final = 13
T_BGP4MP: Final = 16
T_BGP4MP_ET: Final = 17

# Types we decode -> valid subtypes.
DECODED_SUBTYPES: Final[dict[int, frozenset[int]]] = {
    T_BGP: frozenset(range(8)),
    T_TABLE_DUMP: frozenset({1, 2, 3, 4}),
    T_TABLE_DUMP_V2: frozenset(range(1, 13)),
    T_BGP4MP: frozenset(range(12)),
    T_BGP4MP_ET: frozenset(range(12)),
}
# Registered MRT types we recognise but do not decode: counted as unsupported, not
# treated as damage. The deprecated NULL/START/DIE/I_AM_DEAD/PEER_DOWN (0-4) are left
# out on purpose: a run of zero bytes would otherwise frame as endless empty records.
OTHER_TYPES: Final = frozenset({6, 7, 8, 9, 10, 11, 32, 33, 48, 49})

TYPE_NAMES: Final = {
    0: "NULL",
    1: "START",
    2: "DIE",
    3: "I_AM_DEAD",
    4: "PEER_DOWN",
    5: "BGP",
    6: "RIP",
    7: "IDRP",
    8: "RIPNG",
    9: "BGP4PLUS",
    10: "BGP4PLUS_01",
    11: "OSPFv2",
    12: "TABLE_DUMP",
    13: "TABLE_DUMP_V2",
    16: "BGP4MP",
    17: "BGP4MP_ET",
    32: "ISIS",
    33: "ISIS_ET",
    48: "OSPFv3",
    49: "OSPFv3_ET",
}
_BGP4MP_SUB: Final = {
    0: "STATE_CHANGE",
    1: "MESSAGE",
    2: "ENTRY",
    3: "SNAPSHOT",
    4: "MESSAGE_AS4",
    5: "STATE_CHANGE_AS4",
    6: "MESSAGE_LOCAL",
    7: "MESSAGE_AS4_LOCAL",
    8: "MESSAGE_ADDPATH",
    9: "MESSAGE_AS4_ADDPATH",
    10: "MESSAGE_LOCAL_ADDPATH",
    11: "MESSAGE_AS4_LOCAL_ADDPATH",
}
SUBTYPE_NAMES: Final[dict[int, dict[int, str]]] = {
    T_BGP: {
        0: "NULL",
        1: "UPDATE",
        2: "PREF_UPDATE",
        3: "STATE_CHANGE",
        4: "SYNC",
        5: "OPEN",
        6: "NOTIFY",
        7: "KEEPALIVE",
    },
    T_TABLE_DUMP: {1: "AFI_IPv4", 2: "AFI_IPv6", 3: "AFI_IPv4_32BIT_AS", 4: "AFI_IPv6_32BIT_AS"},
    T_TABLE_DUMP_V2: {
        1: "PEER_INDEX_TABLE",
        2: "RIB_IPV4_UNICAST",
        3: "RIB_IPV4_MULTICAST",
        4: "RIB_IPV6_UNICAST",
        5: "RIB_IPV6_MULTICAST",
        6: "RIB_GENERIC",
        7: "GEO_PEER_TABLE",
        8: "RIB_IPV4_UNICAST_ADDPATH",
        9: "RIB_IPV4_MULTICAST_ADDPATH",
        10: "RIB_IPV6_UNICAST_ADDPATH",
        11: "RIB_IPV6_MULTICAST_ADDPATH",
        12: "RIB_GENERIC_ADDPATH",
    },
    T_BGP4MP: _BGP4MP_SUB,
    T_BGP4MP_ET: _BGP4MP_SUB,
}

# Overlapping search for "type high byte 0, decoded type, subtype high byte 0, subtype < 13".
_CANDIDATE: Final = re.compile(rb"(?=\x00[\x05\x0c\x0d\x10\x11]\x00[\x00-\x0c])")


def type_name(typ: int, subtype: int) -> str:
    t = TYPE_NAMES.get(typ, str(typ))
    s = SUBTYPE_NAMES.get(typ, {}).get(subtype, str(subtype))
    return f"{t}/{s}"


def plausible(typ: int, subtype: int, length: int) -> bool:
    """Header check used on the normal framing path."""
    if length > MAX_RECORD_LEN:
        return False
    subs = DECODED_SUBTYPES.get(typ)
    if subs is not None:
        return subtype in subs
    return typ in OTHER_TYPES


# The same check as a set lookup on ``(type << 16) | subtype`` for the hot loop
# (types we do not decode accept any subtype: only listed here for subtype < 256).
PLAUSIBLE_KEYS: Final = frozenset(
    [(t << 16) | s for t, subs in DECODED_SUBTYPES.items() for s in subs]
    + [(t << 16) | s for t in OTHER_TYPES for s in range(256)]
)


def _resync_ok(typ: int, subtype: int, length: int, ts: int, last_ts: int | None) -> bool:
    subs = DECODED_SUBTYPES.get(typ)
    if subs is None or subtype not in subs or length > MAX_RECORD_LEN:
        return False
    return last_ts is None or abs(ts - last_ts) <= RESYNC_MAX_TIME_SKEW


class BlockReader:
    """Holds the current block of the decompressed stream.

    ``buf[pos:]`` is unread data; ``base`` is the stream offset of ``buf[0]``.
    Read errors (``EOFError``/``OSError`` from a truncated compressed stream,
    ``zlib.error`` from a corrupt one, ...) end the stream and are remembered in
    ``error``: everything decompressed before them is still decoded.
    """

    __slots__ = ("_read", "base", "buf", "eof", "error")

    def __init__(self, stream: BinaryIO) -> None:
        read1 = getattr(stream, "read1", None)
        self._read = read1 if callable(read1) else stream.read
        self.buf = b""
        self.base = 0
        self.eof = False
        self.error: str | None = None

    def fill(self, pos: int, need: int) -> tuple[bytes, int]:
        """Make ``buf[pos:pos + need]`` available if the stream allows; returns ``(buf, pos)``.

        The buffer is compacted so that the returned ``pos`` is 0 whenever it is refilled.
        """
        buf = self.buf
        have = len(buf) - pos
        if have >= need or self.eof:
            return buf, pos
        chunks = [buf[pos:]] if have > 0 else []
        self.base += pos
        target = max(need, BLOCK_SIZE)
        read = self._read
        while have < target:
            try:
                chunk = read(max(target - have, 1 << 16))
            except Exception as e:  # EOFError/OSError (cut stream), zlib.error (corrupt data), ...
                self.eof = True
                self.error = f"{type(e).__name__}: {e}"
                break
            if not chunk:
                self.eof = True
                break
            chunks.append(chunk)
            have += len(chunk)
        self.buf = b"".join(chunks)
        return self.buf, 0


def find_resync(reader: BlockReader, pos: int, last_ts: int | None) -> tuple[bytes, int, int | None]:
    """Scan forward from ``pos + 1`` for the next trustworthy header.

    Returns ``(buf, start, found)``: ``buf[start:found]`` are the skipped bytes and
    ``found`` is the offset of the next header, or ``None`` when the scan reached
    the end of the stream or ``RESYNC_MAX_SCAN`` (then ``buf[start:]`` is skipped).
    """
    buf, start = reader.fill(pos, 1 << 20)
    origin = reader.base + start
    i = start + 1
    while True:
        if reader.base + i - origin > RESYNC_MAX_SCAN:
            return buf, start, None
        m = _CANDIDATE.search(buf, i + 4)
        c = m.start() - 4 if m is not None else len(buf)
        if c + HEADER_LEN > len(buf):
            if reader.eof:
                return buf, start, None
            rel = max(i, len(buf) - HEADER_LEN) - start
            buf, start = reader.fill(start, len(buf) - start + (1 << 20))
            i = start + rel
            continue
        ts, typ, sub, ln = HEADER.unpack_from(buf, c)
        if _resync_ok(typ, sub, ln, ts, last_ts):
            nxt = c + HEADER_LEN + ln
            if nxt + HEADER_LEN > len(buf) and not reader.eof:
                rel = c - start
                buf, start = reader.fill(start, nxt + HEADER_LEN - start)
                i = start + rel
                continue
            if nxt + HEADER_LEN <= len(buf):
                ts2, typ2, sub2, ln2 = HEADER.unpack_from(buf, nxt)
                if _resync_ok(typ2, sub2, ln2, ts2, ts):
                    return buf, start, c
            elif nxt == len(buf):
                return buf, start, c
        i = c + 1
