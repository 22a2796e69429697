"""Datastore status store specifics on the emulator: what is indexed, and paging of a
file_time range (sorted here, since Datastore sorts such queries by file_time)."""

from __future__ import annotations

from rvcloud.metadata.datastore import INDEXED, DatastoreStatusStore, decode_page_token
from rvcloud.metadata.record import FileRecord
from rvcloud.metadata.store import ListFilter

P = "routeviews"


def put(ds: DatastoreStatusStore, filename: str, **fields: object) -> FileRecord:
    rec = FileRecord(project=P, filename=filename, **fields)  # type: ignore[arg-type]
    got, changed = ds.update(P, filename, lambda _: rec)
    assert changed and got == rec
    return rec


def test_only_the_filter_properties_are_indexed(ds: DatastoreStatusStore) -> None:
    put(ds, "a/f", status="DONE", file_time=5, avro_uris=["gs://b/x"], first_errors=["e" * 2000])
    ent = ds._client.get(ds._key(P, "a/f"))
    assert ent.key.name == f"{P}/a/f" and ent.key.namespace == ds.namespace
    assert set(ent) - set(ent.exclude_from_indexes) == set(INDEXED)
    # A 2,000-byte error text would not fit an indexed string (1,500 bytes): unindexed, it does.
    assert "first_errors" in ent.exclude_from_indexes


def test_time_range_pages_in_project_filename_order(ds: DatastoreStatusStore) -> None:
    # file_time descending while filenames ascend: Datastore's own order would be reversed.
    recs = [
        put(ds, f"c/f{i:02d}", file_time=100 - i, status="DONE" if i % 2 else "FAILED") for i in range(12)
    ]
    put(ds, "c/no-time", file_time=None)
    other = FileRecord(project="ris", filename="c/f00", file_time=95)
    ds.update("ris", "c/f00", lambda _: other)
    flt = ListFilter(project=P, file_time_from=90, file_time_to=100)
    pages, token = [], ""
    while True:
        page = ds.list(flt, page_size=4, page_token=token)
        pages.append([r.filename for r in page.records])
        token = page.next_page_token
        if not token:
            break
        assert decode_page_token(flt, token)  # the token is the last key returned
    expected = [r.filename for r in recs if 90 <= (r.file_time or 0) < 100]
    assert [f for p in pages for f in p] == expected and [len(p) for p in pages] == [4, 4, 2]
    both = ds.list(ListFilter(file_time_from=95, file_time_to=96), page_size=10).records
    assert [(r.project, r.filename) for r in both] == [("ris", "c/f00"), (P, "c/f05")]
    failed = ds.list(ListFilter(project=P, status="FAILED", file_time_to=95), page_size=10).records
    assert [r.filename for r in failed] == ["c/f06", "c/f08", "c/f10"]
