"""Avro container chunking (embedded warehouse loads): rows kept in order, damage reported with offsets."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest

from rvcloud.backends.warehouse.avro_chunks import AvroContainerError, iter_container_chunks

SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "r",
        "fields": [
            {"name": "n", "type": "long"},
            {"name": "s", "type": ["null", "string"]},
            {"name": "l", "type": {"type": "array", "items": "long"}},
        ],
    }
)


def container(rows: list[dict[str, Any]], codec: str = "deflate") -> bytes:
    buf = io.BytesIO()
    # sync_interval in bytes: small, so the file holds many blocks of a few rows each.
    fastavro.writer(buf, SCHEMA, rows, codec=codec, sync_interval=200, metadata={"k" * 300: "v" * 300})
    return buf.getvalue()


ROWS = [{"n": i, "s": None if i % 3 else f"row {i}", "l": list(range(i % 5))} for i in range(2000)]


@pytest.mark.parametrize("codec", ["null", "deflate"])
def test_chunks_are_containers_holding_every_row_in_order(codec: str) -> None:
    data = container(ROWS, codec)
    chunks = list(iter_container_chunks(io.BytesIO(data), 150))
    assert len(chunks) > 10
    got: list[Any] = []
    for rows, chunk in chunks:
        part = list(fastavro.reader(io.BytesIO(chunk)))
        assert len(part) == rows
        assert rows <= 150 or len(chunks) == 1
        got += part
    assert got == ROWS


def test_one_chunk_when_the_limit_is_large() -> None:
    data = container(ROWS)
    chunks = list(iter_container_chunks(io.BytesIO(data), 10**9))
    assert [r for r, _ in chunks] == [len(ROWS)]
    assert chunks[0][1] == data  # header and blocks copied byte for byte


def test_empty_container_yields_nothing() -> None:
    assert list(iter_container_chunks(io.BytesIO(container([])), 10)) == []


def test_damage_is_reported_with_its_byte_offset() -> None:
    data = bytearray(container(ROWS, "null"))
    with pytest.raises(AvroContainerError, match="bad magic at byte 0"):
        list(iter_container_chunks(io.BytesIO(b"PAR1" + bytes(data[4:])), 100))
    with pytest.raises(AvroContainerError, match=r"truncated in block \w+ at byte \d+"):
        list(iter_container_chunks(io.BytesIO(bytes(data[:-30])), 100))
    # Flip one byte of the last sync marker: the mismatch is found where it is.
    data[-1] ^= 0xFF
    with pytest.raises(AvroContainerError, match=f"sync marker mismatch at byte {len(data) - 16}"):
        list(iter_container_chunks(io.BytesIO(bytes(data)), 100))
