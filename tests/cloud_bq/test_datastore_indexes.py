"""Datastore composite indexes: the emulator does not enforce them, so check here that
deploy/datastore/index.yaml is current and serves every query list() can issue."""

from __future__ import annotations

import itertools
from pathlib import Path

from rvcloud.metadata.datastore import (
    composite_indexes,
    index_serves,
    index_yaml,
    properties_to_record,
    query_shape,
    record_to_properties,
)
from rvcloud.metadata.record import FileRecord
from rvcloud.metadata.store import ListFilter

REPO = Path(__file__).resolve().parents[2]


def test_index_yaml_is_current() -> None:
    committed = (REPO / "deploy" / "datastore" / "index.yaml").read_text()
    assert committed == index_yaml(), (
        "deploy/datastore/index.yaml is stale: run "
        "`python -m rvcloud.metadata.datastore index-yaml > deploy/datastore/index.yaml`"
    )


def _all_filters() -> list[ListFilter]:
    out = []
    for proj, coll, typ, st, frm, to in itertools.product(
        ["", "routeviews"], ["", "rrc00"], ["", "RIB"], ["", "DONE"], [None, 1], [None, 2]
    ):
        out.append(ListFilter(proj, coll, typ, st, frm, to))
    return out


def test_every_filter_combination_has_an_index() -> None:
    indexes = composite_indexes()
    filters = _all_filters()
    assert len(filters) == 64
    for flt in filters:
        assert index_serves(query_shape(flt), indexes), flt


def test_index_check_notices_a_missing_index() -> None:
    # The checker itself must be able to fail: drop each index in turn.
    indexes = composite_indexes()
    for i in range(len(indexes)):
        fewer = indexes[:i] + indexes[i + 1 :]
        assert not all(index_serves(query_shape(f), fewer) for f in _all_filters()), indexes[i]


def test_time_range_queries_sort_by_file_time_first() -> None:
    shape = query_shape(ListFilter(project="routeviews", status="FAILED", file_time_from=5))
    assert shape.range_property == "file_time" and shape.order == ("file_time",)
    assert set(shape.equality) == {"project", "status"}
    assert query_shape(ListFilter(collector="rrc00")).order == ("project", "filename")


def test_entity_properties_round_trip_and_unknown_file_time_is_absent() -> None:
    rec = FileRecord(
        project="routeviews",
        filename="route-views2/bgpdata/2024.01/UPDATES/updates.20240101.0000.bz2",
        avro_uris=["gs://b/x.avro"],
        rows_by_type={"ANNOUNCE": 3},
        first_errors=["e"],
        file_time=None,
        updated_at=1.25,
    )
    props = record_to_properties(rec)
    assert "file_time" not in props  # so no range filter can match it
    assert props["avro_uris"] == '["gs://b/x.avro"]' and props["rows_by_type"] == '{"ANNOUNCE": 3}'
    assert properties_to_record(props) == rec
    assert properties_to_record({**props, "added_by_a_newer_version": 1}) == rec
