"""Backend factories for the conformance suites.

Every suite takes one fixture per backend kind, parametrised over the implementations
listed here; a new implementation (GCS, Pub/Sub, Datastore, BigQuery) is added by adding
a parameter and a factory branch, and then has to pass the same tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rvcloud.backends.blob.base import BlobStore
from rvcloud.backends.blob.file import FileBlobStore
from rvcloud.backends.bus.base import EventBus
from rvcloud.backends.bus.memory import MemoryBus
from rvcloud.backends.bus.sqlite import SqliteBus
from rvcloud.backends.factory import blob_opener
from rvcloud.backends.warehouse.base import Warehouse
from rvcloud.backends.warehouse.duckdb import DuckDBWarehouse
from rvcloud.metadata.sqlite import SqliteStatusStore
from rvcloud.metadata.store import StatusStore
from tests.conformance.conformance_support import BlobBackend
from tests.emulators import (  # noqa: F401 -- registers the emulator fixtures (see tests/emulators.py)
    bigquery_emulator,
    datastore_emulator,
    emulator_manager,
    gcs_emulator,
    pubsub_emulator,
)


def _unique(prefix: str) -> str:
    # Emulators live for the whole session: every test gets its own bucket/topic.
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["file", "gcs"])
def blob_backend(request: pytest.FixtureRequest, tmp_path: Path) -> BlobBackend:
    if request.param == "file":
        store = FileBlobStore(tmp_path / "blobs")
        tmp_dir = tmp_path / "blobs" / ".tmp"
        return BlobBackend(
            store, lambda: sorted(os.listdir(tmp_dir)), reopen=lambda: FileBlobStore(tmp_path / "blobs")
        )
    if request.param == "gcs":
        from rvcloud.backends.blob.gcs import GcsBlobStore

        request.getfixturevalue("gcs_emulator")  # started only when a gcs test runs
        # 1 MiB chunks, so the 5 MiB test really streams a multi-chunk resumable upload
        # (its "temp files" are the open upload sessions).
        url = f"gs://{_unique('rvc')}?chunk_size={1 << 20}"
        gcs = GcsBlobStore.from_url(url)
        gcs.ensure_bucket()
        return BlobBackend(gcs, gcs.uploads_in_progress, reopen=lambda: GcsBlobStore.from_url(url))
    raise AssertionError(request.param)


@pytest.fixture
def blob_store(blob_backend: BlobBackend) -> BlobStore:
    return blob_backend.store


@pytest.fixture(params=["memory", "sqlite", "pubsub"])
def event_bus(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventBus]:
    # Short back-offs and polls keep the suite fast; behaviour is the same.
    bus: EventBus
    if request.param == "memory":
        bus = MemoryBus(backoff=0.01)
    elif request.param == "sqlite":
        bus = SqliteBus(tmp_path / "bus.db", lease=5.0, poll=0.02, backoff=0.01)
    elif request.param == "pubsub":
        from rvcloud.backends.bus.pubsub import PubSubBus

        request.getfixturevalue("pubsub_emulator")
        # A fresh topic namespace per test (the emulator lives for the session; Pub/Sub
        # names need 3+ characters and a leading letter, the suite's topics are "t", "a").
        prefix = _unique("c") + "-"
        bus = PubSubBus.from_url(
            f"pubsub://{os.environ['GOOGLE_CLOUD_PROJECT']}?topic_prefix={prefix}&min_backoff=0"
        )
    else:
        raise AssertionError(request.param)
    yield bus
    bus.close()


@pytest.fixture(params=["sqlite", "datastore"])
def status_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StatusStore]:
    store: StatusStore
    if request.param == "sqlite":
        store = SqliteStatusStore(tmp_path / "status.db")
    elif request.param == "datastore":
        from rvcloud.metadata.datastore import DatastoreStatusStore

        request.getfixturevalue("datastore_emulator")
        # One namespace per test: the emulator lives for the whole session.
        ns = _unique("t")
        store = DatastoreStatusStore.from_url(
            f"datastore://{os.environ['GOOGLE_CLOUD_PROJECT']}?namespace={ns}"
        )
    else:
        raise AssertionError(request.param)
    yield store
    store.close()


@pytest.fixture(params=["duckdb", "bigquery"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path, blob_store: BlobStore) -> Iterator[Warehouse]:
    wh: Warehouse
    if request.param == "duckdb":
        wh = DuckDBWarehouse(tmp_path / "warehouse.duckdb", blob_opener(blob_store))
    elif request.param == "bigquery":
        from rvcloud.backends.warehouse.bigquery import BigQueryWarehouse

        request.getfixturevalue("bigquery_emulator")
        # BigQuery loads gs:// objects: the blob store is the GCS one (see
        # pytest_collection_modifyitems); one dataset per test.
        dataset = _unique("wh").replace("-", "_")
        wh = BigQueryWarehouse.from_url(f"bigquery://{os.environ['GOOGLE_CLOUD_PROJECT']}/{dataset}")
    else:
        raise AssertionError(request.param)
    wh.ensure_tables()
    yield wh
    wh.close()


# BigQuery can only load objects from GCS: a warehouse test pairing it with the file
# blob store describes no possible deployment, so it is deselected (reported as such
# in the summary), never run or skipped.
_IMPOSSIBLE = {("file", "bigquery")}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        pair = (params.get("blob_backend"), params.get("warehouse"))
        (drop if pair in _IMPOSSIBLE else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
