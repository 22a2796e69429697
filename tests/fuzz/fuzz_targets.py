"""Fuzz targets for the MRT decoder: each turns fuzz bytes into an MRT stream and decodes it.

- ``framing``: the bytes are the whole (decompressed) stream.
- ``rib``: the bytes become a TABLE_DUMP_V2 RIB record body (first byte picks the
  subtype) after a valid PEER_INDEX_TABLE.
- ``update``: the bytes become the payload of a BGP UPDATE in a BGP4MP record (first
  byte picks MESSAGE / MESSAGE_AS4 / their ADDPATH subtypes, and ET).
- ``nlri``: the bytes become one NLRI field of an otherwise valid UPDATE (first byte
  picks withdrawn routes, NLRI, MP_REACH or MP_UNREACH, with or without ADD-PATH).
- ``rib_accel``: as ``rib`` (three copies of the record, so later ones meet a warm
  attribute cache), converted to Avro with the C accelerator and without it: rows and
  stats must be the same; the record body is also given to the accelerator's attribute
  encoder as an attribute blob, which must agree with ``encode_rib_attrs`` whenever it
  encodes one. (The accelerator is not instrumented; its crashes still end the fuzzer.)
- ``avro_columns``: the bytes are the decompressed data of one Avro block of the row model
  (first byte: the record count), decoded by the embedded warehouse's C decoder
  (backends/warehouse/_avrocols.c) and by a Python reference decoder: both must reject the
  same inputs, and agree on the rows (as valid Arrow arrays) of the others.

The checks (``check``): the decoder terminates within a bounded number of rows, every
row has exactly ``schema.COLUMN_NAMES`` keys, the stats invariant holds, and the only
exception that escapes is ``NotMRTError`` for the whole stream (``framing``) before
any row, as the decoder documents. Anything else raises ``FuzzFinding``.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import Any, Final

import fastavro
import pyarrow as pa

from rvcloud.backends.warehouse import avro_columns as warehouse_avro_columns
from rvcloud.converter_worker import avro_fast
from rvcloud.converter_worker.convert import convert_stream
from rvcloud.mrt import DecodeStats, NotMRTError, decode_rows
from rvcloud.mrt.schema import COLUMN_NAMES
from rvcloud.mrt.schema import COLUMNS as SCHEMA_COLUMNS
from rvcloud.mrt.writer import (
    MrtWriter,
    Origin,
    PathAttributes,
    Peer,
    Session,
    bgp4mp_message,
    encode_path_attributes,
    peer_index_table,
)

MAX_ROWS: Final = 200_000
COLUMNS: Final = frozenset(COLUMN_NAMES)
RIB_SUBTYPES: Final = (2, 4, 8, 10)
T0: Final = 1_600_000_000


class FuzzFinding(AssertionError):
    """The decoder broke a documented guarantee."""


def check(stream: bytes, *, not_mrt_allowed: bool) -> None:
    stats = DecodeStats()
    rows = 0
    try:
        for row in decode_rows(io.BytesIO(stream), project="p", collector="c", source_file="f", stats=stats):
            rows += 1
            if rows > MAX_ROWS:
                raise FuzzFinding(f"more than {MAX_ROWS} rows from {len(stream)} bytes")
            if row.keys() != COLUMNS:
                raise FuzzFinding(f"row keys differ from schema: {sorted(set(row) ^ COLUMNS)}")
    except NotMRTError:
        if not not_mrt_allowed or rows:
            raise
        return
    if not stats.invariant_ok():
        raise FuzzFinding(f"stats invariant broken: {stats}")


def _peer_table() -> bytes:
    buf = io.BytesIO()
    peers = [Peer("10.0.0.1", "192.0.2.1", 65001), Peer("10.0.0.2", "2001:db8::2", 4_200_000_000)]
    MrtWriter(buf).write(peer_index_table("10.9.9.9", "fuzz", peers), T0)
    return buf.getvalue()


PEER_TABLE: Final = _peer_table()
SESSION_V4: Final = Session("192.0.2.1", 65001, "192.0.2.254", 6447)
SESSION_V6: Final = Session("2001:db8::1", 4_200_000_000, "2001:db8::fe", 6447)


def _header(mrt_type: int, subtype: int, body: bytes) -> bytes:
    return struct.pack(">IHHI", T0, mrt_type, subtype, len(body)) + body


def framing(data: bytes) -> None:
    check(data, not_mrt_allowed=True)


def rib(data: bytes) -> None:
    if not data:
        return
    subtype = RIB_SUBTYPES[data[0] % 4]
    check(PEER_TABLE + _header(13, subtype, data[1:]), not_mrt_allowed=False)


def _update_record(selector: int, payload: bytes) -> bytes:
    """BGP4MP(_ET) record around an UPDATE with ``payload`` (selector picks the variant)."""
    payload = payload[: 65535 - 19]
    message = b"\xff" * 16 + struct.pack(">HB", 19 + len(payload), 2) + payload
    session = SESSION_V6 if selector & 8 else SESSION_V4
    as4 = bool(selector & 1) or session is SESSION_V6
    rec = bgp4mp_message(session, message, as4=as4, addpath=bool(selector & 2))
    if selector & 4:
        return _header(17, rec.subtype, struct.pack(">I", 123_456) + rec.body)
    return _header(16, rec.subtype, rec.body)


def update(data: bytes) -> None:
    if not data:
        return
    check(_update_record(data[0], data[1:]), not_mrt_allowed=False)


_ATTRS: Final = PathAttributes(origin=Origin.IGP, next_hop="192.0.2.1", mp_next_hop="2001:db8::1")


def nlri(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0], data[1:1024]
    field = mode % 4
    v6_nh = b"\x10" + bytes(15) + b"\x01"
    if field == 0:  # withdrawn routes
        payload = struct.pack(">H", len(body)) + body + b"\x00\x00"
    elif field == 1:  # NLRI
        attrs = encode_path_attributes(_ATTRS, as4=True)
        payload = b"\x00\x00" + struct.pack(">H", len(attrs)) + attrs + body
    elif field == 2:  # MP_REACH_NLRI (IPv6 unicast)
        mp = struct.pack(">HB", 2, 1) + v6_nh + b"\x00" + body
        attrs = encode_path_attributes(_ATTRS, as4=True, mp_reach=mp)
        payload = b"\x00\x00" + struct.pack(">H", len(attrs)) + attrs
    else:  # MP_UNREACH_NLRI (IPv6 unicast)
        attrs = encode_path_attributes(
            PathAttributes(origin=None), as4=True, mp_unreach=b"\x00\x02\x01" + body
        )
        payload = b"\x00\x00" + struct.pack(">H", len(attrs)) + attrs
    check(_update_record(1 | (mode >> 2 & 2), payload), not_mrt_allowed=False)


# rib's four subtypes first (its seeds serve here too), then the MULTICAST ones.
ACCEL_SUBTYPES: Final = (2, 4, 8, 10, 3, 5, 9, 11)


def _avro_rows(avro: bytes) -> bytes:
    return b"".join(b.bytes_.getvalue() for b in fastavro.block_reader(io.BytesIO(avro)))


def _convert(stream: bytes, accel: bool) -> tuple[dict[str, Any], dict[str, bytes], bool]:
    outs: dict[str, io.BytesIO] = {}

    def open_output(table: str) -> io.BytesIO:
        outs[table] = io.BytesIO()
        return outs[table]

    saved = avro_fast.ACCEL
    avro_fast.ACCEL = accel
    try:
        res = convert_stream(
            io.BytesIO(stream), open_output, project="p", collector="c", source_file="f", workers=1
        )
    finally:
        avro_fast.ACCEL = saved
    return res.summary(), {t: _avro_rows(b.getvalue()) for t, b in outs.items()}, res.stats.invariant_ok()


def rib_accel(data: bytes) -> None:
    if not data:
        return
    rec = _header(13, ACCEL_SUBTYPES[data[0] % 8], data[1:])
    stream = PEER_TABLE + rec + rec + rec
    fast = _convert(stream, True)
    slow = _convert(stream, False)
    if fast[0] != slow[0]:
        raise FuzzFinding(f"stats differ with the accelerator: {fast[0]} != {slow[0]}")
    if fast[1] != slow[1]:
        raise FuzzFinding("Avro rows differ with the accelerator")
    if not fast[2]:
        raise FuzzFinding("stats invariant broken")
    accel = avro_fast._ribfast
    if accel is not None:
        v4 = not data[0] & 1
        got = accel.encode_rib_attrs(data[1:], v4)
        if got is not None and got != avro_fast.encode_rib_attrs(data[1:], v4):
            raise FuzzFinding("C attribute encoder differs from encode_rib_attrs")


# ---- avro_columns: the warehouse's C decoder of Avro blocks against a Python reference ----


def _zz(v: int) -> int:
    return (v >> 1) ^ -(v & 1)


def avro_reference_rows(data: bytes, count: int) -> tuple[list[dict[str, Any]], list[int]]:
    """Rows of the row model (timestamps as int microseconds) decoded from one block's data,
    and the byte offset where each row ends; ``ValueError`` on any damage the C decoder
    (backends/warehouse/_avrocols.c) must also reject."""
    pos = 0
    end = len(data)

    def long() -> int:
        nonlocal pos
        v = shift = 0
        while True:
            if pos >= end:
                raise ValueError("truncated varint")
            b = data[pos]
            pos += 1
            if shift == 63 and b > 1:
                raise ValueError("varint overflows 64 bits")
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return _zz(v)
            shift += 7

    def string() -> str:
        nonlocal pos
        n = long()
        if n < 0 or n > end - pos:
            raise ValueError("bad string length")
        s = data[pos : pos + n].decode("utf-8")  # strict: UnicodeDecodeError is a ValueError
        pos += n
        return s

    def items(item: Callable[[], Any]) -> list[Any]:
        out: list[Any] = []
        while (n := long()) != 0:
            start = size = None
            if n < 0:
                n = -n
                size = long()
                if size < 0 or size > end - pos:
                    raise ValueError("bad array block size")
                start = pos
            if n > end - pos:
                raise ValueError("array count exceeds the data")
            out += [item() for _ in range(n)]
            if start is not None and pos - start != size:
                raise ValueError("array block size mismatch")
        return out

    def value(t: str) -> Any:
        if t in ("timestamp", "int64"):
            return long()
        if t == "int32":
            v = long()
            if not -(2**31) <= v < 2**31:
                raise ValueError("int out of range")
            return v
        if t == "string":
            return string()
        if t == "bool":
            nonlocal pos
            if pos >= end or data[pos] > 1:
                raise ValueError("bad boolean")
            pos += 1
            return data[pos - 1] == 1
        return items(long if t == "int64_list" else string)

    if count > end:
        raise ValueError("count exceeds the data")
    rows: list[dict[str, Any]] = []
    ends: list[int] = []
    for _ in range(count):
        row: dict[str, Any] = {}
        for c in SCHEMA_COLUMNS:
            if c.nullable and not c.type.endswith("_list"):
                branch = long()
                if branch == 0:
                    row[c.name] = None
                    continue
                if branch != 1:
                    raise ValueError("bad union branch")
            row[c.name] = value(c.type)
        rows.append(row)
        ends.append(pos)
    if pos != end:
        raise ValueError("data after the last record")
    return rows, ends


def avro_columns(data: bytes) -> None:
    """First byte: record count; the rest: one block's decompressed data. The C decoder must
    accept exactly what the reference accepts, give the same rows and valid Arrow arrays."""
    if not data or not warehouse_avro_columns.accel_enabled():
        return
    count, block = data[0], data[1:]
    try:
        expected, _ = avro_reference_rows(block, count)
    except ValueError:
        expected = None
    try:
        got = warehouse_avro_columns.decode_blocks([block], [count])
    except ValueError as e:
        if expected is not None:
            raise FuzzFinding(f"C decoder rejects what the reference decodes: {e}") from e
        if "byte" not in str(e):
            raise FuzzFinding(f"error without a byte offset: {e}") from e
        return
    if expected is None:
        raise FuzzFinding("C decoder accepts what the reference rejects")
    got.validate(full=True)
    want = pa.Table.from_pylist(expected, schema=warehouse_avro_columns.ARROW_SCHEMA)
    if not got.equals(want):
        raise FuzzFinding("C decoder's rows differ from the reference's")


TARGETS: Final[dict[str, Callable[[bytes], None]]] = {
    "framing": framing,
    "rib": rib,
    "update": update,
    "nlri": nlri,
    "rib_accel": rib_accel,
    "avro_columns": avro_columns,
}
