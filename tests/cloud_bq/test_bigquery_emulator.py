"""BigQuery warehouse specifics against local-bigquery + fake-gcs (tests/emulators.py).

What the conformance suite does not show: the created tables' partitioning and
clustering, one job for many files, the job-id paths (reuse, a lost insert race,
failed attempts, a crash between staging and MERGE), replace semantics, and the
representation of timestamps, NULLs and REPEATED columns. Avro fixtures stay tiny:
the emulator decodes Avro in Python (~33 µs/row).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from rvcloud.backends.blob.base import BlobNotFound
from rvcloud.backends.blob.gcs import GcsBlobStore
from rvcloud.backends.warehouse.bigquery import BigQueryWarehouse, attempt_id, job_base
from rvcloud.mrt.schema import COLUMNS, bigquery_schema, empty_row
from tests.cloud_bq.conftest import put_avro

P = "routeviews"
SRC = [f"route-views{i}/bgpdata/2024.01/UPDATES/updates.20240101.00{i}0.bz2" for i in (2, 3, 4)]
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
        peer_asn=64496,
        prefix=f"10.{i}.0.0/16",
        record_index=i,
        record_offset=i * 10,
    )
    r.update(over)
    return r


def jobs_named(wh: BigQueryWarehouse, load_id: str) -> list[Any]:
    """The jobs of one load id (all its attempts and staging loads), oldest first."""
    prefix = job_base(wh.dataset, load_id)
    jobs = [j for j in wh._client.list_jobs(project=wh.project) if j.job_id.startswith(prefix)]
    return sorted(jobs, key=lambda j: j.created)


def counts(wh: BigQueryWarehouse, table: str = "updates") -> dict[tuple[str, str], int]:
    rows = wh.query(f"SELECT project, source_file, count(*) FROM {table} GROUP BY ALL")
    return {(p, s): n for p, s, n in rows}


def test_tables_are_partitioned_and_clustered(bq: BigQueryWarehouse) -> None:
    for name in ("ribs", "updates"):
        t = bq._client.get_table(bq.table_id(name))
        assert t.time_partitioning.type_ == "DAY" and t.time_partitioning.field == "timestamp"
        assert t.clustering_fields == ["collector", "prefix", "peer_asn"]
        modes = {f.name: f.mode for f in t.schema}
        assert modes["as_path_asns"] == "REPEATED" and modes["communities"] == "REPEATED"
        assert modes["timestamp"] == "REQUIRED" and modes["med"] == "NULLABLE"
    bq.ensure_tables()  # idempotent


def test_three_files_one_load_job(bq: BigQueryWarehouse, gcs: GcsBlobStore) -> None:
    uris = [
        put_avro(gcs, f"a/{i}.avro", "updates", [row(s, j) for j in range(i + 1)]) for i, s in enumerate(SRC)
    ]
    res = bq.load("updates", uris, replace_sources=[], load_id="batch-3")
    assert (res.rows, res.already_applied) == (6, False)
    jobs = jobs_named(bq, "batch-3")
    assert [(j.job_id, j.job_type) for j in jobs] == [(job_base(bq.dataset, "batch-3"), "load")]
    assert jobs[0].source_uris == uris and jobs[0].output_rows == 6
    assert counts(bq) == {(P, SRC[0]): 1, (P, SRC[1]): 2, (P, SRC[2]): 3}


def test_reused_job_id_loads_once(bq: BigQueryWarehouse, gcs: GcsBlobStore) -> None:
    uri = put_avro(gcs, "r.avro", "updates", [row(SRC[0], i) for i in range(4)])
    assert bq.applied("again") is False
    first = bq.load("updates", [uri], replace_sources=[], load_id="again")
    second = bq.load("updates", [uri], replace_sources=[], load_id="again")
    assert (first.rows, first.already_applied, second.rows, second.already_applied) == (4, False, 4, True)
    assert bq.applied("again") is True
    assert counts(bq) == {(P, SRC[0]): 4}
    assert len(jobs_named(bq, "again")) == 1


def test_lost_insert_race_waits_for_the_winner(
    bq: BigQueryWarehouse, gcs: GcsBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another loader inserts the job between our lookup and our insert: the insert
    # gets 409 Already Exists, and load() must wait for that job, not load again.
    uri = put_avro(gcs, "race.avro", "updates", [row(SRC[0], i) for i in range(3)])
    winner = bq.load("updates", [uri], replace_sources=[], load_id="race")
    real_get = BigQueryWarehouse._get_job
    calls = {"n": 0}

    def get_job(self: BigQueryWarehouse, job_id: str) -> Any:
        calls["n"] += 1
        return None if calls["n"] == 1 else real_get(self, job_id)

    monkeypatch.setattr(BigQueryWarehouse, "_get_job", get_job)
    loser = bq.load("updates", [uri], replace_sources=[], load_id="race")
    assert (winner.already_applied, loser.already_applied, loser.rows) == (False, True, 3)
    assert calls["n"] == 2
    assert counts(bq) == {(P, SRC[0]): 3}


def test_failed_attempt_then_retry_uses_the_next_job_id(bq: BigQueryWarehouse, gcs: GcsBlobStore) -> None:
    good = put_avro(gcs, "g.avro", "updates", [row(SRC[0], 0)])
    with pytest.raises(BlobNotFound):
        bq.load("updates", [good, gcs.uri("missing.avro")], replace_sources=[], load_id="f")
    assert bq.applied("f") is False
    assert counts(bq) == {}
    res = bq.load("updates", [good], replace_sources=[], load_id="f")
    assert (res.rows, res.already_applied) == (1, False)
    assert bq.applied("f") is True
    base = job_base(bq.dataset, "f")
    assert [j.job_id for j in jobs_named(bq, "f")] == [base, attempt_id(base, 1)]
    assert bq.load("updates", [good], replace_sources=[], load_id="f").already_applied


def test_replace_deletes_only_the_named_sources(bq: BigQueryWarehouse, gcs: GcsBlobStore) -> None:
    old = [put_avro(gcs, f"old{i}.avro", "updates", [row(s, j) for j in range(3)]) for i, s in enumerate(SRC)]
    ris = put_avro(gcs, "ris.avro", "updates", [row(SRC[0], 0, project="ris")])
    bq.load("updates", [*old, ris], replace_sources=[], load_id="base")
    new = put_avro(gcs, "new.avro", "updates", [row(SRC[0], 7, peer_asn=65000)])
    res = bq.load("updates", [new], replace_sources=[(P, SRC[0])], load_id="rep")
    assert (res.rows, res.already_applied) == (1, False)
    assert counts(bq) == {(P, SRC[0]): 1, (P, SRC[1]): 3, (P, SRC[2]): 3, ("ris", SRC[0]): 1}
    assert bq.query("SELECT peer_asn FROM updates WHERE project = ? AND source_file = ?", (P, SRC[0])) == [
        (65000,)
    ]
    # The MERGE job carries the row count: a retry reports it without loading again.
    again = bq.load("updates", [new], replace_sources=[(P, SRC[0])], load_id="rep")
    assert (again.rows, again.already_applied) == (1, True)
    assert {j.job_type for j in jobs_named(bq, "rep")} == {"query", "load"}  # MERGE + staging load
    # Only sources, no new objects: the rows go, nothing else does.
    gone = bq.load("updates", [], replace_sources=[(P, SRC[1])], load_id="clear")
    assert (gone.rows, gone.already_applied) == (0, False)
    assert counts(bq) == {(P, SRC[0]): 1, (P, SRC[2]): 3, ("ris", SRC[0]): 1}
    assert bq.applied("clear")
    # The staging tables are gone once their MERGE ran.
    assert [t.table_id for t in bq._client.list_tables(f"{bq.project}.{bq.dataset}")] == ["ribs", "updates"]


def test_crash_between_staging_and_merge_reuses_the_staging_load(
    bq: BigQueryWarehouse, gcs: GcsBlobStore
) -> None:
    uri = put_avro(gcs, "s.avro", "updates", [row(SRC[0], i) for i in range(2)])
    jid = job_base(bq.dataset, "crash")
    _, rows = bq._stage("updates", [uri], jid)  # the loader died right after this
    assert rows == 2
    res = bq.load("updates", [uri], replace_sources=[(P, SRC[0])], load_id="crash")
    assert (res.rows, res.already_applied) == (2, False)
    assert [j.job_id for j in jobs_named(bq, "crash")] == [f"{jid}_stage0", jid]
    assert counts(bq) == {(P, SRC[0]): 2}


def test_timestamps_nulls_and_repeated_columns(bq: BigQueryWarehouse, gcs: GcsBlobStore) -> None:
    t = dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
    rows = [
        row(
            SRC[0],
            0,
            timestamp=t,
            originated_time=dt.datetime(1999, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
            med=0,
            as_path_asns=[64496, 3356, 4_200_000_000],
            origin_asns=[4_200_000_000],
            communities=["3356:1", "3356:2"],
            cluster_list=["203.0.113.1"],
        ),
        row(SRC[0], 1, med=None, local_pref=None),
    ]
    bq.load("updates", [put_avro(gcs, "t.avro", "updates", rows)], replace_sources=[], load_id="ts")
    got = bq.query(
        "SELECT timestamp, UNIX_MICROS(timestamp), originated_time, med, local_pref, as_path_asns, "
        "origin_asns, communities, cluster_list, large_communities FROM updates ORDER BY record_index"
    )
    assert got[0] == (
        dt.datetime(2024, 2, 29, 23, 59, 59, 999999),  # naive UTC, microseconds kept
        int(t.timestamp()) * 1_000_000 + 999999,
        dt.datetime(1999, 1, 1, 0, 0, 0, 1),
        0,  # zero stays zero
        None,
        [64496, 3356, 4_200_000_000],
        [4_200_000_000],
        ["3356:1", "3356:2"],
        ["203.0.113.1"],
        [],
    )
    assert got[1][3] is None and got[1][4] is None and got[1][5] == []  # NULL stays NULL
    assert bq.query("SELECT count(*) FROM updates WHERE med IS NULL") == [(1,)]
    assert bq.query("SELECT record_index FROM updates WHERE 3356 IN UNNEST(as_path_asns)") == [(0,)]
    assert bq.query("SELECT count(*) FROM updates WHERE timestamp >= ?", (t,)) == [(1,)]
    # Partition pruning on the day partition answers the same.
    assert bq.query(
        "SELECT count(*) FROM updates WHERE timestamp >= TIMESTAMP '2024-02-29' "
        "AND timestamp < TIMESTAMP '2024-03-01'"
    ) == [(1,)]


def test_columns_match_the_row_model(bq: BigQueryWarehouse) -> None:
    legacy = {"INTEGER": "INT64", "BOOLEAN": "BOOL"}  # the REST API reports legacy type names
    want = [(f["name"], f["type"], f["mode"]) for f in bigquery_schema()]
    for name in ("ribs", "updates"):
        t = bq._client.get_table(bq.table_id(name))
        assert [(f.name, legacy.get(f.field_type, f.field_type), f.mode) for f in t.schema] == want
        assert [f.name for f in t.schema] == [c.name for c in COLUMNS]
