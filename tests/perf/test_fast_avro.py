"""The fast Avro path is the reference path: same rows, same order, same stats.

Every shared MRT file and some writer-made ones (clean, truncated, damaged) are
converted with ``convert_stream`` (fast encoder, sequential and split across worker
processes); the Avro is read back with fastavro and compared field by field with
``decode_rows`` (up to ``ROW_LIMIT`` rows per table unless ``RVCLOUD_PERF_FULL=1``),
the row counts and the conversion's stats with the decoder's.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import fastavro
import pytest

from rvcloud.converter_worker import parallel
from rvcloud.converter_worker.convert import ConvertResult, convert_stream
from rvcloud.mrt import DecodeStats, NotMRTError, decode_rows, framing, open_decompressed
from rvcloud.mrt.schema import COLUMN_NAMES, avro_schema, table_for
from rvcloud.mrt.synth import write_synthetic_rib, write_synthetic_updates

# Rows read back per table and file; RVCLOUD_PERF_FULL=1 reads back every row (jinx,
# the 2015 et-header updates and the 2000 rrc00 bview have more, and reading them all
# back with fastavro takes most of a minute). Conversion and stats are always whole.
ROW_LIMIT = 10**12 if os.environ.get("RVCLOUD_PERF_FULL") else 150_000
SHARED = Path(os.environ.get("RVCLOUD_SHARED_MRT", Path(__file__).parents[3] / "shared" / "data" / "mrt"))


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)


def _micros(v: dt.datetime | None) -> int | None:
    return None if v is None else (v - _EPOCH) // _US


def _shared_files() -> list[Path]:
    return sorted(p for p in SHARED.iterdir() if p.is_file() and p.name != "MANIFEST.md")


def _fast(data: bytes, workers: int) -> tuple[dict[str, bytes], ConvertResult]:
    outs: dict[str, io.BytesIO] = {}

    def open_output(table: str) -> io.BytesIO:
        outs[table] = io.BytesIO()
        return outs[table]

    res = convert_stream(
        io.BytesIO(data), open_output, project="routeviews", collector="rv", source_file="f", workers=workers
    )
    return {t: b.getvalue() for t, b in outs.items()}, res


def _read(avro: bytes, table: str) -> Iterator[dict[str, Any]]:
    reader = fastavro.reader(io.BytesIO(avro))
    assert json.loads(reader.metadata["avro.schema"]) == avro_schema(table)
    assert reader.codec == "deflate"
    return cast(Iterator[dict[str, Any]], iter(reader))


def _check(data: bytes, *, workers: tuple[int, ...] = (1, 2)) -> None:
    """Fast conversion(s) of ``data`` == ``decode_rows``, row by row, field by field, and stats."""
    for w in workers:
        try:
            stream, _enc = open_decompressed(io.BytesIO(data))
            want_stats = DecodeStats()
            want = decode_rows(
                stream, project="routeviews", collector="rv", source_file="f", stats=want_stats
            )
            first = next(want, None)
        except NotMRTError:
            with pytest.raises(NotMRTError):
                _fast(data, w)
            return
        outs, res = _fast(data, w)
        readers = {t: _read(b, t) for t, b in outs.items()}
        counts: dict[str, int] = {}
        for row in itertools.chain([first] if first is not None else [], want):
            table = table_for(row["elem_type"])
            i = counts[table] = counts.get(table, 0) + 1
            if i > ROW_LIMIT:
                continue  # counted (and in the stats), not read back
            got = next(readers[table])
            got["timestamp"] = _micros(got["timestamp"])
            got["originated_time"] = _micros(got["originated_time"])
            if got != row:
                diff = {k: (got[k], row[k]) for k in COLUMN_NAMES if got[k] != row[k]}
                pytest.fail(f"{table} row {i - 1} differs (workers={w}): {diff}")
        for table, rd in readers.items():
            if counts.get(table, 0) <= ROW_LIMIT:
                assert next(rd, None) is None, f"extra rows in {table}"
        assert res.rows_by_table == counts
        assert res.stats == want_stats, f"stats differ with workers={w}"


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small read blocks and no size threshold: many runs, each sent to the worker pool."""
    monkeypatch.setattr(framing, "BLOCK_SIZE", 1 << 16)
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)


@pytest.mark.parametrize("path", _shared_files(), ids=lambda p: p.name)
def test_shared_file(path: Path, small_blocks: None) -> None:
    # workers=2 with small blocks covers both ways RIB runs are encoded (worker pool,
    # and in-process around damage and missing peer tables); other records take the
    # same path whatever the worker count (the sequential run: the synthetic tests).
    _check(path.read_bytes(), workers=(2,))


def test_schema_is_the_declared_one() -> None:
    outs, _res = _fast((SHARED / "mrtparse__quagga_rib").read_bytes(), 1)
    reader = fastavro.reader(io.BytesIO(outs["ribs"]))  # with logical types, as BigQuery reads it
    assert json.loads(reader.metadata["avro.schema"]) == avro_schema("ribs")
    first = next(iter(reader))
    assert isinstance(first, dict) and isinstance(first["timestamp"], dt.datetime)


@pytest.fixture(scope="module")
def synth_rib(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    p = tmp_path_factory.mktemp("synth") / "rib.bz2"
    write_synthetic_rib(p, n_v4=30_000, n_v6=3_000, peers=12, seed=7)
    return p.read_bytes()


def test_synthetic_rib(synth_rib: bytes, small_blocks: None) -> None:
    _check(synth_rib)


def test_synthetic_rib_default_blocks(synth_rib: bytes) -> None:
    # Real block size, threshold off: the split as it runs on big files.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
        _check(synth_rib, workers=(2,))


def test_synthetic_updates(tmp_path: Path, small_blocks: None) -> None:
    p = tmp_path / "upd.bz2"
    write_synthetic_updates(p, target_compressed_bytes=150_000, seed=3)
    _check(p.read_bytes())


def _decompressed(data: bytes) -> bytes:
    stream, _ = open_decompressed(io.BytesIO(data))
    return stream.read()


def test_truncated_and_damaged_rib(synth_rib: bytes, small_blocks: None) -> None:
    raw = _decompressed(synth_rib)
    # Cut inside a record: every complete record kept, truncated_at reported.
    _check(raw[: len(raw) * 2 // 3 + 5])
    # Cut compressed stream.
    _check(synth_rib[: len(synth_rib) // 2])
    # Random byte damage: framing resyncs, damaged records skipped, same everywhere.
    rng = random.Random(5)
    damaged = bytearray(raw)
    for _ in range(40):
        damaged[rng.randrange(100, len(damaged))] = rng.randrange(256)
    _check(bytes(damaged))
