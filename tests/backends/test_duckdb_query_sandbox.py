"""`rvcloud query` runs user SQL on the DuckDB warehouse: it must not reach other files."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from rvcloud.backends.blob.file import FileBlobStore
from rvcloud.backends.factory import blob_opener
from rvcloud.backends.warehouse.duckdb import DuckDBWarehouse


def test_query_cannot_read_or_write_other_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    wh = DuckDBWarehouse(tmp_path / "wh.duckdb", blob_opener(FileBlobStore(tmp_path / "b")))
    wh.ensure_tables()
    assert wh.query("SELECT count(*) FROM ribs") == [(0,)]
    with pytest.raises(duckdb.PermissionException):
        wh.query(f"SELECT * FROM read_csv('{secret}')")
    with pytest.raises(duckdb.Error):
        wh.query(f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'")
    assert not (tmp_path / "out.csv").exists()
