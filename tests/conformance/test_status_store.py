"""Status store conformance: every StatusStore implementation must pass these."""

from __future__ import annotations

import dataclasses
import itertools
import threading

import pytest

from rvcloud.metadata.record import FileRecord
from rvcloud.metadata.store import ListFilter, StatusStore

P = "routeviews"
F = "route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2"


def create(store: StatusStore, project: str, filename: str, **fields: object) -> FileRecord:
    def mutate(cur: FileRecord | None) -> FileRecord | None:
        assert cur is None
        return FileRecord(project=project, filename=filename, **fields)  # type: ignore[arg-type]

    rec, changed = store.update(project, filename, mutate)
    assert changed and rec is not None
    return rec


def test_create_via_update(status_store: StatusStore) -> None:
    assert status_store.get(P, F) is None
    rec = create(
        status_store,
        P,
        F,
        status="IN_PROGRESS",
        stage="receiving",
        collector="route-views.jinx",
        mrt_type="RIB",
        file_time=1401487200,
        avro_uris=["file:///a.avro"],
        rows_by_type={"RIB": 10},
        updated_at=1.5,
    )
    got = status_store.get(P, F)
    assert got == rec
    assert got is not None
    assert (got.status, got.file_time, got.avro_uris, got.rows_by_type, got.updated_at) == (
        "IN_PROGRESS",
        1401487200,
        ["file:///a.avro"],
        {"RIB": 10},
        1.5,
    )
    assert status_store.get(P, F + ".other") is None
    assert status_store.get("ris", F) is None


def test_update_existing(status_store: StatusStore) -> None:
    create(status_store, P, F, status="IN_PROGRESS", stage="receiving")
    rec, changed = status_store.update(
        P, F, lambda r: None if r is None else dataclasses.replace(r, status="DONE", stage="stored", size=42)
    )
    assert changed and rec is not None
    assert (rec.status, rec.stage, rec.size) == ("DONE", "stored", 42)
    assert status_store.get(P, F) == rec


def test_mutate_returning_none_changes_nothing(status_store: StatusStore) -> None:
    rec, changed = status_store.update(P, F, lambda r: None)
    assert (rec, changed) == (None, False)
    assert status_store.get(P, F) is None
    created = create(status_store, P, F, status="DONE")
    seen: list[FileRecord | None] = []

    def refuse(r: FileRecord | None) -> FileRecord | None:
        seen.append(r)
        assert r is not None
        r.status = "FAILED"  # an in-place change of the copy must not leak
        return None

    rec, changed = status_store.update(P, F, refuse)
    assert not changed
    assert rec == created
    assert status_store.get(P, F) == created
    assert seen[0] is not None and seen[0].status == "FAILED"


def test_mutator_gets_a_copy(status_store: StatusStore) -> None:
    create(status_store, P, F, avro_uris=["a"])

    def add(r: FileRecord | None) -> FileRecord | None:
        assert r is not None
        r.avro_uris.append("b")
        return r

    rec, changed = status_store.update(P, F, add)
    assert changed and rec is not None and rec.avro_uris == ["a", "b"]
    got = status_store.get(P, F)
    assert got is not None and got.avro_uris == ["a", "b"]


def test_mutator_may_not_change_the_key(status_store: StatusStore) -> None:
    create(status_store, P, F)
    with pytest.raises(ValueError):
        status_store.update(P, F, lambda r: None if r is None else dataclasses.replace(r, filename="other"))


def test_concurrent_increments_are_not_lost(status_store: StatusStore) -> None:
    threads_n, per_thread = 8, 40

    def incr(r: FileRecord | None) -> FileRecord | None:
        if r is None:
            return FileRecord(project=P, filename=F, attempts=1)
        return dataclasses.replace(r, attempts=r.attempts + 1)

    def work() -> None:
        for _ in range(per_thread):
            status_store.update(P, F, incr)

    ts = [threading.Thread(target=work) for _ in range(threads_n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    got = status_store.get(P, F)
    assert got is not None
    assert got.attempts == threads_n * per_thread


def _population(store: StatusStore) -> list[FileRecord]:
    recs = []
    collectors = ["route-views2", "route-views.jinx", "rrc00"]
    types = ["RIB", "UPDATES"]
    statuses = ["NONE", "IN_PROGRESS", "DONE", "FAILED"]
    for i, (proj, coll, typ, st) in enumerate(
        itertools.islice(itertools.cycle(itertools.product([P, "ris"], collectors, types, statuses)), 60)
    ):
        ft = None if i % 10 == 9 else 1_000_000 + i * 100
        recs.append(
            create(store, proj, f"{coll}/f{i:03d}", collector=coll, mrt_type=typ, status=st, file_time=ft)
        )
    return recs


def _list_all(store: StatusStore, flt: ListFilter, page_size: int = 7) -> list[FileRecord]:
    out: list[FileRecord] = []
    token = ""
    for _ in range(1000):
        page = store.list(flt, page_size=page_size, page_token=token)
        assert len(page.records) <= page_size
        out.extend(page.records)
        token = page.next_page_token
        if not token:
            return out
    raise AssertionError("paging did not end")


@pytest.mark.parametrize(
    "flt",
    [
        ListFilter(),
        ListFilter(project=P),
        ListFilter(project="ris"),
        ListFilter(collector="rrc00"),
        ListFilter(mrt_type="RIB"),
        ListFilter(status="FAILED"),
        ListFilter(file_time_from=1_002_000),
        ListFilter(file_time_to=1_002_000),
        ListFilter(file_time_from=1_001_000, file_time_to=1_003_000),
        ListFilter(project=P, collector="route-views.jinx", mrt_type="UPDATES", status="IN_PROGRESS"),
        ListFilter(project="nobody"),
    ],
    ids=repr,
)
def test_list_filters(status_store: StatusStore, flt: ListFilter) -> None:
    recs = _population(status_store)

    def matches(r: FileRecord) -> bool:
        return (
            (not flt.project or r.project == flt.project)
            and (not flt.collector or r.collector == flt.collector)
            and (not flt.mrt_type or r.mrt_type == flt.mrt_type)
            and (not flt.status or r.status == flt.status)
            and (
                flt.file_time_from is None or (r.file_time is not None and r.file_time >= flt.file_time_from)
            )
            and (flt.file_time_to is None or (r.file_time is not None and r.file_time < flt.file_time_to))
        )

    expected = sorted((r for r in recs if matches(r)), key=lambda r: (r.project, r.filename))
    got = _list_all(status_store, flt)
    assert [(r.project, r.filename) for r in got] == [(r.project, r.filename) for r in expected]
    assert got == expected
    if flt != ListFilter(project="nobody"):
        assert expected, "every filter case should select something"


@pytest.mark.parametrize("page_size", [1, 10, 59, 60, 61, 1000])
def test_paging_covers_every_record_once(status_store: StatusStore, page_size: int) -> None:
    recs = _population(status_store)
    got = _list_all(status_store, ListFilter(), page_size=page_size)
    keys = [(r.project, r.filename) for r in got]
    assert keys == sorted((r.project, r.filename) for r in recs)
    assert len(set(keys)) == len(recs) == 60


def test_paging_sees_records_added_between_pages(status_store: StatusStore) -> None:
    for i in range(10):
        create(status_store, P, f"b{i}")
    first = status_store.list(ListFilter(), page_size=5)
    assert [r.filename for r in first.records] == [f"b{i}" for i in range(5)]
    create(status_store, P, "a-before")  # sorts before the token: not in later pages
    create(status_store, P, "c-after")  # sorts after: appears
    rest = _list_all_from(status_store, first.next_page_token)
    assert [r.filename for r in rest] == [f"b{i}" for i in range(5, 10)] + ["c-after"]


def _list_all_from(store: StatusStore, token: str) -> list[FileRecord]:
    out: list[FileRecord] = []
    while token:
        page = store.list(ListFilter(), page_size=3, page_token=token)
        out.extend(page.records)
        token = page.next_page_token
    return out


def test_bad_page_token_rejected(status_store: StatusStore) -> None:
    with pytest.raises(ValueError):
        status_store.list(ListFilter(), page_token="not a token!")


def test_ping(status_store: StatusStore) -> None:
    status_store.ping()
