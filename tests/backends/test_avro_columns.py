"""The embedded warehouse's C decoder of Avro blocks (``avro_columns`` / ``_avrocols``).

It must give exactly the tables the polars path gives (real converted files, synthetic
edge cases), and damaged input must raise ``ValueError`` naming where, never crash.
"""

from __future__ import annotations

import io
import json
import random
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa
import pytest

from rvcloud.backends.warehouse import avro_columns, duckdb
from rvcloud.backends.warehouse.avro_chunks import AvroContainerError, ContainerReader
from rvcloud.converter_worker.avro_fast import avro_string, zz
from rvcloud.converter_worker.convert import convert_stream
from rvcloud.mrt.schema import COLUMNS, avro_schema, empty_row

pytestmark = pytest.mark.skipif(avro_columns._avrocols is None, reason="C decoder not built")

JINX_RIB = "libbgpstream__routeviews.route-views.jinx.ribs.1401487200.bz2"
FILES = [
    JINX_RIB,  # TABLE_DUMP_V2 RIB, 503,590 rows, AS_SET, 4-byte ASNs
    "bgpdump__updates.20160811.1600.gz",  # updates + STATE rows, IPv6 in MP_REACH, ext communities
    "bgpdump__updates.20100722.2015.gz",  # STATE_CHANGE_AS4, AS4_PATH
    "mrtparse__bird-mrtdump_rib",  # RIB with ADD-PATH
    "bgpdump__bview.ipv6_unicast_add_path.gz",  # IPv6 RIB with ADD-PATH, no next hop
    "mrtparse__bird_bgp",  # ADD-PATH updates, large communities
    "mrtparse__openbgpd_bgp",  # VPNv4, IPv6 peers
]


@pytest.fixture(scope="session")
def converted(shared_mrt: Path) -> dict[str, bytes]:
    """``file/table`` -> the converter's Avro container of that table."""
    out: dict[str, bytes] = {}
    for name in FILES:
        bufs: dict[str, io.BytesIO] = {}

        def open_output(table: str, bufs: dict[str, io.BytesIO] = bufs) -> io.BytesIO:
            bufs[table] = io.BytesIO()
            return bufs[table]

        with (shared_mrt / name).open("rb") as f:
            convert_stream(f, open_output, project="routeviews", collector="c", source_file=name, workers=1)
        out.update({f"{name}/{t}": b.getvalue() for t, b in bufs.items()})
    return out


def batches(data: bytes, accel: bool, batch_rows: int = duckdb.BATCH_ROWS) -> list[pa.Table]:
    saved = avro_columns.ACCEL
    avro_columns.ACCEL = accel
    try:
        return list(duckdb.iter_avro_batches(io.BytesIO(data), batch_rows))
    finally:
        avro_columns.ACCEL = saved


def test_real_files_decode_as_polars_does(converted: dict[str, bytes]) -> None:
    assert {k.split("/")[1] for k in converted} == {"ribs", "updates"}
    for key, data in converted.items():
        fast, slow = batches(data, True), batches(data, False)
        assert [b.num_rows for b in fast] == [b.num_rows for b in slow], key
        for a, b in zip(fast, slow, strict=True):
            a.validate(full=True)
            assert a.schema == avro_columns.ARROW_SCHEMA
            assert a.equals(b), key
    rib = pa.concat_tables(batches(converted[f"{JINX_RIB}/ribs"], True))
    assert rib.num_rows == 503_590
    assert set(rib.column("elem_type").unique().to_pylist()) == {"RIB"}


def test_small_batches_and_the_chunk_path(converted: dict[str, bytes]) -> None:
    data = converted["bgpdump__updates.20160811.1600.gz/updates"]
    fast, slow = batches(data, True, 7_000), batches(data, False, 7_000)
    assert len(fast) > 3
    assert pa.concat_tables(fast).equals(pa.concat_tables(slow))
    # One whole container through the C path too.
    assert avro_columns.container_table(data).equals(pa.concat_tables(slow))


def test_switched_off_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert avro_columns.accel_enabled()
    monkeypatch.setenv("RVCLOUD_NO_ACCEL", "1")
    assert not avro_columns.accel_enabled()


# ---- synthetic rows ------------------------------------------------------------------


def _row(i: int) -> dict[str, Any]:
    r = empty_row()
    r.update(
        timestamp=i * 1_000_003 - 5_000_000,
        project="routeviews",
        collector="rrc00",
        source_file="x/updates.bz2",
        elem_type="ANNOUNCE",
        peer_ip="2001:db8::1",
        peer_asn=4_294_967_295,
        record_index=i,
        record_offset=2**63 - 1 - i,
    )
    if i % 3 == 0:  # everything set, extreme values, non-ASCII strings
        r.update(
            originated_time=-(2**63),
            prefix="10.0.0.0/8",
            path_id=-1,
            afi=-(2**31),
            safi=2**31 - 1,
            next_hop="é",
            next_hop_link_local="",
            as_path="𝄞 {1,2}",
            as_path_asns=[1, -1, 2**63 - 1, -(2**63)],
            origin_asns=[0],
            origin="IGP",
            local_pref=0,
            med=2**40,
            communities=["1:2", "", "ü" * 100],
            large_communities=["1:2:3"],
            extended_communities=["00" * 8],
            atomic_aggregate=True,
            aggregator_asn=1,
            aggregator_ip="10.0.0.1",
            only_to_customer=7,
            originator_id="1.2.3.4",
            cluster_list=["1.1.1.1", "2.2.2.2"],
            unknown_attributes=["99:192:" + "ab" * 300],
            old_state="Idle",
            new_state="Established",
        )
    elif i % 3 == 1:
        r.update(as_path_asns=list(range(i % 50)), communities=[f"{i}:{j}" for j in range(i % 7)])
    return r


ROWS = [_row(i) for i in range(3000)]


def fastavro_container(
    rows: list[dict[str, Any]], codec: str = "deflate", sync_interval: int = 4000
) -> bytes:
    buf = io.BytesIO()
    schema = fastavro.parse_schema(avro_schema("updates"))
    # Raw ints for the timestamps (fastavro encodes them as given).
    fastavro.writer(buf, schema, rows, codec=codec, sync_interval=sync_interval)
    return buf.getvalue()


def expected_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=avro_columns.ARROW_SCHEMA)


@pytest.mark.parametrize("codec", ["null", "deflate"])
def test_synthetic_edge_cases(codec: str) -> None:
    data = fastavro_container(ROWS, codec)
    assert len(list(ContainerReader(io.BytesIO(data)).blocks())) > 10
    fast, slow = batches(data, True, 1000), batches(data, False, 1000)
    want = expected_table(ROWS)
    assert pa.concat_tables(fast).equals(want)
    assert pa.concat_tables(slow).equals(want)
    assert [b.num_rows for b in fast] == [b.num_rows for b in slow]


def test_empty_container_and_empty_block() -> None:
    empty = fastavro_container([])
    assert batches(empty, True) == []
    assert avro_columns.container_table(empty).num_rows == 0
    # A block of zero records and zero bytes is fine; with a byte left over it is not.
    assert avro_columns.decode_blocks([b""], [0]).num_rows == 0
    with pytest.raises(ValueError, match="continues after its last record"):
        avro_columns.decode_blocks([b"\x00"], [0])


def _encode(row: dict[str, Any], blocked_arrays: bool, columns: Any = COLUMNS) -> bytes:
    """One row (its first ``columns``); arrays written as blocks of one item with a negative
    count and a byte size (legal Avro that our converter and fastavro never write)."""
    out = bytearray()
    for c in columns:
        v = row[c.name]
        if c.type.endswith("_list"):
            for item in v:
                enc = zz(item) if c.type == "int64_list" else avro_string(item)
                out += (zz(-1) + zz(len(enc)) if blocked_arrays else zz(1)) + enc
            out += b"\x00"
            continue
        if c.nullable:
            if v is None:
                out += b"\x00"
                continue
            out += b"\x02"
        if c.type == "bool":
            out += b"\x01" if v else b"\x00"
        elif c.type == "string":
            out += avro_string(v)
        else:
            out += zz(v)
    return bytes(out)


def test_array_blocks_with_byte_sizes() -> None:
    rows = ROWS[:200]
    block = b"".join(_encode(r, True) for r in rows)
    assert avro_columns.decode_blocks([block], [len(rows)]).equals(expected_table(rows))
    # Several blocks in one call are rows in order.
    blocks = [b"".join(_encode(r, False) for r in rows[i : i + 30]) for i in range(0, 200, 30)]
    counts = [len(rows[i : i + 30]) for i in range(0, 200, 30)]
    assert avro_columns.decode_blocks(blocks, counts).equals(expected_table(rows))


def test_writer_schema_check(monkeypatch: pytest.MonkeyPatch) -> None:
    meta = dict(ContainerReader(io.BytesIO(fastavro_container(ROWS[:3]))).meta)
    assert avro_columns.unsupported(meta) is None
    assert avro_columns.unsupported({**meta, "avro.codec": b"snappy"}) == "codec 'snappy'"
    assert avro_columns.unsupported({"avro.codec": b"null"}) == "no readable writer schema"
    other = b'{"type": "record", "name": "r", "fields": [{"name": "n", "type": "long"}]}'
    assert avro_columns.unsupported({**meta, "avro.schema": other}) == "writer schema is not the row model's"
    # Another schema goes through polars, as before.
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(json.loads(other)), [{"n": 1}])
    seen: list[bytes] = []
    monkeypatch.setattr(duckdb, "_polars_table", lambda chunk: seen.append(chunk) or pa.table({}))
    assert len(batches(buf.getvalue(), True)) == 1 and len(seen) == 1


# ---- damage ---------------------------------------------------------------------------


def _good_block() -> tuple[bytes, int]:
    rows = ROWS[:40]
    return b"".join(_encode(r, i % 2 == 0) for i, r in enumerate(rows)), len(rows)


def test_damage_names_block_offset_and_column() -> None:
    block, n = _good_block()
    with pytest.raises(avro_columns._avrocols.DecodeError) as ei:
        avro_columns.decode_blocks([block, block[:-3]], [n, n])
    e = ei.value
    assert e.block == 1 and e.column == "record_offset" and e.reason == "truncated varint"
    assert e.offset == len(block) - 3
    at = len(zz(ROWS[0]["timestamp"]))  # the union branch of originated_time
    with pytest.raises(ValueError, match=rf"byte {at} .* column 'originated_time': union branch is neither"):
        avro_columns.decode_blocks([block[:at] + b"\x04" + block[at + 1 :]], [n])
    with pytest.raises(ValueError, match="does not fit"):
        avro_columns.decode_blocks([block], [len(block)])
    row = bytearray(_encode({**ROWS[1], "project": "ab"}, False))
    i = row.index(b"ab")
    row[i : i + 2] = b"\xc3\x28"  # a lead byte without its continuation byte
    with pytest.raises(ValueError, match="column 'project': string is not valid UTF-8"):
        avro_columns.decode_blocks([bytes(row)], [1])
    row[i : i + 2] = b"\xed\xa0"  # 3 bytes: ED A0 80 is a UTF-16 surrogate
    with pytest.raises(ValueError, match="not valid UTF-8"):
        avro_columns.decode_blocks([bytes(row[: i + 2]) + b"\x80" + bytes(row[i + 2 :])], [1])
    # A list of 2^62 items (as_path_asns): an error, no allocation for it.
    head = _encode(ROWS[2], False, [c for c in COLUMNS if c.name != "as_path_asns"][:15])
    assert COLUMNS[15].name == "as_path_asns"
    with pytest.raises(ValueError, match=f"byte {len(head)} .*'as_path_asns': array block count exceeds"):
        avro_columns.decode_blocks([head + zz(2**62) + bytes(40)], [1])


def _container_with_blocks(codec: str) -> bytes:
    return fastavro_container(ROWS[:600], codec, sync_interval=3000)


def _mutations(data: bytes, rnd: random.Random, n: int) -> Iterator[bytes]:
    for _ in range(n):
        b = bytearray(data)
        for _ in range(rnd.randint(1, 4)):
            op = rnd.random()
            pos = rnd.randrange(len(b))
            if op < 0.5:
                b[pos] ^= 1 << rnd.randrange(8)
            elif op < 0.75:
                b[pos] = rnd.randrange(256)
            elif op < 0.9:
                del b[pos:]
                if not b:
                    b = bytearray(b"O")
            else:
                b[pos:pos] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 9)))
        yield bytes(b)


def _load_or_error(data: bytes) -> None:
    try:
        for t in batches(data, True, 250):
            t.validate(full=True)
    except AvroContainerError as e:
        assert "byte" in str(e)
    except ValueError:
        pass  # polars fallback after a damaged header (its own errors)
    except Exception as e:
        # The polars fallback (a header no longer ours) fails its own ways; the C path must not.
        assert avro_columns.unsupported(ContainerReader(io.BytesIO(data)).meta) is not None, repr(e)


@pytest.mark.parametrize("codec", ["null", "deflate"])
def test_random_damage_never_crashes(codec: str) -> None:
    data = _container_with_blocks(codec)
    header = len(ContainerReader(io.BytesIO(data)).header)
    rnd = random.Random(7)
    # Keep the header intact mostly: damage in the blocks is what reaches the C decoder.
    body = data[header:]
    for m in _mutations(body, rnd, 1500):
        _load_or_error(data[:header] + m)


def test_random_damage_of_decompressed_blocks() -> None:
    """Straight into the decoder (the container's sync markers and deflate checks would
    catch most damage before it): rows decoded or ValueError, never a crash."""
    data = _container_with_blocks("deflate")
    blocks = [(c, zlib.decompress(d, -15)) for c, _, d in ContainerReader(io.BytesIO(data)).blocks()]
    rnd = random.Random(11)
    ok = 0
    for i in range(3000):
        count, block = blocks[i % len(blocks)]
        (m,) = _mutations(block, rnd, 1)
        if rnd.random() < 0.1:
            count += rnd.choice([-1, 1, 1000, 2**40])
        try:
            t = avro_columns.decode_blocks([m], [max(count, 0)])
        except ValueError as e:
            assert "byte" in str(e), e
            continue
        t.validate(full=True)
        ok += 1
    assert ok > 30  # some flips only change a value
