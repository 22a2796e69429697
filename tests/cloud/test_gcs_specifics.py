"""GcsBlobStore behaviour beyond the conformance suite, against fake-gcs-server.

Emulator gaps these tests work around (fake-gcs-server v1.54):

- ``ifGenerationMatch`` is enforced only on multipart uploads, not on resumable ones;
  the precondition tests therefore use objects under one chunk (our writer sends those
  as one multipart request). On real GCS the resumable path carries the same condition.
- A resumable-upload status query (``Content-Range: bytes */*``) *finalises* the upload
  there, so the retry test answers status queries itself (see ``FlakyHttp``).
- It does not validate CRC32C itself; our own check is tested by corrupting what the
  server reports.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tracemalloc
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from rvcloud.backends.blob.base import BlobNotFound
from rvcloud.backends.blob.gcs import (
    BlobChecksumMismatch,
    GcsBlobStore,
    StaleReplace,
    _GcsReader,
    check_crc32c,
    crc32c_b64,
    new_crc32c,
)
from rvcloud.metadata.archive_path import InvalidKey
from tests.emulators import Emulator

MiB = 1 << 20


def crc(data: bytes) -> bytes:
    c = new_crc32c()
    c.update(data)
    return bytes(c.digest())


@pytest.fixture
def store(gcs_emulator: Emulator) -> Iterator[GcsBlobStore]:
    s = GcsBlobStore.from_url(f"gs://t-{uuid.uuid4().hex[:12]}/archive/v1?chunk_size={MiB}")
    s.ensure_bucket()
    yield s


def put(store: GcsBlobStore, key: str, data: bytes, **kw: Any) -> None:
    with store.writer(key, **kw) as w:
        w.write(data)
        w.commit()


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("rib.20140530.2200.bz2", "application/x-bzip2"),
        ("updates.20260222.1530.gz", "application/gzip"),
        ("rib.20140530.2200", "application/octet-stream"),
    ],
)
def test_raw_objects_keep_metadata_and_content_type(
    store: GcsBlobStore, name: str, content_type: str
) -> None:
    key = f"routeviews/route-views2/bgpdata/2014.05/RIBS/{name}"
    md = {"sha256": "ab" * 32, "project": "routeviews", "archive-path": "bgpdata/x"}
    put(store, key, b"payload", content_type=content_type, metadata=md)
    blob = store.client.bucket(store.bucket_name).get_blob(f"archive/v1/{key}")
    assert blob.content_type == content_type
    assert blob.metadata == md  # x-goog-meta-*
    assert blob.content_encoding is None  # never set: no transcoding, ever
    assert blob.crc32c == crc32c_b64(crc(b"payload"))
    assert store.stat(key).content_type == content_type


def test_gzip_object_downloads_byte_identical(store: GcsBlobStore) -> None:
    raw = gzip.compress(os.urandom(50_000) + b"\n" * 50_000)
    key = "routeviews/bgpdata/2026.02/UPDATES/updates.20260222.1530.gz"
    put(store, key, raw, content_type="application/gzip")
    blob = store.client.bucket(store.bucket_name).blob(f"archive/v1/{key}")
    assert blob.download_as_bytes() == raw  # the default path (sends Accept-Encoding: gzip)
    assert blob.download_as_bytes(raw_download=True) == raw
    with store.open(key) as f:
        assert f.read() == raw


def test_stale_replace_is_refused(store: GcsBlobStore) -> None:
    key = "a/file.bz2"
    put(store, key, b"v1")
    stale = store.writer(key)  # saw v1's generation
    put(store, key, b"v2 from someone else")
    stale.write(b"replayed v1'")
    with pytest.raises(StaleReplace, match="changed after the writer was opened"):
        stale.commit()
    with store.open(key) as f:
        assert f.read() == b"v2 from someone else"
    assert store.uploads_in_progress() == []


def test_create_if_absent_loses_to_a_concurrent_create(store: GcsBlobStore) -> None:
    key = "a/new.bz2"
    first = store.writer(key)  # object absent: ifGenerationMatch=0
    put(store, key, b"winner")
    first.write(b"loser")
    with pytest.raises(StaleReplace, match="it was absent"):
        first.commit()
    with store.open(key) as f:
        assert f.read() == b"winner"


def test_crc32c_check_function() -> None:
    good = crc(b"hello")
    check_crc32c(crc32c_b64(good), good, "x")
    check_crc32c(None, good, "x")  # nothing stored: nothing to compare
    with pytest.raises(BlobChecksumMismatch, match="CRC32C"):
        check_crc32c(crc32c_b64(b"\x00\x00\x00\x00"), good, "x")


def test_reader_detects_corruption_at_eof() -> None:
    data = os.urandom(1000)
    wrong = crc32c_b64(b"\x01\x02\x03\x04")
    r = io.BufferedReader(_GcsReader(lambda: (io.BytesIO(data), len(data), wrong), "gs://b/k"))
    with pytest.raises(BlobChecksumMismatch):
        r.read()
    right = crc32c_b64(crc(data))
    r = io.BufferedReader(_GcsReader(lambda: (io.BytesIO(data), len(data), right), "gs://b/k"))
    assert r.read() == data
    short = io.BufferedReader(_GcsReader(lambda: (io.BytesIO(data[:10]), len(data), right), "gs://b/k"))
    with pytest.raises(BlobChecksumMismatch, match="read 10 bytes"):
        short.read()


def test_writer_deletes_an_upload_whose_checksum_differs(
    store: GcsBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rvcloud.backends.blob import gcs

    real = gcs._GcsBlobWriter._multipart

    def corrupting(self: Any) -> dict[str, Any]:
        res = real(self)
        return {**res, "crc32c": crc32c_b64(b"\xde\xad\xbe\xef")}  # as if bytes changed in transit

    monkeypatch.setattr(gcs._GcsBlobWriter, "_multipart", corrupting)
    with pytest.raises(BlobChecksumMismatch, match="corrupted"):
        put(store, "a/corrupt", b"data")
    assert not store.exists("a/corrupt")


def test_large_streamed_upload_bounded_memory(store: GcsBlobStore) -> None:
    key = "big/rib.20140530.2200.bz2"
    h = hashlib.sha256()
    block = os.urandom(64 * 1024)
    tracemalloc.start()
    try:
        w = store.writer(key, content_type="application/x-bzip2")
        for i in range(320):  # 20 MiB, in gateway-sized pieces
            piece = bytes([i % 256]) + block[1:]
            h.update(piece)
            w.write(piece)
            if i == 100:
                # Several chunks are on the server, but the object does not exist yet.
                assert store.uploads_in_progress() == [key]
                assert not store.exists(key)
        info = w.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == 20 * MiB
    assert peak < 4 * MiB, f"writer held {peak} bytes (chunk is {MiB})"
    assert store.uploads_in_progress() == []
    got = hashlib.sha256()
    with store.open(key) as f:
        while chunk := f.read(3 * MiB):
            got.update(chunk)
    assert got.hexdigest() == h.hexdigest()


def test_abort_of_a_resumable_upload_leaves_nothing(store: GcsBlobStore) -> None:
    w = store.writer("x/partial")
    w.write(os.urandom(3 * MiB))
    assert store.uploads_in_progress() == ["x/partial"]
    w.abort()
    assert store.uploads_in_progress() == []
    assert not store.exists("x/partial")
    assert list(store.list()) == []


class FlakyHttp:
    """Forwards to the real session but fails the 2nd chunk once with 503, and answers
    status queries itself (fake-gcs would finalise the upload on one)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.puts = 0
        self.acked = 0
        self.failed = False
        self.status_queries = 0

    def put(self, url: str, data: bytes, headers: dict[str, str], timeout: Any) -> Any:
        if headers["Content-Range"] == "bytes */*":
            self.status_queries += 1
            return _Resp(308, {"Range": f"bytes=0-{self.acked - 1}"} if self.acked else {})
        self.puts += 1
        if self.puts == 2 and not self.failed:
            self.failed = True
            return _Resp(503, {})
        resp = self.real.put(url, data=data, headers=headers, timeout=timeout)
        if resp.status_code == 308 and resp.headers.get("Range"):
            self.acked = int(resp.headers["Range"].rsplit("-", 1)[1]) + 1
        return resp

    def delete(self, url: str, timeout: Any) -> Any:
        return self.real.delete(url, timeout=timeout)


class _Resp:
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status_code = status
        self.headers = headers
        self.text = ""


def test_resumable_chunk_is_retried_after_a_transient_error(
    store: GcsBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rvcloud.backends.blob import gcs

    monkeypatch.setattr(gcs.time, "sleep", lambda s: None)
    flaky = FlakyHttp(store.client._http)
    monkeypatch.setattr(store, "_http", lambda: flaky)
    data = os.urandom(3 * MiB + 123)
    put(store, "retry/obj", data)
    assert flaky.failed and flaky.status_queries == 1
    with store.open("retry/obj") as f:
        assert f.read() == data


def test_prefix_uri_listing_and_paging(gcs_emulator: Emulator) -> None:
    bucket = f"p-{uuid.uuid4().hex[:12]}"
    s = GcsBlobStore.from_url(f"gs://{bucket}/pre/fix?list_page_size=2")
    s.ensure_bucket()
    other = GcsBlobStore(bucket, "", s.client)
    put(other, "outside/x", b"not ours")
    keys = [f"k/{i:02d}" for i in range(7)]
    for k in keys:
        put(s, k, b"x")
    assert [i.key for i in s.list()] == keys  # 4 pages of 2
    assert [i.key for i in s.list("k/0")] == keys
    assert s.uri("k/01") == f"gs://{bucket}/pre/fix/k/01"
    assert s.key_for_uri(f"gs://{bucket}/pre/fix/k/01") == "k/01"
    with pytest.raises(ValueError):
        s.key_for_uri(f"gs://{bucket}/outside/x")
    with pytest.raises(InvalidKey):
        s.writer("y" * 1020)  # with the prefix, over GCS's 1024-byte name limit
    with pytest.raises(BlobNotFound):
        s.open("outside/x")


def test_from_url_rejects_bad_urls() -> None:
    with pytest.raises(ValueError):
        GcsBlobStore.from_url("s3://bucket")
    with pytest.raises(ValueError):
        GcsBlobStore.from_url("gs://bucket?bogus=1", client=object())
    with pytest.raises(ValueError):
        GcsBlobStore("bucket", "", object(), chunk_size=1000)
