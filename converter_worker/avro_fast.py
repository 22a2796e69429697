"""Fast Avro encoding of decoder rows: the converter's hot path.

fastavro resolves every union of every row (about 20 us per row here); this module
writes the same bytes directly. An Avro record is the concatenation of its fields in
schema order, so a row is assembled from pre-encoded pieces:

- generic rows (dicts from the decoder) go through an encoder generated from
  ``schema.COLUMNS``; strings are encoded once per distinct value (collector,
  peer address, next hop ... repeat constantly);
- TABLE_DUMP_V2 RIB records (the bulk of every RIB) never become dicts at all:
  :class:`RibFastPath` is handed the raw record by the decoder and writes
  ``[time][constants + peer][prefix, path_id, afi, safi][attribute set][tail]``
  per route, where the attribute-set part is encoded once per distinct raw
  attribute blob and the peer part once per peer.

:class:`AvroContainerWriter` writes a standard object container file (header with
the schema from ``schema.avro_schema``, deflate blocks, sync markers); blocks are
compressed in a background thread (zlib releases the GIL) while the next block is
being encoded. Its output is read back by fastavro in ``tests/perf``.
"""

from __future__ import annotations

import json
import os
import struct
import types
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from socket import inet_ntoa
from typing import IO, Any, Final, Protocol

from rvcloud.mrt import aspath, communities
from rvcloud.mrt.attributes import (
    FLAG_EXTENDED_LENGTH,
    MPNLRI,
    ORIGIN_NAMES,
    AttrError,
    _mp_reach,
    decode_attributes,
)
from rvcloud.mrt.context import RIB_CACHE_LIMIT, Context, RecordError
from rvcloud.mrt.decoder import _failure, _rib_run
from rvcloud.mrt.framing import MAX_RECORD_LEN, PLAUSIBLE_KEYS
from rvcloud.mrt.nlri import AFI_IPV4, ip_text, ipv4_text, prefix_text
from rvcloud.mrt.schema import COLUMN_NAMES, COLUMNS, Column, avro_schema
from rvcloud.mrt.table_dump import RIB_SUBTYPES

# Rows per Avro block: large enough for deflate to work well, small enough to bound memory.
BLOCK_ROWS: Final = 10_000
# Blocks compressed ahead of the file write (bounds memory to a few blocks).
_MAX_PENDING: Final = 3

Row = dict[str, Any]

# ---- primitive encodings -------------------------------------------------------------

_SMALL: Final = tuple(bytes((i,)) for i in range(128))


def zz(n: int) -> bytes:
    """Avro ``long``/``int``: zigzag then little-endian base-128 varint."""
    z = (n << 1) if n >= 0 else ((-n) << 1) - 1
    if z < 0x80:
        return _SMALL[z]
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def avro_string(s: str) -> bytes:
    b = s.encode()
    return zz(len(b)) + b


class _StrCache(dict[str, bytes]):
    """str -> encoded Avro string (optionally as union branch 1); bounded, cleared when full."""

    __slots__ = ("_prefix",)
    _LIMIT: Final = 200_000

    def __init__(self, prefix: bytes) -> None:
        super().__init__()
        self._prefix = prefix

    def __missing__(self, s: str) -> bytes:
        if len(self) >= self._LIMIT:
            self.clear()
        b = self[s] = self._prefix + avro_string(s)
        return b


class _LongCache(dict[int, bytes]):
    """int -> zz(int) for values that repeat (ASNs in paths); bounded, cleared when full."""

    __slots__ = ()
    _LIMIT: Final = 500_000

    def __missing__(self, n: int) -> bytes:
        if len(self) >= self._LIMIT:
            self.clear()
        b = self[n] = zz(n)
        return b


_longs = _LongCache()


def _long_list(v: list[int]) -> bytes:
    if not v:
        return b"\x00"
    c = _longs
    return c[len(v)] + b"".join([c[x] for x in v]) + b"\x00"


def _str_list(v: list[str]) -> bytes:
    if not v:
        return b"\x00"
    return zz(len(v)) + b"".join([avro_string(x) for x in v]) + b"\x00"


def _nullable_long(v: int | None) -> bytes:
    return b"\x00" if v is None else b"\x02" + zz(v)


def _field_expr(c: Column, var: str) -> str:
    """Python expression encoding column ``c`` whose value is in ``var``."""
    t = c.type
    if t.endswith("_list"):
        return f"{'_long_list' if t == 'int64_list' else '_str_list'}({var})"
    if t == "bool":
        return f"(b'\\x01' if {var} else b'\\x00')"
    if t == "string":
        return f"_ns[{var}] if {var} is not None else b'\\x00'" if c.nullable else f"_s[{var}]"
    # timestamp, int64, int32
    return f"_nullable_long({var})" if c.nullable else f"zz({var})"


def _make_encoder(columns: tuple[Column, ...], name: str) -> Callable[[Row], bytes]:
    """Generate ``name(row) -> bytes`` encoding ``columns`` of a row dict in order."""
    lines = [f"def {name}(r):", "    return b''.join(("]
    for c in columns:
        lines.append(f"        {_field_expr(c, f'r[{c.name!r}]')},")
    lines.append("    ))")
    env: dict[str, Any] = {
        "zz": zz,
        "_long_list": _long_list,
        "_str_list": _str_list,
        "_nullable_long": _nullable_long,
        "_s": _StrCache(b""),
        "_ns": _StrCache(b"\x02"),
    }
    exec("\n".join(lines), env)  # generated from the fixed schema, no outside input
    fn: Callable[[Row], bytes] = env[name]
    return fn


# ---- the row layout the RIB fast path relies on ---------------------------------------

_PREFIX_COLS: Final = (
    "timestamp",
    "originated_time",
    "project",
    "collector",
    "source_file",
    "elem_type",
    "peer_ip",
    "peer_asn",
    "prefix",
    "path_id",
    "afi",
    "safi",
)
_SUFFIX_COLS: Final = ("old_state", "new_state", "record_index", "record_offset")
_N_ATTR: Final = len(COLUMNS) - len(_PREFIX_COLS) - len(_SUFFIX_COLS)
# The fast path needs the per-route columns around one contiguous attribute-set run;
# if COLUMNS is ever reordered otherwise it is simply not used (generic rows then).
LAYOUT_OK: Final = (
    COLUMN_NAMES[: len(_PREFIX_COLS)] == _PREFIX_COLS
    and COLUMN_NAMES[len(COLUMN_NAMES) - len(_SUFFIX_COLS) :] == _SUFFIX_COLS
)
_ATTR_COLUMNS: Final = COLUMNS[len(_PREFIX_COLS) : len(_PREFIX_COLS) + _N_ATTR]

encode_row: Final = _make_encoder(COLUMNS, "encode_row")
encode_attr_part: Final = _make_encoder(_ATTR_COLUMNS, "encode_attr_part")

# ---- attribute sets of RIB entries straight to bytes ------------------------------------

_FAST_ATTR_NAMES: Final = (
    "next_hop",
    "next_hop_link_local",
    "as_path",
    "as_path_asns",
    "origin_asns",
    "origin",
    "local_pref",
    "med",
    "communities",
    "large_communities",
    "extended_communities",
    "atomic_aggregate",
    "aggregator_asn",
    "aggregator_ip",
    "only_to_customer",
    "originator_id",
    "cluster_list",
    "unknown_attributes",
)
FAST_ATTRS_OK: Final = LAYOUT_OK and tuple(c.name for c in _ATTR_COLUMNS) == _FAST_ATTR_NAMES
_ORIGIN_BYTES: Final = {k: b"\x02" + avro_string(v) for k, v in ORIGIN_NAMES.items()}
_AGG2 = struct.Struct(">H4s")
_AGG4 = struct.Struct(">I4s")
_U32 = struct.Struct(">I")
_nh_cache: dict[bytes, bytes] = {}
_ns_cache = _StrCache(b"\x02")


def _ns(v: str | None) -> bytes:
    return b"\x00" if v is None else _ns_cache[v]


def encode_rib_attrs(raw: bytes, v4: bool) -> bytes | None:
    """The attribute-set part of a TABLE_DUMP_V2 route (4-byte ASNs) without building rows.

    Handles the attribute sets RIBs are made of (ORIGIN, AS_PATH, NEXT_HOP, MED,
    LOCAL_PREF, ATOMIC_AGGREGATE, AGGREGATOR, COMMUNITIES, LARGE_COMMUNITY, MP_REACH),
    each well-formed and present once, so no note can arise; returns ``None`` for
    anything else and the caller takes ``decode_attributes`` + ``encode_attr_part``.
    ``v4`` selects the row template ``table_dump.rib_afi`` uses (``base`` for IPv4,
    ``base_mp`` for IPv6). The tests compare both ways on every shared file.
    """
    p = 0
    end = len(raw)
    seen = 0
    nh: bytes | None = None
    segs: list[aspath.Segment] | None = None
    origin = b"\x00"
    med = lp = b"\x00"
    comm = large = b"\x00"
    atomic = b"\x00"
    agg = b"\x00\x00"
    mp: MPNLRI | None = None
    while p < end:
        if p + 3 > end:
            return None
        flags = raw[p]
        typ = raw[p + 1]
        if flags & FLAG_EXTENDED_LENGTH:
            if p + 4 > end:
                return None
            alen = (raw[p + 2] << 8) | raw[p + 3]
            p += 4
        else:
            alen = raw[p + 2]
            p += 3
        q = p + alen
        if q > end or seen & (1 << typ):
            return None
        seen |= 1 << typ
        v = raw[p:q]
        p = q
        if typ == 2:
            try:
                segs = aspath.parse_segments(v, 4)
            except aspath.ASPathError:
                return None
        elif typ == 1:
            if alen != 1 or v[0] not in _ORIGIN_BYTES:
                return None
            origin = _ORIGIN_BYTES[v[0]]
        elif typ == 3:
            if alen != 4 and alen != 16:
                return None
            nh = v
        elif typ == 6:
            atomic = b"\x01"
        elif typ == 7:
            if alen == 6:
                asn, ip = _AGG2.unpack(v)
            elif alen == 8:
                asn, ip = _AGG4.unpack(v)
            else:
                return None
            agg = b"\x02" + zz(asn) + _ns_cache[ipv4_text(ip)]
        elif typ == 8:
            if alen % 4:
                return None
            comm = _str_list(communities.standard(v))
        elif typ == 4 or typ == 5:
            if alen != 4:
                return None
            b = b"\x02" + zz(_U32.unpack(v)[0])
            if typ == 4:
                med = b
            else:
                lp = b
        elif typ == 14:
            try:
                mp = _mp_reach(v)
            except AttrError:
                return None
        elif typ == 32:
            if alen % 12:
                return None
            large = _str_list(communities.large(v))
        else:
            return None
    # next_hop, next_hop_link_local: decode_attributes' base (IPv4) / base_mp (IPv6) rules
    if mp is not None and (not v4 or nh is None):
        hops = _ns(mp.next_hop) + _ns(mp.next_hop_ll)
    elif nh is not None:
        hops = _nh_cache.get(nh) or _nh_cache.setdefault(nh, _ns_cache[ip_text(nh)] + b"\x00")
    else:
        hops = b"\x00\x00"
    if segs is not None:
        path = b"\x02" + avro_string(aspath.path_text(segs))
        path += _long_list(aspath.flatten(segs)) + _long_list(aspath.origin_asns(segs))
    else:
        path = b"\x00\x00\x00"
    # ... extended_communities (none), atomic, aggregator, then OTC, originator, cluster, unknown
    return b"".join((hops, path, origin, lp, med, comm, large, b"\x00", atomic, agg, b"\x00\x00\x00\x00"))


# ---- the optional C accelerator -----------------------------------------------------------

# ``_ribfast`` (converter_worker/_ribfast.c, built by setuptools when a compiler is there)
# takes over ``_rib_run`` + ``RibFastPath.__call__`` for the common RIB records; see
# ``RibFastPath.run``. Off with ``RVCLOUD_NO_ACCEL=1`` (read per run) or ``ACCEL = False``.
_ribfast: types.ModuleType | None
try:
    from . import _ribfast as _built
except ImportError:  # pragma: no cover - built without a compiler
    _ribfast = None
else:
    _built.configure(sorted(PLAUSIBLE_KEYS), MAX_RECORD_LEN)
    _ribfast = _built

ACCEL = True
# The accelerator's own encoder of the common attribute sets (a C twin of
# ``encode_rib_attrs``, compared with it blob by blob in the tests); off: every blob not
# yet cached is encoded by ``encode_rib_attrs``.
ACCEL_ATTRS = True


def accel_enabled() -> bool:
    """Whether RIB runs go through the C accelerator (built, and not switched off)."""
    return _ribfast is not None and ACCEL and not os.environ.get("RVCLOUD_NO_ACCEL")


# ---- container file -------------------------------------------------------------------


# Avro "deflate" is raw RFC 1951 data. ISA-L (PyPI ``isal``, in the server extra) writes
# it about 25x faster than zlib level 6 (jinx: 88 MB of rows in 0.06 s at level 2, 10.7 MB
# out, against 0.84 s and 9.3 MB); without it zlib level 1 (0.32 s, 10.7 MB) is used.
_zlib_impl: types.ModuleType
try:
    from isal import isal_zlib

    _zlib_impl, DEFLATE_LEVEL = isal_zlib, 2
except ImportError:  # pragma: no cover - isal is in the server extra
    _zlib_impl, DEFLATE_LEVEL = zlib, 1


def deflate(data: bytes) -> bytes:
    """Raw deflate (Avro codec "deflate") of one block."""
    c = _zlib_impl.compressobj(DEFLATE_LEVEL, _zlib_impl.DEFLATED, -15)
    out: bytes = c.compress(data) + c.flush()
    return out


class RowSink(Protocol):
    """Where :class:`RibFastPath` puts encoded rows: append to ``parts``, count in ``rows``,
    call ``flush_block`` once ``rows`` reaches ``BLOCK_ROWS``."""

    parts: list[bytes]
    rows: int

    def flush_block(self) -> None: ...


class AvroContainerWriter:
    """Avro object container file with deflate blocks, compressed off the encoding thread.

    Rows are appended as encoded bytes (``add``); every ``BLOCK_ROWS`` rows the block
    is handed to the compression thread; ``close`` flushes and waits. The caller
    closes ``out``.
    """

    def __init__(self, out: IO[bytes], table: str, pool: ThreadPoolExecutor) -> None:
        self._out = out
        self._pool = pool
        self._sync = os.urandom(16)
        self._pending: deque[tuple[int, Future[bytes] | bytes]] = deque()
        self.parts: list[bytes] = []
        self.rows = 0
        schema = json.dumps(avro_schema(table), separators=(",", ":")).encode()
        meta = {"avro.schema": schema, "avro.codec": b"deflate"}
        head = [b"Obj\x01", zz(len(meta))]
        for k, v in meta.items():
            head += [avro_string(k), zz(len(v)), v]
        head += [b"\x00", self._sync]
        out.write(b"".join(head))

    def add(self, row: bytes) -> None:
        self.parts.append(row)
        self.rows += 1
        if self.rows >= BLOCK_ROWS:
            self.flush_block()

    def flush_block(self) -> None:
        if not self.rows:
            return
        data = b"".join(self.parts)
        self._pending.append((self.rows, self._pool.submit(deflate, data)))
        self.parts = []
        self.rows = 0
        while len(self._pending) > _MAX_PENDING:
            self._write_one()

    def add_blocks(self, blocks: list[tuple[int, bytes]]) -> None:
        """Append blocks compressed elsewhere: ``(row count, deflated rows)``, after the rows so far."""
        self.flush_block()
        self._pending.extend(blocks)
        while len(self._pending) > _MAX_PENDING:
            self._write_one()

    def _write_one(self) -> None:
        n, fut = self._pending.popleft()
        data = fut if isinstance(fut, bytes) else fut.result()
        self._out.write(b"".join((zz(n), zz(len(data)), data, self._sync)))

    def close(self) -> None:
        self.flush_block()
        while self._pending:
            self._write_one()
        self._out.flush()


# ---- TABLE_DUMP_V2 RIB records straight to bytes ----------------------------------------

_U16 = struct.Struct(">H")
_ENTRY = struct.Struct(">HIH")
_ENTRY_AP = struct.Struct(">HIIH")
_SEQ_PLEN = struct.Struct(">IB")
_ZERO4: Final = bytes(4)
# Originated times repeat a lot in real RIBs (routes learned in the same session burst)
# but can be all different; a small cache keeps the common case without the memory.
_OT_CACHE_LIMIT: Final = 16_384


def uvarint2(n: int) -> bytes:
    """``zz(n)`` for ``n >= 0`` without a loop for values below 2**27 (record index/offset)."""
    z = n << 1
    if z < 0x80:
        return _SMALL[z]
    if z < 0x4000:
        return bytes(((z & 0x7F) | 0x80, z >> 7))
    if z < 0x200000:
        return bytes(((z & 0x7F) | 0x80, ((z >> 7) & 0x7F) | 0x80, z >> 14))
    if z < 0x10000000:
        return bytes(((z & 0x7F) | 0x80, ((z >> 7) & 0x7F) | 0x80, ((z >> 14) & 0x7F) | 0x80, z >> 21))
    return zz(n)


class RibFastPath:
    """Decoder hook for RIB_IPV4/IPV6_UNICAST/MULTICAST(_ADDPATH) records.

    Mirrors ``table_dump.rib_afi`` exactly (same rows, same notes, same cache policy so
    the same ``attribute_problem`` counts) but appends encoded rows to the ``ribs``
    writer instead of building dicts. Returns the number of rows or a skip reason.
    """

    # Attribute-set cache bound. The sequential path keeps the decoder's bound and
    # clearing policy, so ``note:attribute_problem`` counts are the decoder's.
    cache_limit = RIB_CACHE_LIMIT

    def __init__(self, ctx: Context, writer: Callable[[], RowSink]) -> None:
        self._template = t = ctx.template
        self._get_writer = writer
        self._writer: RowSink | None = None
        # project, collector, source_file, elem_type: the same for every RIB row.
        self._const = b"".join(
            avro_string(x) for x in (t["project"], t["collector"], t["source_file"], "RIB")
        )
        self._peers: list[tuple[str, int]] | None = None
        self._peer_bytes: list[bytes] = []
        cache_v4: dict[bytes, bytes] = {}
        cache_v6: dict[bytes, bytes] = {}
        # subtype -> (afi, max prefix bits, ADD-PATH, encoded afi+safi, attribute cache)
        self._sub: dict[int, tuple[int, int, bool, bytes, dict[bytes, bytes]]] = {
            sub: (
                afi,
                32 if afi == AFI_IPV4 else 128,
                addpath,
                b"\x02" + zz(afi) + b"\x02" + zz(safi),
                cache_v4 if afi == AFI_IPV4 else cache_v6,
            )
            for sub, (afi, safi, addpath) in RIB_SUBTYPES.items()
        }
        # originated time -> encoded timestamp + originated_time (the dump time is the same
        # for all records of a file; the cache is dropped if it ever changes).
        self._ts = -1
        self._head: dict[int, bytes] = {}
        self._pfx_len = [b"\x02" + zz(n) for n in range(64)]
        self._pfx_suffix = [f"/{n}" for n in range(33)]

    def attribute_notes(self, ctx: Context, raw: bytes, messages: list[str]) -> None:
        """Problems found decoding the attribute blob ``raw`` (once per cache miss)."""
        for m in messages:
            ctx.note("attribute_problem", m)

    def run(
        self, ctx: Context, buf: bytes, pos: int, base: int, idx: int, sub: int, eof: bool, accel: bool
    ) -> tuple[int, int, int, int, int, int]:
        """``decoder._rib_run(self, ...)``, through the C accelerator when ``accel``.

        The accelerator frames the same records and writes the same rows for records whose
        entries are all in bounds, with known peers and attribute blobs that are cached or
        that ``encode_rib_attrs`` encodes (``_encode_miss``, the same insertion as in
        ``__call__``); every other record goes through ``__call__`` (``_slow_record``), so
        notes, skips, errors and the cache policy are this class's. ADD-PATH subtypes and records
        without a peer table take the Python loop.
        """
        peers = ctx.peers
        afi, _maxbits, addpath, afisafi, cache = self._sub[sub]
        if not accel or _ribfast is None or peers is None or addpath:
            return _rib_run(self, ctx, buf, pos, base, idx, sub, eof)
        if peers is not self._peers:
            self._peers = peers
            self._peer_bytes = [self._const + avro_string(ip) + zz(asn) for ip, asn in peers]
        res: tuple[int, int, int, int, int, int] = _ribfast.rib_run(
            ctx,
            buf,
            pos,
            base,
            idx,
            sub,
            eof,
            afi == AFI_IPV4,
            afisafi,
            cache,
            self.cache_limit if FAST_ATTRS_OK and ACCEL_ATTRS else -1,
            self._encode_miss,
            self._peer_bytes,
            self._slow_record,
            self._sink,
            BLOCK_ROWS,
        )
        return res

    def _encode_miss(self, cache: dict[bytes, bytes], raw: bytes, v4: bool) -> bytes | None:
        """A blob not in ``cache``, as ``__call__`` treats one first: the common attribute
        kinds encoded and cached; ``None`` (nothing cached) sends the record to ``__call__``."""
        if not FAST_ATTRS_OK:
            return None
        attr = encode_rib_attrs(raw, v4)
        if attr is not None:
            if len(cache) >= self.cache_limit:
                cache.clear()
            cache[raw] = attr
        return attr

    def _sink(self) -> RowSink:
        w = self._writer
        if w is None:
            w = self._writer = self._get_writer()
        return w

    def _slow_record(
        self, ctx: Context, buf: bytes, start: int, end: int, sub: int, ts_us: int, idx: int, off: int
    ) -> int:
        """One record the accelerator left to Python, accounted as ``_rib_run`` does: rows or 0."""
        try:
            res = self(ctx, buf, start, end, sub, ts_us, idx, off)
        except Exception as e:
            reason, err = _failure(e, idx, off)
            ctx.stats.skip(reason)
            ctx.stats.error(err)
            return 0
        if type(res) is int:
            return res
        ctx.stats.skip(res)  # type: ignore[arg-type]
        return 0

    def __call__(
        self, ctx: Context, buf: bytes, start: int, end: int, subtype: int, ts_us: int, idx: int, off: int
    ) -> int | str:
        peers = ctx.peers
        if peers is None:
            return "missing_peer_index_table"
        if peers is not self._peers:
            self._peers = peers
            self._peer_bytes = [self._const + avro_string(ip) + zz(asn) for ip, asn in peers]
        afi, maxbits, addpath, afisafi, cache = self._sub[subtype]
        _seq, plen = _SEQ_PLEN.unpack_from(buf, start)
        if plen > maxbits:
            raise RecordError("malformed_prefix", f"prefix length {plen}")
        p = start + 5
        nb = (plen + 7) >> 3
        if afi == AFI_IPV4 and not plen & 7:
            # Whole bytes, nothing to mask: the common case, inline.
            # (a short slice makes inet_ntoa raise exactly as in prefix_text)
            pb = (inet_ntoa(buf[p : p + nb] + _ZERO4[nb:]) + self._pfx_suffix[plen]).encode()
        else:
            pb = prefix_text(afi, plen, buf[p : p + nb]).encode()
        p += nb
        (count,) = _U16.unpack_from(buf, p)
        p += 2
        # prefix, then path_id (null unless ADD-PATH), afi, safi
        pfx = self._pfx_len[len(pb)] + pb
        mid = pfx + b"\x00" + afisafi
        tail = b"\x00\x00" + uvarint2(idx) + uvarint2(off)
        if ts_us != self._ts:
            self._ts = ts_us
            self._head = {}
        head = self._head
        peer_bytes = self._peer_bytes
        npeers = len(peer_bytes)
        if count == 1 and not addpath and p + 8 <= end:
            # One route whose attribute set is already encoded (most of a RIB): no loop,
            # no notes possible. Anything else takes the general loop below.
            pi, ot, alen = _ENTRY.unpack_from(buf, p)
            q = p + 8 + alen
            if q <= end and pi < npeers:
                attr = cache.get(buf[p + 8 : q])
                if attr is not None:
                    h = head.get(ot)
                    if h is None:
                        if len(head) >= _OT_CACHE_LIMIT:
                            head.clear()
                        h = head[ot] = zz(ts_us) + b"\x02" + zz(ot * 1000000)
                    w = self._writer
                    if w is None:
                        w = self._writer = self._get_writer()
                    w.parts.append(b"".join((h, peer_bytes[pi], mid, attr, tail)))
                    w.rows += 1
                    if w.rows >= BLOCK_ROWS:
                        w.flush_block()
                    return 1
        if addpath:
            unpack, esize = _ENTRY_AP.unpack_from, 12
        else:
            unpack, esize = _ENTRY.unpack_from, 8
        rows: list[bytes] = []
        for i in range(count):
            if p + esize > end:
                ctx.note("rib_entries_lost", f"record {idx} @ {off}: entry {i} of {count} truncated")
                break
            if addpath:
                pi, ot, path_id, alen = unpack(buf, p)
                mid = pfx + b"\x02" + zz(path_id) + afisafi
            else:
                pi, ot, alen = unpack(buf, p)
            p += esize
            q = p + alen
            if q > end:
                ctx.note("rib_entries_lost", f"record {idx} @ {off}: entry {i} attributes overrun record")
                break
            raw = buf[p:q]
            p = q
            attr = cache.get(raw)
            if attr is None and FAST_ATTRS_OK:
                attr = encode_rib_attrs(raw, afi == AFI_IPV4)
                if attr is not None:
                    if len(cache) >= self.cache_limit:
                        cache.clear()
                    cache[raw] = attr
            if attr is None:
                try:
                    a = decode_attributes(raw, 4, self._template)
                except AttrError as e:
                    ctx.note("rib_entries_lost", f"record {idx} @ {off}: entry {i}: {e}")
                    continue
                if a.notes:
                    self.attribute_notes(ctx, raw, [f"record {idx} @ {off}: {n}" for n in a.notes])
                attr = encode_attr_part(a.base if afi == AFI_IPV4 else a.base_mp)
                if len(cache) >= self.cache_limit:
                    cache.clear()
                cache[raw] = attr
            if pi >= npeers:
                ctx.note("rib_entries_lost", f"record {idx} @ {off}: peer index {pi} >= {npeers}")
                continue
            h = head.get(ot)
            if h is None:
                if len(head) >= _OT_CACHE_LIMIT:
                    head.clear()
                h = head[ot] = zz(ts_us) + b"\x02" + zz(ot * 1000000)
            rows.append(b"".join((h, peer_bytes[pi], mid, attr, tail)))
        if not rows:
            return "empty_rib_record" if count == 0 else "malformed_rib_record"
        w = self._writer
        if w is None:
            w = self._writer = self._get_writer()
        w.parts += rows
        w.rows += len(rows)
        if w.rows >= BLOCK_ROWS:
            w.flush_block()
        return len(rows)
