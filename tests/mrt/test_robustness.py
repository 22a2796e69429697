"""Damaged, truncated and non-MRT input: only NotMRTError may escape, and only for whole-file problems."""

from __future__ import annotations

import bz2
import gzip
import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rvcloud.mrt import DecodeStats, NotMRTError, decode_rows, mrt_kind, open_decompressed
from rvcloud.mrt.schema import COLUMN_NAMES

SMALL = "mrtparse__quagga_bgp"  # 67 records, uncompressed


def _run(data: bytes) -> tuple[list[dict[str, Any]], DecodeStats]:
    stats = DecodeStats()
    rows = list(decode_rows(io.BytesIO(data), project="p", collector="c", source_file="f", stats=stats))
    assert stats.invariant_ok(), stats.to_dict()
    return rows, stats


def _small(shared_mrt: Path) -> bytes:
    return (shared_mrt / SMALL).read_bytes()


def test_rows_have_exactly_the_schema_columns(shared_mrt: Path) -> None:
    rows, _ = _run(_small(shared_mrt))
    assert rows
    assert all(tuple(r) == COLUMN_NAMES for r in rows)


@pytest.mark.parametrize(
    "data",
    [b"hello, this is not an MRT file at all\n" * 10, b"<html><body>404</body></html>", bytes(range(256))],
)
def test_not_mrt_raises(data: bytes) -> None:
    with pytest.raises(NotMRTError):
        _run(data)


def test_not_mrt_is_value_error() -> None:
    assert issubclass(NotMRTError, ValueError)


def test_empty_input() -> None:
    rows, stats = _run(b"")
    assert rows == [] and stats.records_read == 0 and mrt_kind(stats) == ""


@given(garbage=st.binary(min_size=1, max_size=3000))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_garbage_after_valid_records_never_raises(shared_mrt: Path, garbage: bytes) -> None:
    data = _small(shared_mrt)
    clean, _ = _run(data)
    rows, stats = _run(data + garbage)
    # Every clean row is still there, in order, at the start.
    assert rows[: len(clean)] == clean
    assert stats.records_read >= 67


@given(
    flips=st.lists(st.tuples(st.integers(min_value=12, max_value=5628), st.integers(1, 255)), max_size=8),
    cut=st.integers(min_value=12, max_value=5629),
)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_corrupted_bytes_never_raise(shared_mrt: Path, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(_small(shared_mrt))
    for i, x in flips:
        data[i] ^= x
    rows, stats = _run(bytes(data[:cut]))
    assert all(tuple(r) == COLUMN_NAMES for r in rows)
    assert len(stats.first_errors) <= 20


def test_truncated_uncompressed_record(shared_mrt: Path) -> None:
    data = _small(shared_mrt)
    rows, stats = _run(data[:-10])
    full, _ = _run(data)
    assert stats.truncated_at == len(data) - 10
    assert stats.skipped_by_reason["truncated_record"] == 1
    assert len(rows) <= len(full)


# bzip2 level 1 = 100 kB blocks, so half the stream still holds complete blocks.
@pytest.mark.parametrize("compress", [gzip.compress, lambda d: bz2.compress(d, 1)], ids=["gzip", "bzip2"])
def test_truncated_compressed_stream(shared_mrt: Path, compress: Any) -> None:
    raw = (shared_mrt / "bgpdump__updates.20100722.2015.gz").read_bytes()
    data = gzip.decompress(raw)
    packed = compress(data)
    stats = DecodeStats()
    stream, _ = open_decompressed(io.BytesIO(packed[: len(packed) // 2]))
    rows = list(decode_rows(stream, project="p", collector="c", source_file="f", stats=stats))
    assert rows
    assert stats.truncated_at is not None and 0 < stats.truncated_at < len(data)
    assert stats.invariant_ok()
    # Everything decoded is a prefix of the full decode.
    full, _ = _run(data)
    assert rows == full[: len(rows)]


def test_impossible_header_mid_file_resyncs(shared_mrt: Path) -> None:
    data = _small(shared_mrt)
    full, _ = _run(data)
    # Overwrite the type of the 10th record with nonsense.
    pos = 0
    for _ in range(10):
        pos += 12 + int.from_bytes(data[pos + 8 : pos + 12], "big")
    damaged = data[:pos] + b"\xde\xad\xbe\xef\x7f\x7f\x00\x00\x00\x10" + data[pos + 10 :]
    rows, stats = _run(damaged)
    assert stats.skipped_by_reason["bytes:resync_skipped"] > 0
    assert stats.records_read < 67
    assert [r["record_offset"] for r in rows][:5] == [r["record_offset"] for r in full][:5]
    assert any("resynced" in e for e in stats.first_errors)


def test_zero_padding_is_skipped_as_bytes(shared_mrt: Path) -> None:
    data = _small(shared_mrt)
    rows, stats = _run(data + bytes(4096))
    full, _ = _run(data)
    assert rows == full
    assert stats.records_read == 67
    assert stats.skipped_by_reason["bytes:resync_skipped"] == 4096


def test_corrupt_gzip_data_does_not_raise(shared_mrt: Path) -> None:
    packed = bytearray(gzip.compress(_small(shared_mrt) * 20))
    for i in range(len(packed) // 2, len(packed) // 2 + 64):
        packed[i] ^= 0x5A
    stats = DecodeStats()
    stream, _ = open_decompressed(io.BytesIO(bytes(packed)))
    rows = list(decode_rows(stream, project="p", collector="c", source_file="f", stats=stats))
    assert stats.invariant_ok()
    assert stats.truncated_at is not None
    assert any("ended early" in e for e in stats.first_errors)
    assert len(rows) < 20 * 54
