"""Showing file status records to people (aligned text) and to scripts (JSON)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rvcloud.v1 import gateway_pb2


def status_name(record: gateway_pb2.FileStatus) -> str:
    """``DONE`` rather than ``STATUS_DONE``."""
    return gateway_pb2.Status.Name(record.status).removeprefix("STATUS_")


def record_to_dict(record: gateway_pb2.FileStatus) -> dict[str, Any]:
    """The record as plain JSON values: ``"status": "DONE"``, sizes and counts as numbers.

    Not protobuf's JSON mapping, which writes int64 as strings and enums with their
    ``STATUS_`` prefix: scripts compare and add these values. Fields at their default
    value are kept so that a script sees the same keys for every record.
    """
    out: dict[str, Any] = {}
    for field in record.DESCRIPTOR.fields:
        value = getattr(record, field.name)
        if field.name == "status":
            value = status_name(record)
        elif hasattr(value, "items"):  # map fields
            value = dict(sorted(value.items()))
        elif not isinstance(value, str | bytes | int | float | bool):  # repeated fields
            value = list(value)
        out[field.name] = value
    return out


def iso_utc(seconds: float) -> str:
    """Unix seconds as ``2024-01-01T00:00:00Z`` (milliseconds only when present)."""
    t = dt.datetime.fromtimestamp(seconds, dt.UTC)
    text = t.isoformat(timespec="milliseconds" if t.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def total_rows(record: gateway_pb2.FileStatus) -> int:
    return sum(record.rows_by_type.values())


def counts(mapping: dict[str, int] | Any) -> str:
    """``RIB 503,590, STATE 2`` from a name → count map, largest first."""
    items = sorted(dict(mapping).items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{k} {v:,}" for k, v in items)


def rows_summary(record: gateway_pb2.FileStatus) -> str:
    """``503,590 rows (RIB 503,590)``."""
    text = f"{total_rows(record):,} rows"
    return f"{text} ({counts(record.rows_by_type)})" if record.rows_by_type else text


def describe(record: gateway_pb2.FileStatus) -> list[tuple[str, str]]:
    """Every field of the record that is set, as (label, value) lines in a fixed order."""
    r = record
    lines: list[tuple[str, str]] = [("file", r.filename), ("project", r.project), ("status", status_name(r))]
    optional: list[tuple[str, object, str]] = [
        ("stage", r.stage, r.stage),
        ("collector", r.collector, r.collector),
        ("mrt type", r.mrt_type, r.mrt_type),
        ("content type", r.content_type, r.content_type),
        ("encoding", r.content_encoding, r.content_encoding),
        ("size", r.size, f"{human_size(r.size)} ({r.size:,} bytes)"),
        ("sha256", r.sha256, r.sha256),
        ("file time", r.file_time, iso_utc(r.file_time)),
        ("created", r.created_at, iso_utc(r.created_at)),
        ("updated", r.updated_at, iso_utc(r.updated_at)),
        ("bytes received", r.bytes_received, f"{r.bytes_received:,}"),
        ("raw uri", r.raw_uri, r.raw_uri),
        ("records read", r.records_read, f"{r.records_read:,}"),
        ("rows", r.rows_by_type, rows_summary(r)),
        ("skipped", r.skipped_by_reason, counts(r.skipped_by_reason)),
        ("load id", r.load_id, r.load_id),
        ("error", r.error, r.error),
        ("attempts", r.attempts, str(r.attempts)),
    ]
    lines.extend((label, text) for label, value, text in optional if value)
    # Lists get one line per item so that long URIs and messages stay readable.
    for label, values in (
        ("avro uri", r.avro_uris),
        ("table", r.warehouse_tables),
        ("first error", r.first_errors),
    ):
        lines.extend((label, v) for v in values)
    return lines


def format_table(rows: list[list[str]], *, right: frozenset[int] = frozenset()) -> str:
    """Columns padded to their widest cell; columns listed in ``right`` are right-aligned."""
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)
