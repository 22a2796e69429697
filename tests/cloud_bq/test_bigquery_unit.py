"""BigQuery warehouse logic without an emulator: what local-bigquery would let pass
wrongly (emulators.md §5) is pinned down here, in the job configs and SQL we send."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rvcloud.backends.warehouse.bigquery import (
    CLUSTERING,
    BigQueryWarehouse,
    _is_missing_object,
    attempt_id,
    job_base,
    load_job_config,
    merge_sql,
    query_parameter,
    replace_predicate,
    table_options,
    to_googlesql,
)
from rvcloud.mrt.schema import TABLES, bigquery_schema, bigquery_schema_json

REPO = Path(__file__).resolve().parents[2]


def test_load_job_config_is_avro_with_logical_types_append_and_explicit_schema() -> None:
    cfg = load_job_config().to_api_repr()["load"]
    assert cfg["sourceFormat"] == "AVRO"
    assert cfg["useAvroLogicalTypes"] is True  # else timestamp-micros loads as INT64
    assert cfg["writeDisposition"] == "WRITE_APPEND"
    assert cfg["createDisposition"] == "CREATE_NEVER"  # ensure_tables creates, with partitioning
    assert cfg["schema"]["fields"] == bigquery_schema()


def test_staging_load_truncates_but_keeps_the_schema() -> None:
    # emulators.md gap 1: WRITE_TRUNCATE takes the file's schema unless the job has one.
    cfg = load_job_config(write_disposition="WRITE_TRUNCATE").to_api_repr()["load"]
    assert cfg["writeDisposition"] == "WRITE_TRUNCATE"
    assert cfg["schema"]["fields"] == bigquery_schema()
    assert cfg["useAvroLogicalTypes"] is True


def test_missing_source_object_is_recognised_in_both_dialects() -> None:
    assert _is_missing_object({"reason": "notFound", "message": "Not found: URI gs://b/x.avro"})
    assert _is_missing_object(
        {"reason": "invalid", "message": "HTTP GET error reading 'gs://b/x.avro' (HTTP 404 Not Found)"}
    )
    assert not _is_missing_object({"reason": "invalid", "message": "Error while reading data: bad Avro"})
    assert not _is_missing_object(None)


def test_job_ids_are_deterministic_dataset_scoped_and_valid() -> None:
    assert job_base("prod", "updates-abc_1") == "prod-updates-abc_1"
    assert job_base("prod", "x") != job_base("staging", "x")
    odd = job_base("prod", "a/b:c")  # not a valid job id as is: hashed, still deterministic
    assert odd == job_base("prod", "a/b:c") and odd.startswith("prod-h") and "/" not in odd
    assert [attempt_id("j", n) for n in range(3)] == ["j", "j-retry1", "j-retry2"]
    with pytest.raises(ValueError):
        job_base("prod", "")


def test_replace_sql_is_one_merge_with_parameters() -> None:
    pred, params = replace_predicate("T", [("routeviews", "a/b.bz2"), ("ris", "rrc00/x'y")])
    assert (
        pred == "((T.project = @rp0 AND T.source_file = @rs0) OR (T.project = @rp1 AND T.source_file = @rs1))"
    )
    assert [(p.name, p.value) for p in params] == [
        ("rp0", "routeviews"),
        ("rs0", "a/b.bz2"),
        ("rp1", "ris"),
        ("rs1", "rrc00/x'y"),  # a quote in a value never reaches the SQL text
    ]
    sql = merge_sql("p.d.updates", "p.d._stage", pred)
    assert sql.startswith("MERGE `p.d.updates` AS T USING `p.d._stage` AS S ON FALSE ")
    assert f"WHEN NOT MATCHED BY SOURCE AND {pred} THEN DELETE" in sql
    assert sql.endswith("WHEN NOT MATCHED BY TARGET THEN INSERT ROW")
    assert replace_predicate("T", []) == ("FALSE", [])


@pytest.mark.parametrize(
    ("portable", "google"),
    [
        ('SELECT "timestamp", "prefix" FROM "updates"', "SELECT `timestamp`, `prefix` FROM `updates`"),
        ("SELECT epoch_us(timestamp) FROM updates", "SELECT UNIX_MICROS(timestamp) FROM updates"),
        (
            "SELECT project, source_file, count(*) FROM updates GROUP BY ALL ORDER BY ALL",
            "SELECT project, source_file, count(*) FROM updates GROUP BY ALL ORDER BY 1, 2, 3",
        ),
        (
            "SELECT a, (SELECT max(x) FROM t ORDER BY ALL) FROM u ORDER BY ALL",
            "SELECT a, (SELECT max(x) FROM t ORDER BY 1) FROM u ORDER BY 1, 2",
        ),
        ("SELECT 'say \"hi\"', x FROM t WHERE y = ?", "SELECT 'say \"hi\"', x FROM t WHERE y = ?"),
        ("SELECT 3356 IN UNNEST(as_path_asns) FROM ribs", "SELECT 3356 IN UNNEST(as_path_asns) FROM ribs"),
        ('SELECT "we""ird" -- "comment" stays\nFROM t', 'SELECT `we"ird` -- "comment" stays\nFROM t'),
        ("SELECT epoch_us FROM t", "SELECT epoch_us FROM t"),  # a column, not the function
    ],
)
def test_portable_sql_rewrites(portable: str, google: str) -> None:
    assert to_googlesql(portable) == google


def test_query_parameter_types() -> None:
    import datetime as dt

    def t(v: object) -> str:
        return str(query_parameter(v).to_api_repr()["parameterType"]["type"])

    assert [t(True), t(3), t(1.5), t("s"), t(b"b"), t(dt.datetime(2024, 1, 1)), t(dt.date(2024, 1, 1))] == [
        "BOOL",
        "INT64",
        "FLOAT64",
        "STRING",
        "BYTES",
        "TIMESTAMP",
        "DATE",
    ]
    assert query_parameter([1, 2]).to_api_repr()["parameterType"] == {
        "type": "ARRAY",
        "arrayType": {"type": "INT64"},
    }
    with pytest.raises(ValueError):
        query_parameter([])


def test_table_spec_partitioning_and_clustering() -> None:
    wh = BigQueryWarehouse(None, "p", "d")  # type: ignore[arg-type]  # no client needed
    for name in TABLES:
        api = wh.table_spec(name).to_api_repr()
        assert api["timePartitioning"] == {"type": "DAY", "field": "timestamp"}
        assert api["clustering"] == {"fields": list(CLUSTERING[name])}
        assert api["schema"]["fields"] == bigquery_schema()


def test_deploy_schema_files_are_current() -> None:
    d = REPO / "deploy" / "bigquery"
    hint = "stale: run `python -m rvcloud.backends.warehouse.bigquery schema deploy/bigquery`"
    for name in TABLES:
        assert (d / f"{name}.json").read_text() == bigquery_schema_json(), f"{name}.json {hint}"
    assert json.loads((d / "tables.json").read_text()) == table_options(), f"tables.json {hint}"


@pytest.mark.parametrize(
    "url", ["bigquery://p", "bigquery://p/", "bigquery://p/a/b", "bq://p/d", "bigquery://p/d?region=EU"]
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        BigQueryWarehouse.from_url(url)
