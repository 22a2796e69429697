"""MRT → rows → Avro/NDJSON: the conversion shared by the worker and `rvcloud convert`.

The input is streamed (decompressed on the fly, decoded record by record) and the
output is written incrementally, one container block at a time, so memory does not
grow with the file. Rows are routed to the ``ribs`` or ``updates`` table by element
type; an output for a table is opened only when its first row arrives.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO

from rvcloud.metadata.archive_path import archive_path_from_local, parse_archive_path
from rvcloud.mrt import DecodeStats, decode_records, mrt_kind, open_decompressed_prefetch
from rvcloud.mrt.context import Context
from rvcloud.mrt.decoder import RibHook
from rvcloud.mrt.schema import TABLES, table_for

from .avro_fast import LAYOUT_OK, AvroContainerWriter, encode_row
from .parallel import ParallelRibHook

OutputOpener = Callable[[str], IO[bytes]]  # table name -> writable binary stream


@dataclass(slots=True)
class ConvertResult:
    encoding: str
    mrt_type: str
    stats: DecodeStats
    rows_by_table: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        s = self.stats.to_dict()
        s.update(encoding=self.encoding, mrt_type=self.mrt_type, rows_by_table=dict(self.rows_by_table))
        return s


def _json_default(v: object) -> object:
    raise TypeError(f"not JSON serialisable: {v!r}")


def _iso_micros(us: int) -> str:
    t = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=us)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _NdjsonSink:
    """One row per line; timestamps as RFC 3339 UTC with microseconds (BigQuery reads these)."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def write(self, row: dict[str, Any]) -> None:
        r = dict(row)
        r["timestamp"] = _iso_micros(r["timestamp"])
        if r["originated_time"] is not None:
            r["originated_time"] = _iso_micros(r["originated_time"])
        self._out.write(json.dumps(r, separators=(",", ":"), default=_json_default).encode() + b"\n")

    def close(self) -> None:
        self._out.flush()


def convert_stream(
    raw: BinaryIO,
    open_output: OutputOpener,
    *,
    fmt: str = "avro",
    project: str,
    collector: str,
    source_file: str,
    on_progress: Callable[[DecodeStats], None] | None = None,
    workers: int | None = None,
) -> ConvertResult:
    """Decode the (compressed) MRT stream ``raw`` and write each table's rows.

    Raises ``NotMRTError`` when the data is not MRT at all; every other problem is
    counted in the returned stats (see the decoder's damage policy). ``workers``: processes
    for the RIB record split (default one per CPU; 1 encodes everything in this process).
    """
    if fmt not in ("avro", "ndjson"):
        raise ValueError(f"unknown format {fmt!r} (avro or ndjson)")
    stream, encoding = open_decompressed_prefetch(raw)
    stats = DecodeStats()
    counts: dict[str, int] = {}
    try:
        if fmt == "avro":
            _to_avro(
                stream, open_output, counts, project, collector, source_file, stats, on_progress, workers
            )
        else:
            _to_ndjson(stream, open_output, counts, project, collector, source_file, stats, on_progress)
    finally:
        stream.close()
    return ConvertResult(encoding=encoding, mrt_type=mrt_kind(stats), stats=stats, rows_by_table=counts)


def _to_avro(
    stream: BinaryIO,
    open_output: OutputOpener,
    counts: dict[str, int],
    project: str,
    collector: str,
    source_file: str,
    stats: DecodeStats,
    on_progress: Callable[[DecodeStats], None] | None,
    workers: int | None,
) -> None:
    """Avro via ``avro_fast``: RIB records as bytes through the hook, other rows encoded from dicts."""
    writers: dict[str, AvroContainerWriter] = {}
    rows_by_type = stats.rows_by_type

    with ThreadPoolExecutor(1, thread_name_prefix="avro-deflate") as pool:

        def writer(table: str) -> AvroContainerWriter:
            w = writers.get(table)
            if w is None:
                w = writers[table] = AvroContainerWriter(open_output(table), table, pool)
            return w

        hooks: list[ParallelRibHook] = []

        def rib_hook(ctx: Context) -> RibHook:
            hooks.append(ParallelRibHook(ctx, lambda: writer("ribs"), workers))
            return hooks[0]

        next_progress = 100_000
        try:
            for rows in decode_records(
                stream,
                project=project,
                collector=collector,
                source_file=source_file,
                stats=stats,
                rib_hook=rib_hook if LAYOUT_OK else None,
            ):
                for row in rows:
                    writer(table_for(row["elem_type"])).add(encode_row(row))
                if on_progress is not None and sum(rows_by_type.values()) >= next_progress:
                    next_progress += 100_000
                    on_progress(stats)
        finally:
            for h in hooks:
                h.close()
        for w in writers.values():
            w.close()
    # Every RIB row is in ribs, every other element type in updates.
    if rows_by_type.get("RIB"):
        counts["ribs"] = rows_by_type["RIB"]
    n_upd = sum(v for k, v in rows_by_type.items() if k != "RIB")
    if n_upd:
        counts["updates"] = n_upd


def _to_ndjson(
    stream: BinaryIO,
    open_output: OutputOpener,
    counts: dict[str, int],
    project: str,
    collector: str,
    source_file: str,
    stats: DecodeStats,
    on_progress: Callable[[DecodeStats], None] | None,
) -> None:
    sinks: dict[str, _NdjsonSink] = {}
    n = 0
    for rows in decode_records(
        stream, project=project, collector=collector, source_file=source_file, stats=stats
    ):
        for row in rows:
            table = table_for(row["elem_type"])
            sink = sinks.get(table)
            if sink is None:
                sink = sinks[table] = _NdjsonSink(open_output(table))
            sink.write(row)
            counts[table] = counts.get(table, 0) + 1
            n += 1
            if on_progress is not None and n % 100_000 == 0:
                on_progress(stats)
    for sink in sinks.values():
        sink.close()


def convert_local_file(
    path: str, out_dir: str, fmt: str = "avro", project: str = "routeviews", archive_path: str | None = None
) -> dict[str, Any]:
    """`rvcloud convert`: write ``<out_dir>/<basename>.<table>.<avro|ndjson>`` files.

    Returns a JSON-serialisable summary (records read, rows by element type, skipped
    records by reason, outputs written).
    """
    if archive_path is None:
        try:
            archive_path = archive_path_from_local(path)
        except ValueError:
            archive_path = os.path.basename(path)
    info = parse_archive_path(project, archive_path)
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, os.path.basename(path))
    ext = "avro" if fmt == "avro" else "ndjson"
    opened: dict[str, IO[bytes]] = {}

    def open_output(table: str) -> IO[bytes]:
        assert table in TABLES
        f = open(f"{base}.{table}.{ext}", "wb")  # noqa: SIM115 - closed below
        opened[table] = f
        return f

    try:
        with open(path, "rb") as raw:
            result = convert_stream(
                raw,
                open_output,
                fmt=fmt,
                project=project,
                collector=info.collector or "unknown",
                source_file=archive_path,
            )
    finally:
        for f in opened.values():
            f.close()
    summary = {"file": path, "archive_path": archive_path, **result.summary()}
    summary["outputs"] = {t: f.name for t, f in opened.items()}
    return summary
