"""Blob store conformance: every BlobStore implementation must pass these."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

from rvcloud.backends.blob.base import BlobNotFound, BlobStore
from rvcloud.metadata.archive_path import InvalidKey
from tests.conformance.conformance_support import BlobBackend

KEY = "route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2"


def put(store: BlobStore, key: str, data: bytes, **kw: object) -> None:
    with store.writer(key, **kw) as w:  # type: ignore[arg-type]
        w.write(data)
        w.commit()


def read(store: BlobStore, key: str) -> bytes:
    with store.open(key) as f:
        return f.read()


@pytest.mark.parametrize("size", [0, 1, 1000, 70_000])
def test_round_trip(blob_store: BlobStore, size: int) -> None:
    data = os.urandom(size)
    put(blob_store, KEY, data)
    assert read(blob_store, KEY) == data
    info = blob_store.stat(KEY)
    assert (info.key, info.size) == (KEY, size)
    assert blob_store.exists(KEY)


def test_five_mib_streamed_in_chunks(blob_backend: BlobBackend) -> None:
    store = blob_backend.store
    h = hashlib.sha256()
    total = 0
    with store.writer(KEY) as w:
        # Odd chunk sizes and memoryviews, as the gateway passes them on.
        for i in range(80):
            chunk = os.urandom(65_536 + (i % 7))
            h.update(chunk)
            total += len(chunk)
            w.write(memoryview(chunk) if i % 2 else chunk)
        assert blob_backend.temp_files(), "a write in progress should be streamed to a temp object"
        info = w.commit()
    assert total > 5 * 1024 * 1024
    assert info.size == total
    assert store.stat(KEY).size == total
    got = hashlib.sha256()
    with store.open(KEY) as f:
        while chunk := f.read(1 << 20):
            got.update(chunk)
    assert got.hexdigest() == h.hexdigest()
    assert blob_backend.temp_files() == []


def test_nothing_visible_before_commit(blob_store: BlobStore) -> None:
    w = blob_store.writer(KEY)
    w.write(b"partial")
    assert not blob_store.exists(KEY)
    assert list(blob_store.list()) == []
    with pytest.raises(BlobNotFound):
        blob_store.open(KEY)
    with pytest.raises(BlobNotFound):
        blob_store.stat(KEY)
    w.write(b" and the rest")
    w.commit()
    assert read(blob_store, KEY) == b"partial and the rest"
    assert [i.key for i in blob_store.list()] == [KEY]


def test_abort_leaves_nothing(blob_backend: BlobBackend) -> None:
    store = blob_backend.store
    w = store.writer(KEY)
    w.write(os.urandom(10_000))
    w.abort()
    w.abort()  # twice is fine
    assert not store.exists(KEY)
    assert blob_backend.temp_files() == []
    with pytest.raises(ValueError):
        w.write(b"more")


def test_exception_in_with_block_aborts(blob_backend: BlobBackend) -> None:
    store = blob_backend.store
    with pytest.raises(RuntimeError), store.writer(KEY) as w:
        w.write(b"x" * 1000)
        raise RuntimeError("client went away")
    assert not store.exists(KEY)
    assert blob_backend.temp_files() == []


def test_abort_after_commit_is_noop(blob_backend: BlobBackend) -> None:
    store = blob_backend.store
    with store.writer(KEY) as w:
        w.write(b"kept")
        w.commit()
        w.abort()
    assert read(store, KEY) == b"kept"
    assert blob_backend.temp_files() == []


def test_aborted_replace_keeps_old_version(blob_store: BlobStore) -> None:
    put(blob_store, KEY, b"old", content_type="text/plain", metadata={"v": "1"})
    with pytest.raises(RuntimeError), blob_store.writer(KEY, metadata={"v": "2"}) as w:
        w.write(b"new")
        raise RuntimeError
    assert read(blob_store, KEY) == b"old"
    assert blob_store.stat(KEY).metadata == {"v": "1"}


def test_replace_is_atomic(blob_store: BlobStore) -> None:
    # Version i is 200 kB of byte i: a reader must only ever see one whole version.
    size = 200_000
    put(blob_store, KEY, bytes([0]) * size)
    stop = threading.Event()
    seen: set[int] = set()
    errors: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            data = read(blob_store, KEY)
            if len(data) != size or data.count(data[0]) != size:
                errors.append(f"torn read: len={len(data)}")
                return
            seen.add(data[0])

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(1, 30):
            with blob_store.writer(KEY) as w:
                w.write(bytes([i]) * (size // 2))
                # Half-written: the reader still sees the previous complete version.
                assert read(blob_store, KEY) == bytes([i - 1]) * size
                w.write(bytes([i]) * (size // 2))
                w.commit()
    finally:
        stop.set()
        t.join()
    assert errors == []
    assert read(blob_store, KEY) == bytes([29]) * size
    assert len(seen) > 1  # the reader really ran concurrently with replaces
    assert [i.key for i in blob_store.list()] == [KEY]


def test_metadata_and_content_type_round_trip(blob_store: BlobStore) -> None:
    md = {"sha256": "ab" * 32, "project": "routeviews", "empty": ""}
    with blob_store.writer(KEY, content_type="application/x-bzip2", metadata=md) as w:
        w.write(b"BZh9")
        info = w.commit()
    assert (info.content_type, dict(info.metadata), info.size) == ("application/x-bzip2", md, 4)
    assert info.uri == blob_store.uri(KEY)
    st = blob_store.stat(KEY)
    assert (st.content_type, dict(st.metadata)) == ("application/x-bzip2", md)
    (listed,) = list(blob_store.list())
    assert (listed.content_type, dict(listed.metadata), listed.size) == ("application/x-bzip2", md, 4)
    # Replacing replaces the metadata too; nothing of the old version lingers.
    put(blob_store, KEY, b"12345")
    st = blob_store.stat(KEY)
    assert (st.content_type, dict(st.metadata), st.size) == ("application/octet-stream", {}, 5)


def test_list_by_prefix(blob_store: BlobStore) -> None:
    keys = ["a/b/c", "a/b.x", "a.b", "ab", "a/c", "b/a", "route-views2/bgpdata/x"]
    for i, k in enumerate(keys):
        put(blob_store, k, b"x" * i)
    assert [i.key for i in blob_store.list()] == sorted(keys)
    assert [i.key for i in blob_store.list("a/")] == ["a/b.x", "a/b/c", "a/c"]
    assert [i.key for i in blob_store.list("a")] == sorted(["a/b/c", "a/b.x", "a.b", "ab", "a/c"])
    assert [i.key for i in blob_store.list("a/b")] == ["a/b.x", "a/b/c"]
    assert [i.key for i in blob_store.list("route-views2/")] == ["route-views2/bgpdata/x"]
    assert list(blob_store.list("zzz")) == []
    sizes = {i.key: i.size for i in blob_store.list()}
    assert sizes == {k: i for i, k in enumerate(keys)}


def test_delete(blob_store: BlobStore) -> None:
    put(blob_store, KEY, b"x")
    put(blob_store, "other", b"y")
    blob_store.delete(KEY)
    blob_store.delete(KEY)  # absent: no error
    assert not blob_store.exists(KEY)
    with pytest.raises(BlobNotFound):
        blob_store.open(KEY)
    with pytest.raises(KeyError):  # BlobNotFound is a KeyError
        blob_store.stat(KEY)
    assert [i.key for i in blob_store.list()] == ["other"]


def test_uri_round_trip(blob_store: BlobStore) -> None:
    put(blob_store, KEY, b"data")
    uri = blob_store.uri(KEY)
    assert blob_store.key_for_uri(uri) == KEY
    with blob_store.open(blob_store.key_for_uri(uri)) as f:
        assert f.read() == b"data"
    with pytest.raises(ValueError):
        blob_store.key_for_uri("s3://elsewhere/" + KEY)


def test_open_is_a_buffered_stream(blob_store: BlobStore) -> None:
    data = os.urandom(100_000)
    put(blob_store, KEY, data)
    with blob_store.open(KEY) as f:
        assert f.read(10) == data[:10]
        buf = bytearray(20)
        assert f.readinto(buf) == 20  # type: ignore[attr-defined]
        assert bytes(buf) == data[10:30]
        assert f.read() == data[30:]


BAD_KEYS = [
    "",
    "../x",
    "a/../../x",
    "/etc/passwd",
    "a//b",
    "a/./b",
    "./a",
    "a/..",
    "a\\b",
    "a/",
    "a b",
    "a\nb",
    "a\x00b",
    "a\x7fb",
    "a%2e",
    "ä",
    "x" * 1025,
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_rejected(blob_store: BlobStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        blob_store.writer(key)
    with pytest.raises(InvalidKey):
        blob_store.open(key)
    with pytest.raises(InvalidKey):
        blob_store.stat(key)
    with pytest.raises(InvalidKey):
        blob_store.delete(key)
    with pytest.raises(InvalidKey):
        blob_store.uri(key)


def test_longest_valid_key(blob_store: BlobStore) -> None:
    key = "/".join(["y" * 200] * 5) + "/" + "z" * 19  # 1024 bytes
    assert len(key) == 1024
    put(blob_store, key, b"long")
    assert read(blob_store, key) == b"long"
