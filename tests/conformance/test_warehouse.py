"""Warehouse conformance: every Warehouse implementation must pass these.

Avro objects are written with fastavro and the row model's schema, exactly as the
converter writes them, into the blob store the warehouse reads from.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import fastavro
import pytest

from rvcloud.backends.blob.base import BlobStore
from rvcloud.backends.warehouse.base import Warehouse
from rvcloud.mrt.schema import COLUMN_NAMES, avro_schema, empty_row

P = "routeviews"
SRC_A = "route-views2/bgpdata/2024.01/UPDATES/updates.20240101.0000.bz2"
SRC_B = "route-views.jinx/bgpdata/2024.01/UPDATES/updates.20240101.0015.bz2"
UTC = dt.UTC


def row(source: str, i: int, **over: Any) -> dict[str, Any]:
    r = empty_row()
    r.update(
        timestamp=dt.datetime(2024, 1, 1, 0, 0, 5, 123456, tzinfo=UTC) + dt.timedelta(seconds=i),
        project=P,
        collector=source.split("/")[0],
        source_file=source,
        elem_type="ANNOUNCE",
        peer_ip="192.0.2.1",
        peer_asn=4_200_000_000 + i,  # 4-byte ASN beyond int32
        prefix=f"10.{i % 256}.0.0/16",
        afi=1,
        safi=1,
        record_index=i,
        record_offset=i * 100,
    )
    r.update(over)
    return r


def full_row(source: str, i: int) -> dict[str, Any]:
    """Every column set, lists non-empty, microsecond timestamps."""
    return row(
        source,
        i,
        originated_time=dt.datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        path_id=7,
        next_hop="2001:db8::1",
        next_hop_link_local="fe80::1",
        prefix="2001:db8:100::/40",
        afi=2,
        safi=1,
        as_path="64496 {64497,64498}",
        as_path_asns=[64496, 64497, 64498],
        origin_asns=[64497, 64498],
        origin="IGP",
        local_pref=100,
        med=0,  # zero, not NULL
        communities=["64496:1", "64496:2"],
        large_communities=["4200000000:1:2"],
        extended_communities=["0002fde800000001"],
        atomic_aggregate=True,
        aggregator_asn=64499,
        aggregator_ip="198.51.100.1",
        only_to_customer=64500,
        originator_id="203.0.113.9",
        cluster_list=["203.0.113.10"],
        unknown_attributes=["99:192:0a0b"],
    )


def put_avro(blobs: BlobStore, key: str, table: str, rows: list[dict[str, Any]]) -> str:
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(avro_schema(table)), rows, codec="deflate")
    with blobs.writer(key, content_type="application/avro") as w:
        w.write(buf.getvalue())
        w.commit()
    return blobs.uri(key)


def select_all(
    wh: Warehouse, table: str, where: str = "TRUE", params: tuple[Any, ...] = ()
) -> list[dict[str, Any]]:
    cols = ", ".join(f'"{c}"' for c in COLUMN_NAMES)
    rows = wh.query(f'SELECT {cols} FROM "{table}" WHERE {where} ORDER BY source_file, record_index', params)
    return [dict(zip(COLUMN_NAMES, r, strict=True)) for r in rows]


def as_warehouse_row(r: dict[str, Any]) -> dict[str, Any]:
    """What a row looks like when read back: timestamps as naive UTC datetimes."""
    out = dict(r)
    for k in ("timestamp", "originated_time"):
        if out[k] is not None:
            out[k] = out[k].astimezone(UTC).replace(tzinfo=None)
    return out


def test_load_and_read_back_field_by_field(warehouse: Warehouse, blob_store: BlobStore) -> None:
    rows = [full_row(SRC_A, 0), row(SRC_A, 1), row(SRC_A, 2, elem_type="WITHDRAW", med=None, local_pref=None)]
    uri = put_avro(blob_store, "avro/a.avro", "updates", rows)
    res = warehouse.load("updates", [uri], replace_sources=[(P, SRC_A)], load_id="load-a-1")
    assert (res.load_id, res.table, res.rows, res.already_applied) == ("load-a-1", "updates", 3, False)
    got = select_all(warehouse, "updates")
    assert len(got) == 3
    for g, r in zip(got, rows, strict=True):
        exp = as_warehouse_row(r)
        for col in COLUMN_NAMES:
            assert g[col] == exp[col], col
    # Spot checks of the representation itself.
    assert got[0]["timestamp"] == dt.datetime(2024, 1, 1, 0, 0, 5, 123456)
    assert got[0]["originated_time"] == dt.datetime(2023, 12, 31, 23, 59, 59, 999999)
    assert got[0]["med"] == 0 and got[1]["med"] is None and got[2]["local_pref"] is None
    assert got[1]["originated_time"] is None
    assert got[0]["as_path_asns"] == [64496, 64497, 64498] and got[1]["communities"] == []
    assert got[0]["peer_asn"] == 4_200_000_000
    assert warehouse.query("SELECT count(*) FROM updates WHERE med IS NULL") == [(2,)]
    assert warehouse.query("SELECT count(*) FROM ribs") == [(0,)]


def test_timestamps_are_utc_microseconds(warehouse: Warehouse, blob_store: BlobStore) -> None:
    # A non-UTC aware datetime must land as the same instant in UTC.
    t = dt.datetime(2024, 6, 1, 12, 0, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=-7)))
    uri = put_avro(blob_store, "avro/t.avro", "updates", [row(SRC_A, 0, timestamp=t)])
    warehouse.load("updates", [uri], replace_sources=[(P, SRC_A)], load_id="t")
    (got,) = select_all(warehouse, "updates")
    assert got["timestamp"] == dt.datetime(2024, 6, 1, 19, 0, 0, 1)
    expected_us = int(t.timestamp()) * 1_000_000 + 1
    assert warehouse.query("SELECT epoch_us(timestamp) FROM updates") == [(expected_us,)]


def test_same_load_id_loads_once(warehouse: Warehouse, blob_store: BlobStore) -> None:
    uri = put_avro(blob_store, "avro/a.avro", "updates", [row(SRC_A, i) for i in range(5)])
    assert warehouse.applied("job-1") is False
    first = warehouse.load("updates", [uri], replace_sources=[], load_id="job-1")
    assert warehouse.applied("job-1") is True
    again = warehouse.load("updates", [uri], replace_sources=[], load_id="job-1")
    assert (first.rows, first.already_applied) == (5, False)
    assert (again.load_id, again.rows, again.already_applied) == ("job-1", 5, True)
    assert warehouse.query("SELECT count(*) FROM updates") == [(5,)]


def test_replace_source_rows(warehouse: Warehouse, blob_store: BlobStore) -> None:
    a1 = put_avro(
        blob_store, "avro/a1.avro", "updates", [row(SRC_A, i, peer_ip="192.0.2.1") for i in range(5)]
    )
    b = put_avro(blob_store, "avro/b.avro", "updates", [row(SRC_B, i) for i in range(3)])
    other_project = put_avro(
        blob_store, "avro/o.avro", "updates", [row(SRC_A, 0, project="ris", peer_ip="198.51.100.7")]
    )
    warehouse.load("updates", [a1], replace_sources=[(P, SRC_A)], load_id="a1")
    warehouse.load("updates", [b], replace_sources=[(P, SRC_B)], load_id="b")
    warehouse.load("updates", [other_project], replace_sources=[("ris", SRC_A)], load_id="o")
    # A re-conversion of SRC_A produced different rows (and two Avro parts).
    a2_part1 = put_avro(blob_store, "avro/a2-0.avro", "updates", [row(SRC_A, 0, peer_ip="192.0.2.2")])
    a2_part2 = put_avro(blob_store, "avro/a2-1.avro", "updates", [row(SRC_A, 1, peer_ip="192.0.2.2")])
    res = warehouse.load("updates", [a2_part1, a2_part2], replace_sources=[(P, SRC_A)], load_id="a2")
    assert res.rows == 2
    assert warehouse.query(
        "SELECT project, source_file, peer_ip, count(*) FROM updates GROUP BY ALL ORDER BY ALL"
    ) == [
        ("ris", SRC_A, "198.51.100.7", 1),
        (P, SRC_B, "192.0.2.1", 3),
        (P, SRC_A, "192.0.2.2", 2),
    ]
    assert [
        r["record_index"]
        for r in select_all(warehouse, "updates", "source_file = ? AND project = ?", (SRC_B, P))
    ] == [
        0,
        1,
        2,
    ]


def test_tables_are_separate(warehouse: Warehouse, blob_store: BlobStore) -> None:
    rib = row(SRC_A, 0, elem_type="RIB", originated_time=dt.datetime(2020, 1, 1, tzinfo=UTC))
    uri_r = put_avro(blob_store, "avro/r.avro", "ribs", [rib])
    uri_u = put_avro(blob_store, "avro/u.avro", "updates", [row(SRC_A, 0)])
    warehouse.load("ribs", [uri_r], replace_sources=[(P, SRC_A)], load_id="r")
    warehouse.load("updates", [uri_u], replace_sources=[(P, SRC_A)], load_id="u")
    assert warehouse.query("SELECT elem_type, originated_time FROM ribs") == [
        ("RIB", dt.datetime(2020, 1, 1))
    ]
    assert warehouse.query("SELECT elem_type FROM updates") == [("ANNOUNCE",)]
    with pytest.raises(ValueError):
        warehouse.load("routes", [uri_u], replace_sources=[], load_id="x")


def test_failed_load_changes_nothing(warehouse: Warehouse, blob_store: BlobStore) -> None:
    old = put_avro(blob_store, "avro/old.avro", "updates", [row(SRC_A, i) for i in range(4)])
    warehouse.load("updates", [old], replace_sources=[(P, SRC_A)], load_id="old")
    new = put_avro(blob_store, "avro/new.avro", "updates", [row(SRC_A, 9)])
    missing = blob_store.uri("avro/missing.avro")
    with pytest.raises(KeyError):  # BlobNotFound
        warehouse.load("updates", [new, missing], replace_sources=[(P, SRC_A)], load_id="new")
    assert warehouse.query("SELECT record_index FROM updates ORDER BY 1") == [(0,), (1,), (2,), (3,)]
    # The failed load id was not recorded: the retry applies.
    res = warehouse.load("updates", [new], replace_sources=[(P, SRC_A)], load_id="new")
    assert (res.rows, res.already_applied) == (1, False)
    assert warehouse.query("SELECT record_index FROM updates") == [(9,)]


def test_many_rows_across_batches(warehouse: Warehouse, blob_store: BlobStore) -> None:
    n = 60_123
    rows = (row(SRC_A, i, communities=[f"1:{i}"]) for i in range(n))
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(avro_schema("updates")), rows)
    with blob_store.writer("avro/big.avro") as w:
        w.write(buf.getvalue())
        w.commit()
    res = warehouse.load("updates", [blob_store.uri("avro/big.avro")], replace_sources=[], load_id="big")
    assert res.rows == n
    assert warehouse.query(
        "SELECT count(*), count(DISTINCT record_index), max(record_index), max(peer_asn) FROM updates"
    ) == [(n, n, n - 1, 4_200_000_000 + n - 1)]
    assert warehouse.query("SELECT communities FROM updates WHERE record_index = ?", (n - 1,)) == [
        ([f"1:{n - 1}"],)
    ]


def test_query_params(warehouse: Warehouse, blob_store: BlobStore) -> None:
    uri = put_avro(blob_store, "avro/q.avro", "updates", [row(SRC_A, i) for i in range(3)])
    warehouse.load("updates", [uri], replace_sources=[], load_id="q")
    assert warehouse.query("SELECT record_index FROM updates WHERE record_index >= ? ORDER BY 1", (1,)) == [
        (1,),
        (2,),
    ]
