"""Blob store conformance for resumable uploads: compose, timestamps and staged parts.

Every BlobStore implementation must pass these (the file store and GCS, through the
emulator): the gateway's resumable uploads rely on ``compose`` and on parts committed
by one replica being found, in order, by another.
"""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from rvcloud.backends.blob import staging
from rvcloud.backends.blob.base import SCRATCH_PREFIX, BlobNotFound, BlobStore
from rvcloud.backends.blob.staging import PREFIX, UploadSession
from rvcloud.metadata.archive_path import InvalidKey
from tests.conformance.conformance_support import BlobBackend

KEY = "routeviews/route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2"
NAME = "route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2"


def put(store: BlobStore, key: str, data: bytes) -> None:
    with store.writer(key) as w:
        w.write(data)
        w.commit()


def read(store: BlobStore, key: str) -> bytes:
    with store.open(key) as f:
        return f.read()


def test_compose_concatenates_in_order(blob_store: BlobStore) -> None:
    pieces = [os.urandom(n) for n in (70_000, 1, 0, 300_000)]
    for i, p in enumerate(pieces):
        put(blob_store, f"src/{i}", p)
    order = ["src/3", "src/0", "src/1", "src/2", "src/0"]  # out of order, repeated, an empty one
    md = {"sha256": "cd" * 32, "project": "routeviews"}
    info = blob_store.compose(KEY, order, content_type="application/x-bzip2", metadata=md)
    want = b"".join(pieces[int(k.split("/")[1])] for k in order)
    assert read(blob_store, KEY) == want
    assert (info.key, info.size, info.content_type, dict(info.metadata)) == (
        KEY,
        len(want),
        "application/x-bzip2",
        md,
    )
    st = blob_store.stat(KEY)
    assert (st.size, st.content_type, dict(st.metadata)) == (len(want), "application/x-bzip2", md)
    # The sources are untouched, and deleting them does not touch the result.
    assert [read(blob_store, f"src/{i}") for i in range(4)] == pieces
    for i in range(4):
        blob_store.delete(f"src/{i}")
    assert read(blob_store, KEY) == want


def test_compose_more_sources_than_one_gcs_call_takes(blob_store: BlobStore) -> None:
    # 75 sources: GCS composes at most 32 per call, so this needs intermediate rounds.
    pieces = [bytes([i]) * (100 + i) for i in range(75)]
    keys = [f"p/{i:03d}" for i in range(75)]
    for k, p in zip(keys, pieces, strict=True):
        put(blob_store, k, p)
    info = blob_store.compose(KEY, keys)
    assert read(blob_store, KEY) == b"".join(pieces)
    assert info.size == sum(len(p) for p in pieces)
    assert list(blob_store.list(SCRATCH_PREFIX)) == []  # intermediates cleaned up


def test_compose_with_a_missing_source_changes_nothing(blob_store: BlobStore) -> None:
    put(blob_store, KEY, b"old version")
    put(blob_store, "src/a", b"aaa")
    with pytest.raises(BlobNotFound):
        blob_store.compose(KEY, ["src/a", "src/missing"])
    assert read(blob_store, KEY) == b"old version"
    with pytest.raises(ValueError):
        blob_store.compose(KEY, [])
    with pytest.raises(InvalidKey):
        blob_store.compose(KEY, ["../etc/passwd"])
    with pytest.raises(InvalidKey):
        blob_store.compose("a/../b", ["src/a"])


def test_updated_is_the_time_of_the_write(blob_store: BlobStore) -> None:
    before = time.time()
    put(blob_store, KEY, b"x")
    st = blob_store.stat(KEY)
    # Emulator and file system clocks: allow a little skew, but it must be a real time.
    assert before - 5 <= st.updated <= time.time() + 5
    [listed] = list(blob_store.list())
    assert abs(listed.updated - st.updated) < 1


def _session(store: BlobStore, data: bytes, part_size: int) -> UploadSession:
    return UploadSession(
        store, "routeviews", NAME, hashlib.sha256(data).hexdigest(), len(data), part_size=part_size
    )


def test_parts_commit_one_by_one_and_resume_on_another_handle(blob_backend: BlobBackend) -> None:
    store = blob_backend.store
    part = 100_000
    data = os.urandom(5 * part + 12_345)
    s1 = _session(store, data, part)
    assert s1.staged and s1.part_size == part and s1.committed_size() == 0
    # Replica 1 commits two parts, then its stream is cut in the middle of the third.
    for start in (0, part):
        with s1.open_part(start, "aaaa0001") as w:
            w.write(data[start : start + part])
            w.commit()
    w = s1.open_part(2 * part, "aaaa0001")
    w.write(data[2 * part : 2 * part + 5000])
    assert s1.committed_size() == 2 * part  # an unfinished part is not committed
    w.abort()

    # Replica 2 (its own handle on the same storage) finds them and continues.
    assert blob_backend.reopen is not None
    s2 = _session(blob_backend.reopen(), data, part)
    chain = s2.committed()
    assert [(p.start, p.size) for p in chain] == [(0, part), (part, part)]
    assert b"".join(s2.read(chain)) == data[: 2 * part]
    pos = 2 * part
    while pos < len(data):
        end = s2.part_end(pos)
        with s2.open_part(pos, "bbbb0002") as w:
            w.write(data[pos:end])
            w.commit()
        pos = end
    chain = s2.committed()
    assert [p.start for p in chain] == [0, part, 2 * part, 3 * part, 4 * part, 5 * part]
    assert s2.committed_size() == len(data)
    info = s2.compose(KEY, chain, "application/octet-stream", {"sha256": s2.sha256})
    assert info.size == len(data)
    assert hashlib.sha256(read(store, KEY)).hexdigest() == s2.sha256
    assert s2.discard() == 6
    assert list(store.list(PREFIX)) == []
    assert blob_backend.temp_files() == []


def test_parts_of_another_sha_or_size_are_not_reused(blob_store: BlobStore) -> None:
    part = 50_000
    data = os.urandom(3 * part)
    s = _session(blob_store, data, part)
    with s.open_part(0, "cccc0003") as w:
        w.write(data[:part])
        w.commit()
    assert s.committed_size() == part
    other_sha = UploadSession(blob_store, "routeviews", NAME, "0" * 64, len(data), part_size=part)
    other_size = UploadSession(blob_store, "routeviews", NAME, s.sha256, len(data) + 1, part_size=part)
    other_name = UploadSession(blob_store, "routeviews", NAME + ".x", s.sha256, len(data), part_size=part)
    other_project = UploadSession(blob_store, "ris", NAME, s.sha256, len(data), part_size=part)
    for o in (other_sha, other_size, other_name, other_project):
        assert o.id != s.id
        assert o.committed_size() == 0 and o.parts() == []


@pytest.mark.parametrize(
    "filename",
    [
        NAME,
        "bgpdata/" + "a" * 900,  # near the key length limit: the part key does not grow
        "route-views2/bgpdata/..x/...y/=@,+-",  # odd but valid characters
    ],
)
def test_part_keys_cannot_leave_the_prefix(blob_store: BlobStore, filename: str) -> None:
    s = UploadSession(blob_store, "routeviews", filename, "ab" * 32, 10 << 20, part_size=1 << 20)
    key = s.part_key(3 << 20, "0123abcd")
    assert key.startswith(PREFIX) and "/" not in key[len(PREFIX) :]
    assert staging.parse_part_key(key) == (s.id, 3 << 20, "0123abcd")
    assert len(key) < 120
    with s.open_part(0, "0123abcd") as w:
        w.write(b"x")
        w.commit()
    assert [i.key for i in blob_store.list()] == [s.part_key(0, "0123abcd")]


@pytest.mark.parametrize(
    ("project", "filename", "sha"),
    [
        ("routeviews", "../../etc/passwd", "ab" * 32),
        ("routeviews", "/abs/path", "ab" * 32),
        ("../x", NAME, "ab" * 32),
        ("routeviews", NAME, "../" * 21 + "a"),
        ("routeviews", NAME, "AB" * 32),
    ],
)
def test_sessions_refuse_what_is_not_a_key(
    blob_store: BlobStore, project: str, filename: str, sha: str
) -> None:
    with pytest.raises(ValueError):  # InvalidKey is a ValueError
        UploadSession(blob_store, project, filename, sha, 100)


def test_part_keys_refuse_bad_writers_and_offsets(blob_store: BlobStore) -> None:
    s = UploadSession(blob_store, "routeviews", NAME, "ab" * 32, 1000, part_size=100)
    for writer in ("../x", "ABCDEF12", "12", "x" * 40):
        with pytest.raises(ValueError):
            s.part_key(0, writer)
    for start in (-1, 1000, 10**16):
        with pytest.raises(ValueError):
            s.part_key(start, "0123abcd")


def test_collect_abandoned_keeps_recent_sessions(blob_store: BlobStore) -> None:
    old = UploadSession(blob_store, "routeviews", NAME, "11" * 32, 300, part_size=100)
    new = UploadSession(blob_store, "routeviews", NAME, "22" * 32, 300, part_size=100)
    for s in (old, new):
        for start in (0, 100):
            with s.open_part(start, "dddd0004") as w:
                w.write(b"z" * 100)
                w.commit()
    put(blob_store, KEY, b"an archive object")
    # Nothing is an hour old yet: nothing goes.
    assert staging.collect_abandoned(blob_store, max_age_s=3600) == 0
    # "new" gets one more part later: a session's age is that of its newest part, so
    # a limit between the two times takes "old" (both parts) and keeps all of "new".
    old_newest = max(p.updated for p in old.parts())
    time.sleep(0.3)
    with new.open_part(200, "dddd0004") as w:
        w.write(b"z" * 100)
        w.commit()
    fresh = max(p.updated for p in new.parts())
    assert fresh > old_newest
    now = fresh + 3600
    limit = (old_newest + fresh) / 2
    assert staging.collect_abandoned(blob_store, max_age_s=now - limit, now=now) == 2
    assert old.parts() == [] and new.committed_size() == 300
    assert read(blob_store, KEY) == b"an archive object"


def test_part_size_grows_for_huge_files() -> None:
    mib = 1 << 20
    assert staging.part_size_for(200 * mib) == 16 * mib
    big = staging.part_size_for(64 << 30)
    assert big % mib == 0 and (64 << 30) / big <= staging.MAX_PARTS
    with pytest.raises(ValueError):
        staging.part_size_for(10, 0)
