"""The decode loop: frame records, dispatch them to the type decoders, keep the stats.

``decode_rows`` never raises for damaged content: every problem becomes a skip
reason, a note or a byte range (see ``stats``). The only exception it lets escape
is :class:`NotMRTError`, raised before any row when the first record header is
impossible.

Framing repairs, in the order they are tried when the header after a record is
not plausible (see ``framing`` for plausibility and the resync scan):

1. TABLE_DUMP records of early RIS dumps whose declared length is 4 bytes short:
   if the header 4 bytes further is plausible (or the stream ends there) and the
   record parses exactly with length + 4, that length is used
   (``note:td1_length_plus_4``);
2. a record that fails to decode is treated as part of the damage: the scan
   restarts one byte after its header, so records hidden inside a corrupted
   length are recovered;
3. otherwise the record's rows are kept and the scan starts after it.

A stream that ends inside a record (or whose compressed stream is cut) keeps
every complete record, counts the partial one as ``truncated_record`` and sets
``stats.truncated_at`` to the decompressed offset where the data ended.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Final, Protocol, cast

from . import bgp4mp, table_dump
from .context import Context, RecordError
from .framing import (
    HEADER,
    HEADER_LEN,
    MAX_RECORD_LEN,
    PLAUSIBLE_KEYS,
    T_BGP,
    T_BGP4MP,
    T_BGP4MP_ET,
    T_TABLE_DUMP,
    T_TABLE_DUMP_V2,
    BlockReader,
    find_resync,
    plausible,
    type_name,
)
from .stats import DecodeStats


class NotMRTError(ValueError):
    """The data is not MRT at all (the first record header is impossible)."""


Handler = Callable[[Context, bytes, int, int, int, int, int, int], "list[dict[str, Any]] | str"]
# A consumer of raw TABLE_DUMP_V2 RIB records (see ``decode_records``): same arguments as a
# handler; returns how many rows it produced (> 0) or a skip reason, or raises like one.
RibHook = Callable[[Context, bytes, int, int, int, int, int, int], "int | str"]

_LOOKAHEAD: Final = HEADER_LEN + 4 + HEADER_LEN


def _td2(
    ctx: Context, buf: bytes, start: int, end: int, subtype: int, ts_us: int, idx: int, off: int
) -> list[dict[str, Any]] | str:
    if subtype in table_dump.RIB_SUBTYPES:
        return table_dump.rib_afi(ctx, buf, start, end, subtype, ts_us, idx, off)
    if subtype == table_dump.PEER_INDEX_TABLE:
        return table_dump.peer_index_table(ctx, buf, start, end)
    if subtype in (table_dump.RIB_GENERIC, table_dump.RIB_GENERIC_ADDPATH):
        return table_dump.rib_generic(ctx, buf, start, end, subtype, ts_us, idx, off)
    return f"unsupported_subtype:13/{subtype}"


_HANDLERS: Final[dict[int, Handler]] = {
    T_TABLE_DUMP_V2: _td2,
    T_TABLE_DUMP: table_dump.table_dump,
    T_BGP4MP: bgp4mp.bgp4mp,
    T_BGP4MP_ET: bgp4mp.bgp4mp,
    T_BGP: bgp4mp.legacy_bgp,
}


def _decode_one(
    ctx: Context,
    handler: Handler | RibHook,
    buf: bytes,
    start: int,
    end: int,
    subtype: int,
    ts_us: int,
    idx: int,
    off: int,
) -> tuple[list[dict[str, Any]] | int | str, str | None]:
    """Run a record decoder; returns (rows or skip reason, error message)."""
    try:
        return handler(ctx, buf, start, end, subtype, ts_us, idx, off), None
    except Exception as e:  # struct.error and anything unforeseen: never escape
        return _failure(e, idx, off)


def _failure(e: Exception, idx: int, off: int) -> tuple[str, str]:
    """(skip reason, error message) for a record decoder that raised ``e``."""
    if isinstance(e, RecordError):
        return e.reason, f"record {idx} @ {off}: {e.reason}: {e}"
    return "malformed_record", f"record {idx} @ {off}: malformed_record: {type(e).__name__}: {e}"


class BatchRibHook(Protocol):
    """A RIB hook that takes whole runs of records at once and accounts them later.

    ``batch`` gets ``buf[pos:end]`` holding ``n`` clean records of subtype ``sub``, the
    first being record ``idx`` at stream offset ``off``; the decoder has counted them in
    ``records_read`` and ``mrt_types``; the hook adds their rows, skips and errors to
    the stats itself, in order, at the latest when ``sync`` returns. The decoder calls
    ``sync`` before it handles any other record and at the end of the stream.
    """

    def __call__(
        self, ctx: Context, buf: bytes, start: int, end: int, subtype: int, ts_us: int, idx: int, off: int
    ) -> int | str: ...

    def batch(self, buf: bytes, pos: int, end: int, off: int, idx: int, sub: int, n: int) -> None: ...

    def sync(self) -> None: ...


class FramingRibHook(BatchRibHook, Protocol):
    """A ``BatchRibHook`` that also frames the runs itself: ``frame`` returns exactly what
    ``_rib_frame`` returns for the same arguments (a compiled twin of it)."""

    def frame(self, buf: bytes, pos: int, sub: int, eof: bool) -> tuple[int, int, int]: ...


def _rib_run(
    hook: RibHook,
    ctx: Context,
    buf: bytes,
    pos: int,
    base: int,
    idx: int,
    sub: int,
    eof: bool,
) -> tuple[int, int, int, int, int, int]:
    """Frame consecutive clean TABLE_DUMP_V2 RIB records of subtype ``sub``.

    The hot loop of a RIB conversion, without the general loop's per-record dispatch.
    It takes a record only when the general loop would treat it exactly the same way:
    the record and the lookahead are in ``buf`` (no refill would happen) or the stream
    has ended, and the next header is plausible or absent (no repair or resync is
    involved); it stops at the first other record. Each record is decoded by ``hook``
    here (skip reasons and errors go to the stats as in the general loop).
    Returns ``(pos, idx, records, records with rows, rows, timestamp of the last record)``.
    """
    stats = ctx.stats
    unpack = HEADER.unpack_from
    blen = len(buf)
    plausible_keys = PLAUSIBLE_KEYS
    n = with_rows = nrows = last_ts = 0
    while pos + HEADER_LEN <= blen:
        ts, typ, sub2, ln = unpack(buf, pos)
        end = pos + HEADER_LEN + ln
        if typ != T_TABLE_DUMP_V2 or sub2 != sub or ln > MAX_RECORD_LEN:
            break
        if end + _LOOKAHEAD > blen and not (eof and end <= blen):
            break
        if end + HEADER_LEN <= blen:
            _t, ntyp, nsub, nln = unpack(buf, end)
            if nln > MAX_RECORD_LEN or ((ntyp << 16) | nsub) not in plausible_keys:
                break
        off = base + pos
        try:
            res = hook(ctx, buf, pos + HEADER_LEN, end, sub, ts * 1000000, idx, off)
        except Exception as e:
            res, err = _failure(e, idx, off)
            stats.skip(res)
            stats.error(err)
        else:
            if type(res) is int:
                with_rows += 1
                nrows += res
            else:
                stats.skip(res)  # type: ignore[arg-type]
        n += 1
        idx += 1
        pos = end
        last_ts = ts
    return pos, idx, n, with_rows, nrows, last_ts


def _rib_frame(buf: bytes, pos: int, sub: int, eof: bool) -> tuple[int, int, int]:
    """``_rib_run`` without a hook, for a ``BatchRibHook``: frames the same records, faster.

    Each header is read once: the "next header is plausible" test of a record is the
    header test of the following one, so when the run stops at an implausible header the
    last record taken is given back (the general loop resyncs there).
    Returns ``(pos, records, timestamp of the last record)``.
    """
    unpack = HEADER.unpack_from
    blen = len(buf)
    n = last_ts = prev_ts = 0
    prev = pos
    while pos + HEADER_LEN <= blen:
        ts, typ, sub2, ln = unpack(buf, pos)
        if typ != T_TABLE_DUMP_V2 or sub2 != sub or ln > MAX_RECORD_LEN:
            if n and (ln > MAX_RECORD_LEN or ((typ << 16) | sub2) not in PLAUSIBLE_KEYS):
                return prev, n - 1, prev_ts
            break
        end = pos + HEADER_LEN + ln
        if end + _LOOKAHEAD > blen and not (eof and end <= blen):
            break
        prev, prev_ts = pos, last_ts
        n += 1
        pos = end
        last_ts = ts
    return pos, n, last_ts


def decode_rows(
    stream: BinaryIO, *, project: str, collector: str, source_file: str, stats: DecodeStats
) -> Iterator[dict[str, Any]]:
    """Decode a decompressed MRT stream into rows (dicts keyed by ``schema.COLUMN_NAMES``).

    Rows share their list values and must be treated as read-only.
    """
    for rows in decode_records(
        stream, project=project, collector=collector, source_file=source_file, stats=stats
    ):
        yield from rows


def decode_records(
    stream: BinaryIO,
    *,
    project: str,
    collector: str,
    source_file: str,
    stats: DecodeStats,
    rib_hook: Callable[[Context], RibHook] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """The decode loop: yields the rows of each record that has some, in stream order.

    With ``rib_hook`` (called once with the decode context, returns the hook),
    TABLE_DUMP_V2 RIB_IPV4/IPV6 records (the bulk of a RIB) are not turned into dicts:
    the hook gets the raw record and must produce exactly the rows ``table_dump.rib_afi``
    would (the fast Avro encoder uses this). Since this is a generator, the consumer
    handles each yielded list before the loop goes on, so hook rows and yielded rows
    keep stream order. Framing, damage handling and stats are the same either way.
    """
    ctx = Context(project, collector, source_file, stats)
    hook = rib_hook(ctx) if rib_hook is not None else None
    hook_subtypes = table_dump.RIB_SUBTYPES if hook is not None else {}
    batch = cast(BatchRibHook, hook) if hasattr(hook, "batch") else None
    frame = cast(FramingRibHook, hook).frame if hasattr(hook, "frame") else _rib_frame
    deferred = False  # batch results not yet accounted
    reader = BlockReader(stream)
    rows_by_type = stats.rows_by_type
    for k in ("RIB", "ANNOUNCE", "WITHDRAW", "STATE"):
        rows_by_type.setdefault(k, 0)
    mrt_types = stats.mrt_types
    names: dict[tuple[int, int], str] = {}
    unpack = HEADER.unpack_from
    buf = b""
    pos = 0
    idx = 0
    last_ts: int | None = None
    while True:
        if pos + HEADER_LEN > len(buf):
            buf, pos = reader.fill(pos, HEADER_LEN)
            if pos + HEADER_LEN > len(buf):
                if pos < len(buf):
                    if batch is not None:
                        batch.sync()
                    _truncated(stats, reader, idx, reader.base + pos, len(buf) - pos, "header")
                    idx += 1
                break
        ts, typ, sub, ln = unpack(buf, pos)
        if ln > MAX_RECORD_LEN or ((typ << 16) | sub) not in PLAUSIBLE_KEYS:
            if deferred:
                assert batch is not None
                batch.sync()
                deferred = False
            if last_ts is None and idx == 0:
                raise NotMRTError(
                    f"not MRT: first record header is impossible (type {typ}, subtype {sub}, length {ln})"
                )
            buf, pos = _resync(stats, reader, pos, last_ts, f"impossible header (type {typ} len {ln})")
            if pos < 0:
                break
            continue
        need = HEADER_LEN + ln
        if pos + need + _LOOKAHEAD > len(buf):
            buf, pos = reader.fill(pos, need + _LOOKAHEAD)
            if pos + need > len(buf):
                if batch is not None:
                    batch.sync()
                _truncated(stats, reader, idx, reader.base + pos, len(buf) - pos, f"record of {need} bytes")
                idx += 1
                break
        if typ == T_TABLE_DUMP_V2 and sub in hook_subtypes:
            run_pos, run_idx = pos, idx
            if batch is not None:
                pos, n, run_ts = frame(buf, pos, sub, reader.eof)
                idx += n
                with_rows = nrows = 0
            else:
                assert hook is not None  # hook_subtypes is empty without one
                pos, idx, n, with_rows, nrows, run_ts = _rib_run(
                    hook, ctx, buf, pos, reader.base, idx, sub, reader.eof
                )
            if n:
                if batch is not None:
                    batch.batch(buf, run_pos, pos, reader.base + run_pos, run_idx, sub, n)
                    deferred = True
                run_name = names.get((typ, sub))
                if run_name is None:
                    run_name = names[(typ, sub)] = type_name(typ, sub)
                stats.records_read += n
                mrt_types[run_name] = mrt_types.get(run_name, 0) + n
                stats.records_with_rows += with_rows
                rows_by_type["RIB"] += nrows
                last_ts = run_ts
                continue
        if deferred:
            assert batch is not None
            batch.sync()
            deferred = False
        off = reader.base + pos
        name = names.get((typ, sub))
        if name is None:
            name = names[(typ, sub)] = type_name(typ, sub)
        handler: Handler | RibHook | None = _HANDLERS.get(typ)
        if typ == T_TABLE_DUMP_V2 and sub in hook_subtypes:
            handler = hook
        start = pos + HEADER_LEN
        end = pos + need
        ts_us = ts * 1000000
        if typ == T_BGP4MP_ET:
            if ln < 4:
                handler = None
            else:
                ts_us += int.from_bytes(buf[start : start + 4], "big")
                start += 4

        # Is the next header where it should be?
        nxt_ok = True
        if end + HEADER_LEN <= len(buf):
            _t2, typ2, sub2, ln2 = unpack(buf, end)
            nxt_ok = ln2 <= MAX_RECORD_LEN and ((typ2 << 16) | sub2) in PLAUSIBLE_KEYS

        err: str | None = None
        res: list[dict[str, Any]] | int | str
        if handler is None:
            res = f"unsupported_type:{typ}/{sub}" if ln >= 4 or typ != T_BGP4MP_ET else "malformed_record"
        elif (
            typ == T_TABLE_DUMP
            and (not nxt_ok or (reader.eof and end < len(buf) < end + HEADER_LEN))
            and _plus4_ok(buf, end, reader.eof)
        ):
            try:
                res = table_dump.table_dump(ctx, buf, start, end + 4, sub, ts_us, idx, off, True)
                need += 4
                end += 4
                nxt_ok = True
                ctx.note("td1_length_plus_4")
            except Exception:
                res, err = _decode_one(ctx, handler, buf, start, end, sub, ts_us, idx, off)
        else:
            res, err = _decode_one(ctx, handler, buf, start, end, sub, ts_us, idx, off)

        if not nxt_ok and err is not None:
            # The record is unreadable and so is what follows: its header is part of the damage.
            stats.error(f"{err}; next header impossible, resyncing from here")
            buf, pos = _resync(stats, reader, pos, last_ts, "damaged record")
            if pos < 0:
                break
            continue

        stats.records_read += 1
        mrt_types[name] = mrt_types.get(name, 0) + 1
        idx += 1
        last_ts = ts
        pos = end
        if type(res) is int:
            stats.records_with_rows += 1
            rows_by_type["RIB"] += res
        elif type(res) is list:
            stats.records_with_rows += 1
            if typ == T_TABLE_DUMP_V2:
                rows_by_type["RIB"] += len(res)
            else:
                for row in res:
                    rows_by_type[row["elem_type"]] += 1
            yield res
        else:
            stats.skip(res)  # type: ignore[arg-type]
            if err is not None:
                stats.error(err)
        if not nxt_ok:
            buf, pos = _resync(stats, reader, pos, last_ts, "impossible header after record")
            if pos < 0:
                break

    if batch is not None:
        batch.sync()
    if reader.error is not None:
        if stats.truncated_at is None:
            stats.truncated_at = reader.base + len(buf)
        stats.error(
            f"compressed stream ended early at decompressed offset {reader.base + len(buf)}: {reader.error}"
        )


def _plus4_ok(buf: bytes, end: int, eof: bool) -> bool:
    alt = end + 4
    if alt + HEADER_LEN <= len(buf):
        _ts, typ, sub, ln = HEADER.unpack_from(buf, alt)
        return plausible(typ, sub, ln)
    return eof and alt == len(buf)


def _truncated(stats: DecodeStats, reader: BlockReader, idx: int, off: int, have: int, what: str) -> None:
    stats.records_read += 1
    stats.skip("truncated_record")
    stats.truncated_at = reader.base + len(reader.buf)
    stats.error(f"record {idx} @ {off}: truncated_record: stream ends inside {what} ({have} bytes present)")


def _resync(
    stats: DecodeStats, reader: BlockReader, pos: int, last_ts: int | None, why: str
) -> tuple[bytes, int]:
    """Skip damaged bytes; returns (buf, pos) of the next header, pos -1 when nothing is left."""
    buf, start, found = find_resync(reader, pos, last_ts)
    first = reader.base + start
    if found is None:
        skipped = len(buf) - start
        stats.skip("bytes:resync_skipped", skipped)
        stats.error(f"bytes [{first}, {first + skipped}) skipped ({why}); no further record found")
        # Drain (and count) whatever is left beyond the scan limit.
        while not reader.eof:
            buf, _ = reader.fill(len(buf), 1 << 20)
            stats.skip("bytes:resync_skipped", len(buf))
        return buf, -1
    stats.skip("bytes:resync_skipped", found - start)
    stats.error(
        f"bytes [{first}, {first + found - start}) skipped ({why}); resynced at {reader.base + found}"
    )
    return buf, found
