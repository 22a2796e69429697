"""Fixtures for the BigQuery/Datastore specifics: a fresh dataset, bucket or namespace per
test on the session's emulators (tests/emulators.py starts them)."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from typing import Any

import fastavro
import pytest

from rvcloud.backends.blob.gcs import GcsBlobStore
from rvcloud.backends.warehouse.bigquery import BigQueryWarehouse
from rvcloud.metadata.datastore import DatastoreStatusStore
from rvcloud.mrt.schema import avro_schema
from tests.emulators import (  # noqa: F401 -- registers the emulator fixtures
    bigquery_emulator,
    datastore_emulator,
    emulator_manager,
    gcs_emulator,
)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@pytest.fixture
def gcs(request: pytest.FixtureRequest) -> GcsBlobStore:
    request.getfixturevalue("gcs_emulator")
    store = GcsBlobStore.from_url(f"gs://{unique('bq-')}")
    store.ensure_bucket()
    return store


@pytest.fixture
def bq(request: pytest.FixtureRequest) -> Iterator[BigQueryWarehouse]:
    request.getfixturevalue("bigquery_emulator")
    wh = BigQueryWarehouse.from_url(f"bigquery://{os.environ['GOOGLE_CLOUD_PROJECT']}/{unique('bq_')}")
    wh.ensure_tables()
    yield wh
    wh.close()


@pytest.fixture
def ds(request: pytest.FixtureRequest) -> Iterator[DatastoreStatusStore]:
    request.getfixturevalue("datastore_emulator")
    store = DatastoreStatusStore.from_url(
        f"datastore://{os.environ['GOOGLE_CLOUD_PROJECT']}?namespace={unique('ns')}"
    )
    yield store
    store.close()


def put_avro(store: GcsBlobStore, key: str, table: str, rows: list[dict[str, Any]]) -> str:
    """Write rows as the converter does (deflate, logical types); returns the gs:// URI."""
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(avro_schema(table)), rows, codec="deflate")
    with store.writer(key, content_type="application/avro") as w:
        w.write(buf.getvalue())
        w.commit()
    return store.uri(key)
