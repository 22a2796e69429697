"""The row model's Avro container files straight into Arrow tables, with the C decoder ``_avrocols``.

The embedded warehouse inserts the converter's Avro files into DuckDB as Arrow tables of
``ARROW_SCHEMA``. A generic reader (polars) plus the casts to that schema costs more than
the MRT conversion itself (route-views.jinx RIB, 503,590 rows: ~1.3 s); the files all
have one known schema (``mrt.schema.avro_schema``), so ``_avrocols``
(backends/warehouse/_avrocols.c, optional, built by setuptools when a compiler is there)
decodes the blocks directly into Arrow buffers, which are wrapped here without a copy.

This module checks that the writer schema in the header is the row model's and the codec
one we can inflate (``unsupported``: else the caller keeps the generic reader), inflates
the blocks, hands runs of blocks of about ``batch_rows`` rows to the decoder, and names
the object, block number and file offset in errors. Off with ``RVCLOUD_NO_ACCEL=1`` (read
per call) or ``ACCEL = False``.
"""

from __future__ import annotations

import io
import json
import os
import types
import zlib
from collections.abc import Iterator
from typing import Any, Final

import pyarrow as pa

from rvcloud.backends.warehouse.avro_chunks import AvroContainerError, ContainerReader
from rvcloud.mrt.schema import COLUMN_NAMES, COLUMNS, Column, ColumnType, avro_schema

# ISA-L (in the server extra) inflates about twice as fast as zlib: jinx RIB, 114 MB of
# rows, 0.055 s against 0.12 s.
_inflate_lib: types.ModuleType
try:
    from isal import isal_zlib

    _inflate_lib = isal_zlib
except ImportError:  # pragma: no cover - isal is in the server extra
    _inflate_lib = zlib

_avrocols: types.ModuleType | None
try:
    from . import _avrocols as _built
except ImportError:  # pragma: no cover - built without a compiler
    _avrocols = None
else:
    _avrocols = _built

ACCEL = True

ARROW_TYPES: Final[dict[ColumnType, pa.DataType]] = {
    "timestamp": pa.timestamp("us"),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "int64_list": pa.list_(pa.int64()),
    "string_list": pa.list_(pa.string()),
}
# Arrow schema of a batch as inserted. Timestamps are naive UTC: DuckDB would convert a
# TIMESTAMPTZ with the session time zone.
ARROW_SCHEMA: Final = pa.schema([pa.field(c.name, ARROW_TYPES[c.type], c.nullable) for c in COLUMNS])

# Decompressed bytes of one block / of one decoder call. The decoder keeps string and list
# offsets in int32, so a call must stay well under 2 GiB; and a damaged (or hostile) block
# must not inflate without bound. The converter's blocks hold 10,000 rows (~2 MB).
MAX_BLOCK_BYTES: Final = 256 << 20
MAX_BATCH_BYTES: Final = 256 << 20

# The decoder's column spec: a type code per column, | 0x80 for the union ["null", T].
_CODES: Final[dict[ColumnType, int]] = {
    "timestamp": 0,
    "int64": 1,
    "int32": 2,
    "string": 3,
    "bool": 4,
    "int64_list": 5,
    "string_list": 6,
}
_SPEC: Final = bytes(
    _CODES[c.type] | (0x80 if c.nullable and not c.type.endswith("_list") else 0) for c in COLUMNS
)


def accel_enabled() -> bool:
    """Whether loads decode with the C decoder (built, and not switched off)."""
    return _avrocols is not None and ACCEL and not os.environ.get("RVCLOUD_NO_ACCEL")


def _norm(t: Any) -> Any:
    """An Avro type without what does not change the encoding (doc, default, names of aliases ...)."""
    if isinstance(t, list):
        return [_norm(x) for x in t]
    if isinstance(t, dict):
        n = {k: _norm(v) for k, v in t.items() if k in ("type", "items", "logicalType")}
        return n["type"] if set(n) == {"type"} else n
    return t


# Both tables have the same fields (only the record's name differs).
_FIELDS: Final = [(f["name"], _norm(f["type"])) for f in avro_schema("ribs")["fields"]]


def unsupported(meta: dict[str, bytes]) -> str | None:
    """Why the C decoder cannot read a container with this header metadata; ``None`` if it can."""
    codec = meta.get("avro.codec", b"null").decode("utf-8", "replace")
    if codec not in ("null", "deflate"):
        return f"codec {codec!r}"
    try:
        schema = json.loads(meta["avro.schema"])
    except (KeyError, ValueError):
        return "no readable writer schema"
    fields = schema.get("fields") if isinstance(schema, dict) else None
    if not isinstance(fields, list) or not all(isinstance(f, dict) for f in fields):
        return "writer schema is not a record"
    if [(f.get("name"), _norm(f.get("type"))) for f in fields] != _FIELDS:
        return "writer schema is not the row model's"
    return None


def _inflate(data: bytes, codec: str) -> bytes:
    if codec == "null":
        return data
    d = _inflate_lib.decompressobj(wbits=-15)  # Avro "deflate" is raw RFC 1951 data
    try:
        out: bytes = d.decompress(data, MAX_BLOCK_BYTES)
    except _inflate_lib.error as e:
        raise ValueError(f"bad deflate data ({e})") from e
    if d.unconsumed_tail:
        raise ValueError(f"block inflates to more than {MAX_BLOCK_BYTES} bytes")
    if not d.eof:
        raise ValueError("deflate data truncated")
    # Bytes after the end of the deflate data are ignored, as other readers do: fastavro
    # leaves three bytes of the zlib checksum there.
    return out


def _array(c: Column, n: int, parts: Any) -> pa.Array:
    """One column as an Arrow array over the decoder's buffers (no copy)."""
    nulls, validity, values, data, data2, items = parts
    typ = ARROW_TYPES[c.type]
    valid = None if validity is None else pa.py_buffer(validity)
    if c.type == "string":
        bufs = [valid, pa.py_buffer(values), pa.py_buffer(data)]
        return pa.Array.from_buffers(typ, n, bufs, null_count=nulls)
    if c.type == "int64_list":
        child = pa.Array.from_buffers(pa.int64(), items, [None, pa.py_buffer(data)], null_count=0)
        return pa.Array.from_buffers(typ, n, [None, pa.py_buffer(values)], null_count=0, children=[child])
    if c.type == "string_list":
        child_bufs = [None, pa.py_buffer(data), pa.py_buffer(data2)]
        child = pa.Array.from_buffers(pa.string(), items, child_bufs, null_count=0)
        return pa.Array.from_buffers(typ, n, [None, pa.py_buffer(values)], null_count=0, children=[child])
    return pa.Array.from_buffers(typ, n, [valid, pa.py_buffer(values)], null_count=nulls)


def decode_blocks(blocks: list[bytes], counts: list[int]) -> pa.Table:
    """Decompressed block data (``counts``: records in each) as one table of ``ARROW_SCHEMA``.

    Raises ``_avrocols.DecodeError`` (a ``ValueError``) on damaged data.
    """
    if _avrocols is None:
        raise RuntimeError("the C Avro decoder (_avrocols) is not built")
    cols = _avrocols.decode(blocks, counts, _SPEC, COLUMN_NAMES)
    n = sum(counts)
    return pa.Table.from_arrays(
        [_array(c, n, parts) for c, parts in zip(COLUMNS, cols, strict=True)], schema=ARROW_SCHEMA
    )


def iter_tables(reader: ContainerReader, batch_rows: int, source: str) -> Iterator[pa.Table]:
    """Tables of consecutive runs of blocks holding at most about ``batch_rows`` rows (a block
    larger than that on its own), as ``avro_chunks`` cuts them. The caller has checked the
    header (``unsupported``). Damage raises ``AvroContainerError`` naming ``source``, the
    block's number and its byte offset in the file."""
    codec = reader.meta.get("avro.codec", b"null").decode()
    blocks: list[bytes] = []
    counts: list[int] = []
    where: list[tuple[int, int]] = []  # (block number, file offset) of each block in `blocks`
    rows = size = 0

    def decode() -> pa.Table:
        try:
            return decode_blocks(blocks, counts)
        except ValueError as e:
            block, offset = getattr(e, "block", 0), getattr(e, "offset", 0)
            number, at = where[block] if 0 <= block < len(where) else where[0]
            column = getattr(e, "column", None)
            col = f", column {column!r}" if column else ""
            reason = getattr(e, "reason", str(e))
            raise AvroContainerError(
                f"{source}: Avro block {number} at byte {at}: byte {offset} of its decompressed data{col}: "
                f"{reason}"
            ) from e

    for number, (count, at, data) in enumerate(reader.blocks()):
        try:
            raw = _inflate(data, codec)
        except ValueError as e:
            raise AvroContainerError(f"{source}: Avro block {number} at byte {at}: {e}") from e
        if counts and (rows + count > batch_rows or size + len(raw) > MAX_BATCH_BYTES):
            yield decode()
            blocks, counts, where, rows, size = [], [], [], 0, 0
        blocks.append(raw)
        counts.append(count)
        where.append((number, at))
        rows += count
        size += len(raw)
    if counts:
        yield decode()


def container_table(container: bytes, source: str = "Avro container") -> pa.Table | None:
    """A whole container (e.g. a chunk from ``avro_chunks``) as one table; ``None`` when its
    header is not one the C decoder reads (``unsupported``)."""
    reader = ContainerReader(io.BytesIO(container))
    if unsupported(reader.meta) is not None:
        return None
    tables = list(iter_tables(reader, 1 << 62, source))
    if not tables:
        return ARROW_SCHEMA.empty_table()
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)
