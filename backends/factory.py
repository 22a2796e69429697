"""Open a backend from its URL: the one place that maps URL schemes to implementations.

Embedded backends (this module):

- blob store:   ``file:///abs/dir`` (or ``file://relative/dir``)
- event bus:    ``memory://[name]`` (in-process; the same name gives the same bus),
                ``sqlite:///path/bus.db[?lease=30&poll=0.1&backoff=1]``
- status store: ``sqlite:///path/status.db``
- warehouse:    ``duckdb:///path/warehouse.duckdb[?lock_timeout=60]``

Paths are ``netloc + path`` of the URL, so ``sqlite:///tmp/x.db`` is ``/tmp/x.db`` and
``sqlite://x.db`` is ``x.db`` relative to the working directory (unlike SQLAlchemy).
Cloud backends (each class has ``from_url``; emulators are found through the usual
``STORAGE_EMULATOR_HOST``, ``PUBSUB_EMULATOR_HOST``, ``DATASTORE_EMULATOR_HOST`` and
``BIGQUERY_EMULATOR_HOST`` variables):

- blob store:   ``gs://BUCKET[/PREFIX]``
- event bus:    ``pubsub://PROJECT[?subscription_suffix=NAME]``
- status store: ``datastore://PROJECT[?namespace=NS]``
- warehouse:    ``bigquery://PROJECT/DATASET[?location=US]``
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

from rvcloud.backends.blob.base import BlobStore
from rvcloud.backends.bus.base import EventBus
from rvcloud.backends.bus.memory import MemoryBus
from rvcloud.backends.warehouse.base import Warehouse
from rvcloud.metadata.store import StatusStore

_memory_buses: dict[str, MemoryBus] = {}
_memory_lock = threading.Lock()


def _unknown(kind: str, url: str, supported: str) -> ValueError:
    return ValueError(f"unsupported {kind} URL {url!r}: expected {supported}")


def _local_path(url: str) -> str:
    parts = urlsplit(url)
    netloc = "" if parts.netloc == "localhost" else parts.netloc
    path = unquote(netloc + parts.path)
    if not path:
        raise ValueError(f"URL {url!r} names no path")
    return path


def _query_floats(url: str, allowed: set[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, vs in parse_qs(urlsplit(url).query, strict_parsing=False).items():
        if k not in allowed:
            raise ValueError(f"URL {url!r}: unknown parameter {k!r} (allowed: {sorted(allowed)})")
        try:
            out[k] = float(vs[-1])
        except ValueError as e:
            raise ValueError(f"URL {url!r}: parameter {k!r} must be a number") from e
    return out


def open_blob_store(url: str) -> BlobStore:
    scheme = urlsplit(url).scheme
    if scheme == "file":
        from rvcloud.backends.blob.file import FileBlobStore

        return FileBlobStore(_local_path(url))
    if scheme == "gs":
        from rvcloud.backends.blob.gcs import GcsBlobStore

        return GcsBlobStore.from_url(url)
    raise _unknown("blob store", url, "file:///abs/dir or gs://BUCKET[/PREFIX]")


def open_event_bus(url: str) -> EventBus:
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        params = _query_floats(url, {"backoff"})
        name = urlsplit(url).netloc + urlsplit(url).path
        # One bus per name and process, so a gateway and workers opened separately
        # from the same URL in one process talk to each other.
        with _memory_lock:
            bus = _memory_buses.get(name)
            if bus is None or bus.closed:
                bus = _memory_buses[name] = MemoryBus(**params)
            return bus
    if scheme == "sqlite":
        from rvcloud.backends.bus.sqlite import SqliteBus

        return SqliteBus(_local_path(url), **_query_floats(url, {"lease", "poll", "backoff"}))
    if scheme == "pubsub":
        from rvcloud.backends.bus.pubsub import PubSubBus

        return PubSubBus.from_url(url)
    raise _unknown("event bus", url, "memory://[name], sqlite:///path/bus.db or pubsub://PROJECT")


def open_status_store(url: str) -> StatusStore:
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from rvcloud.metadata.sqlite import SqliteStatusStore

        if urlsplit(url).query:
            raise ValueError(f"status store URL {url!r} takes no parameters")
        return SqliteStatusStore(_local_path(url))
    if scheme == "datastore":
        from rvcloud.metadata.datastore import DatastoreStatusStore

        return DatastoreStatusStore.from_url(url)
    raise _unknown("status store", url, "sqlite:///path/status.db or datastore://PROJECT")


def blob_opener(blobs: BlobStore) -> Callable[[str], BinaryIO]:
    """open_uri for a warehouse: opens objects of ``blobs`` by their URI."""

    def open_uri(uri: str) -> BinaryIO:
        return blobs.open(blobs.key_for_uri(uri))

    return open_uri


def open_warehouse(url: str, blobs: BlobStore) -> Warehouse:
    scheme = urlsplit(url).scheme
    if scheme == "duckdb":
        from rvcloud.backends.warehouse.duckdb import DuckDBWarehouse

        params = _query_floats(url, {"lock_timeout", "query_lock_timeout"})
        return DuckDBWarehouse(_local_path(url), blob_opener(blobs), **params)
    if scheme == "bigquery":
        from rvcloud.backends.warehouse.bigquery import BigQueryWarehouse

        return BigQueryWarehouse.from_url(url)
    raise _unknown("warehouse", url, "duckdb:///path/warehouse.duckdb or bigquery://PROJECT/DATASET")
