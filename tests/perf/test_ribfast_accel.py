"""The C accelerator (``converter_worker/_ribfast.c``) changes nothing but the speed.

Every shared MRT file, the synthetic RIB and damaged/truncated variants are converted
with the accelerator and without it (``avro_fast.ACCEL``; ``RVCLOUD_NO_ACCEL=1`` does the
same from the environment): the Avro rows are read back with fastavro and compared field
by field, every row (plus the raw row bytes of every block), and the conversions' stats
(counters, notes, skips, errors, truncation) must be equal.
``tests/perf/test_fast_avro.py`` compares the same conversion (accelerated when built)
with the decoder's rows.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import fastavro
import pytest

from rvcloud.converter_worker import avro_fast, parallel
from rvcloud.converter_worker.convert import convert_stream
from rvcloud.mrt import NotMRTError, framing, open_decompressed
from rvcloud.mrt.nlri import prefix_text
from rvcloud.mrt.synth import write_synthetic_rib
from tests.conftest import load_manifest, shared_mrt_dir

JINX = "libbgpstream__routeviews.route-views.jinx.ribs.1401487200.bz2"

pytestmark = pytest.mark.skipif(avro_fast._ribfast is None, reason="C accelerator not built")


def _shared_ribs() -> list[Path]:
    """The shared files with TABLE_DUMP_V2 RIB records: the only ones the accelerator
    touches (other record types never reach the RIB hook), so the only ones compared."""
    d = shared_mrt_dir()
    if not d.is_dir():
        return []
    return sorted(d / e.name for e in load_manifest() if "TABLE_DUMP_V2/RIB" in e.types)


# The pure-Python conversion of each shared RIB, and the attribute blobs it encoded,
# computed once for the comparison and the attribute-encoder test.
_SLOW: dict[Path, tuple[tuple[dict[str, bytes], dict[str, Any]] | None, set[tuple[bytes, bool]]]] = {}


def _slow(path: Path) -> tuple[tuple[dict[str, bytes], dict[str, Any]] | None, set[tuple[bytes, bool]]]:
    if path not in _SLOW:
        seen: set[tuple[bytes, bool]] = set()
        real = avro_fast.encode_rib_attrs

        def spy(raw: bytes, v4: bool) -> bytes | None:
            seen.add((raw, v4))
            return real(raw, v4)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(avro_fast, "encode_rib_attrs", spy)
            _SLOW[path] = (_convert(path.read_bytes(), False, 1), seen)
    return _SLOW[path]


def _convert(data: bytes, accel: bool, workers: int) -> tuple[dict[str, bytes], dict[str, Any]] | None:
    outs: dict[str, io.BytesIO] = {}

    def open_output(table: str) -> io.BytesIO:
        outs[table] = io.BytesIO()
        return outs[table]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(avro_fast, "ACCEL", accel)
        assert avro_fast.accel_enabled() == accel
        try:
            res = convert_stream(
                io.BytesIO(data),
                open_output,
                project="routeviews",
                collector="rv",
                source_file="f",
                workers=workers,
            )
        except NotMRTError:
            return None
    return {t: b.getvalue() for t, b in outs.items()}, res.summary()


def _row_bytes(avro: bytes) -> bytes:
    """The concatenated (inflated) row data of every block of an Avro container file."""
    reader = fastavro.block_reader(io.BytesIO(avro))
    # fastavro hands blocks over inflated (``bytes_`` holds the block's row data).
    return b"".join(b.bytes_.getvalue() for b in reader)


def _compare(
    data: bytes,
    workers: int = 1,
    slow: tuple[dict[str, bytes], dict[str, Any]] | bool | None = False,
) -> None:
    """Accelerated against pure Python (``slow``: the latter's result, if already known)."""
    fast = _convert(data, True, workers)
    if slow is False:
        slow = _convert(data, False, workers)
    assert slow is not True
    if fast is None or slow is None:
        assert fast is None and slow is None
        return
    (f_out, f_sum), (s_out, s_sum) = fast, slow
    assert f_sum == s_sum
    assert f_out.keys() == s_out.keys()
    for table in f_out:
        f_bytes = _row_bytes(f_out[table])
        if f_bytes == _row_bytes(s_out[table]):
            # Byte-identical rows under one schema: every field of every row is equal.
            n = sum(1 for _ in fastavro.reader(io.BytesIO(f_out[table])))
            assert n == f_sum["rows_by_table"][table]
            continue
        # They differ: name the first row and the fields that differ.
        f_rows = fastavro.reader(io.BytesIO(f_out[table]))
        s_rows = fastavro.reader(io.BytesIO(s_out[table]))
        n = 0
        for a, b in zip(f_rows, s_rows, strict=True):
            if a != b:
                diff = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
                pytest.fail(f"{table} row {n} differs: {diff}")
            n += 1
        pytest.fail(f"{table}: row bytes differ, rows equal ({n} rows): the Avro framing differs")


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small read blocks, no size threshold: many runs, through the worker pool too."""
    monkeypatch.setattr(framing, "BLOCK_SIZE", 1 << 16)
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)


def test_every_shared_rib_is_compared() -> None:
    if shared_mrt_dir().is_dir():
        assert len(_shared_ribs()) >= 8
        assert shared_mrt_dir() / JINX in _shared_ribs()


@pytest.mark.parametrize("path", _shared_ribs(), ids=lambda p: p.name)
def test_shared_file(path: Path) -> None:
    _compare(path.read_bytes(), workers=1, slow=_slow(path)[0])


@pytest.mark.parametrize(
    "name",
    [
        "pyasn__rib6.20151101.0600_firstMB.bz2",
        "pyasn__rib.20140523.0600_firstMB.bz2",
    ],
)
def test_shared_rib_split(name: str, small_blocks: None) -> None:
    path = shared_mrt_dir() / name
    if not path.is_file():
        pytest.skip(f"{path} missing")
    _compare(path.read_bytes(), workers=2)


@pytest.fixture(scope="module")
def synth_rib(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    p = tmp_path_factory.mktemp("synth") / "rib.bz2"
    write_synthetic_rib(p, n_v4=30_000, n_v6=3_000, peers=12, seed=1)
    return p.read_bytes()


def test_synthetic_rib(synth_rib: bytes) -> None:
    _compare(synth_rib, workers=1)


def test_synthetic_rib_split(synth_rib: bytes, small_blocks: None) -> None:
    _compare(synth_rib, workers=2)


def _decompressed(data: bytes) -> bytes:
    """What decompresses of ``data`` (the pyasn ``*_firstMB`` streams are cut)."""
    stream, _ = open_decompressed(io.BytesIO(data))
    out = bytearray()
    try:
        while chunk := stream.read1(1 << 16):
            out += chunk
    except EOFError:
        pass
    return bytes(out)


def test_small_attribute_cache(synth_rib: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    # The cache is cleared when full: misses (and notes) recur, the same way both ways.
    monkeypatch.setattr(avro_fast.RibFastPath, "cache_limit", 50)
    _compare(synth_rib, workers=1)


@pytest.mark.parametrize("seed", range(3))
def test_damaged_ribs(seed: int, synth_rib: bytes) -> None:
    rng = random.Random(seed)
    sources = [synth_rib]
    for name in (
        "pyasn__rib6.20151101.0600_firstMB.bz2",
        "mrtparse__quagga_rib",
        "mrtparse__bird6-mrtdump_rib",
    ):
        p = shared_mrt_dir() / name
        if p.is_file():
            sources.append(p.read_bytes())
    for src in sources:
        raw = _decompressed(src)
        # cut anywhere (inside headers, prefixes, entries, attribute blobs)
        _compare(raw[: rng.randrange(len(raw))])
        # random byte damage, dense enough to hit prefix lengths, counts, peer indexes
        damaged = bytearray(raw[:400_000])
        for _ in range(rng.choice((5, 50, 500))):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        _compare(bytes(damaged))
        # cut compressed stream
        _compare(src[: rng.randrange(1, len(src))])


def test_prefix_text_matches_python() -> None:
    _ribfast = avro_fast._ribfast
    assert _ribfast is not None

    rng = random.Random(3)
    cases: list[tuple[bool, int, bytes]] = []
    for _ in range(20_000):
        v4 = rng.random() < 0.3
        plen = rng.randrange(33 if v4 else 129)
        nb = (plen + 7) >> 3
        # many zero hextets so that "::" placement (first longest run) is exercised
        raw = bytes(rng.choice((0, 0, 0, rng.randrange(256))) for _ in range(nb))
        cases.append((v4, plen, raw))
    cases += [(False, 128, bytes(16)), (False, 128, bytes(10) + b"\xff\xff\x01\x02\x03\x04")]
    cases += [(False, 128, bytes([0, 1] + [0] * 4 + [0, 1] + [0] * 4 + [0, 1, 0, 1]))]
    for v4, plen, raw in cases:
        assert _ribfast.prefix_text(v4, plen, raw) == prefix_text(1 if v4 else 2, plen, raw), (v4, plen, raw)


def _attribute_blobs() -> list[tuple[bytes, bool]]:
    """Every distinct RIB attribute blob the Python path encodes (cache misses), all shared
    files and the synthetic RIB, with the IPv4/IPv6 flag it was encoded for."""
    seen: dict[tuple[bytes, bool], None] = {}
    for p in _shared_ribs():
        seen.update(dict.fromkeys(_slow(p)[1]))
    return list(seen)


def test_c_attribute_encoder_matches_python(synth_rib: bytes) -> None:
    _ribfast = avro_fast._ribfast
    assert _ribfast is not None

    blobs = _attribute_blobs()
    seen = set(blobs)
    real = avro_fast.encode_rib_attrs
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(avro_fast, "encode_rib_attrs", lambda raw, v4: seen.add((raw, v4)) or real(raw, v4))
        _convert(synth_rib, False, 1)
    blobs = list(seen)
    assert len(blobs) > 100_000
    handled = 0
    for raw, v4 in blobs:
        got = _ribfast.encode_rib_attrs(raw, v4)
        if got is not None:
            handled += 1
            assert got == real(raw, v4), (raw.hex(), v4)
    # the C encoder takes (nearly) every blob Python's fast encoder takes
    assert handled >= 0.99 * sum(real(raw, v4) is not None for raw, v4 in blobs)
    # damaged blobs: cut, flipped bytes, changed lengths/types/flags
    rng = random.Random(11)
    for raw, v4 in rng.sample(blobs, 20_000):
        b = bytearray(raw)
        op = rng.randrange(3)
        if op == 0 and b:
            b = b[: rng.randrange(len(b))]
        elif op == 1 and b:
            for _ in range(rng.randrange(1, 4)):
                b[rng.randrange(len(b))] = rng.choice((0, 1, 2, 3, 4, 14, 16, 32, 255, rng.randrange(256)))
        else:
            b += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 12)))
        got = _ribfast.encode_rib_attrs(bytes(b), v4)
        if got is not None:
            assert got == real(bytes(b), v4), (bytes(b).hex(), v4)


def test_rib_frame_matches_python() -> None:
    from rvcloud.mrt.decoder import _rib_frame

    _ribfast = avro_fast._ribfast
    assert _ribfast is not None
    rng = random.Random(4)
    bufs = []
    for name in (
        "pyasn__rib6.20151101.0600_firstMB.bz2",
        "mrtparse__quagga_rib",
        "mrtparse__openbgpd_rib_table-v2",
    ):
        p = shared_mrt_dir() / name
        if p.is_file():
            raw = _decompressed(p.read_bytes())[:300_000]
            bufs.append(raw)
            damaged = bytearray(raw)
            for _ in range(200):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            bufs.append(bytes(damaged))
    for buf in bufs:
        starts = [0]  # record starts (of the clean stream; still mostly right when damaged)
        while starts[-1] + 12 <= len(buf):
            starts.append(starts[-1] + 12 + int.from_bytes(buf[starts[-1] + 8 : starts[-1] + 12], "big"))
        for i in range(3000):
            pos = rng.choice(starts[:-1]) if i % 2 else rng.randrange(len(buf))
            cut = buf[: rng.randrange(pos, len(buf) + 1)]
            for sub in (2, 4, 3, 8):
                for eof in (True, False):
                    assert _ribfast.rib_frame(cut, pos, sub, eof) == _rib_frame(cut, pos, sub, eof)
