"""The `rvcloud` subcommands: help texts, status, list, convert, query, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from rvcloud.cli.main import main
from rvcloud.v1 import gateway_pb2
from tests.cli.fake_gateway import Gateway

NAME = "route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2"


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (
            "upload",
            ["-f", "--destination", "--project", "--filename", "--no-wait", "--json", "--timeout", "--quiet"],
        ),
        ("status", ["--destination", "--project", "FILENAME", "--json"]),
        (
            "list",
            ["--collector", "--type", "--status", "--since", "--until", "--page-size", "--all", "--json"],
        ),
        ("convert", ["FILE", "--format", "--output", "--project", "--filename"]),
        ("local", ["--data-dir", "--listen", "--converters", "--log-dir"]),
        ("query", ["--data-dir", "--warehouse", "SQL", "--json"]),
    ],
)
def test_help(command: str, options: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    for opt in options:
        assert opt in out, opt


def test_top_level_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for command in ("upload", "status", "list", "convert", "local", "query"):
        assert command in out


def test_upload_subcommand_shares_upload_to_cloudz(gateway: Gateway, tmp_path: Path) -> None:
    f = tmp_path / NAME
    f.parent.mkdir(parents=True)
    f.write_bytes(b"mrt")
    assert main(["upload", "-f", str(f), "-d", gateway.address, "--no-wait", "-q"]) == 0
    assert gateway.fake.uploads[0].header.filename == NAME


def _full_record() -> gateway_pb2.FileStatus:
    return gateway_pb2.FileStatus(
        project="routeviews",
        filename=NAME,
        status=gateway_pb2.STATUS_DONE,
        stage="loaded",
        collector="route-views.jinx",
        mrt_type="RIB",
        content_encoding="bzip2",
        size=12_345_678,
        sha256="ab" * 32,
        file_time=1401487200,
        created_at=1700000000.5,
        updated_at=1700000012.0,
        bytes_received=12_345_678,
        raw_uri="file:///data/blobs/raw/x",
        avro_uris=["file:///data/blobs/avro/a.avro", "file:///data/blobs/avro/b.avro"],
        records_read=503_600,
        rows_by_type={"RIB": 503_590},
        skipped_by_reason={"unsupported_afi": 10},
        first_errors=["record 7: truncated"],
        warehouse_tables=["ribs"],
        load_id="load-1",
        attempts=1,
    )


def test_status_human(gateway: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    gateway.fake.records[("routeviews", NAME)] = _full_record()
    assert main(["status", "-d", gateway.address, NAME]) == 0
    out = capsys.readouterr().out
    for text in [
        "status:",
        "DONE",
        "stage:",
        "route-views.jinx",
        "RIB",
        "bzip2",
        "11.8 MiB (12,345,678 bytes)",
        "ab" * 32,
        "2014-05-30T22:00:00Z",
        "2023-11-14T22:13:20.500Z",
        "503,590 rows (RIB 503,590)",
        "unsupported_afi 10",
        "record 7: truncated",
        "b.avro",
        "ribs",
        "load-1",
        "records read:",
        "attempts:",
    ]:
        assert text in out, text


def test_status_json(gateway: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    gateway.fake.records[("routeviews", NAME)] = _full_record()
    assert main(["status", "-d", gateway.address, "--json", NAME]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "DONE" and doc["load_id"] == "load-1"


def test_status_of_a_failed_file_exits_1(gateway: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    rec = _full_record()
    rec.status = gateway_pb2.STATUS_FAILED
    rec.error = "converting: not an MRT file"
    gateway.fake.records[("routeviews", NAME)] = rec
    assert main(["status", "-d", gateway.address, NAME]) == 1
    assert "not an MRT file" in capsys.readouterr().out
    assert main(["status", "-d", gateway.address, "--json", NAME]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "FAILED"


def test_status_not_found(gateway: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "-d", gateway.address, "nope/bgpdata/x.bz2"]) == 1
    assert "not found" in capsys.readouterr().err


def _page(names: list[str], token: str = "") -> gateway_pb2.ListFilesResponse:
    return gateway_pb2.ListFilesResponse(
        files=[
            gateway_pb2.FileStatus(
                filename=n,
                status=gateway_pb2.STATUS_DONE,
                stage="loaded",
                rows_by_type={"RIB": 1500},
                size=2048,
            )
            for n in names
        ],
        next_page_token=token,
    )


def test_list_pages_and_filters(gateway: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    gateway.fake.pages = {"": _page(["a", "b"], "t1"), "t1": _page(["c"])}
    argv = ["list", "-d", gateway.address, "--collector", "route-views2", "--type", "rib", "--status", "done"]
    argv += ["--since", "2024-01-01", "--until", "2024-01-31", "--page-size", "2", "--all"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["FILENAME", "STATUS", "STAGE", "ROWS", "SIZE"]
    assert [line.split()[0] for line in lines[1:]] == ["a", "b", "c"]
    assert "1,500" in lines[1] and "2.0 KiB" in lines[1]
    first, second = gateway.fake.list_requests
    assert (first.collector, first.mrt_type, first.status, first.page_size) == (
        "route-views2",
        "RIB",
        "DONE",
        2,
    )
    assert first.file_time_from == 1704067200  # 2024-01-01T00:00Z
    assert first.file_time_to == 1706745600  # 2024-02-01T00:00Z: the 31st is included
    assert second.page_token == "t1"


def test_list_one_page_without_all(gateway: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    gateway.fake.pages = {"": _page(["a"], "t1"), "t1": _page(["b"])}
    assert main(["list", "-d", gateway.address, "--json", "--since", "2024-01-01T06:00+02:00"]) == 0
    out, err = capsys.readouterr()
    assert [d["filename"] for d in json.loads(out)] == ["a"]
    assert "--all" in err
    assert gateway.fake.list_requests[0].file_time_from == 1704081600  # 04:00 UTC
    assert not gateway.fake.list_requests[0].HasField("file_time_to")


def test_list_bad_date_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["list", "-d", "localhost:1", "--since", "yesterday"])
    assert e.value.code == 2


@pytest.fixture
def fake_converter(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []

    def convert_local_file(
        path: str, out_dir: str, fmt: str, project: str, archive_path: str | None
    ) -> dict[str, Any]:
        calls.append((path, out_dir, fmt, project, archive_path))
        if "bad" in path:
            raise ValueError("not an MRT file")
        return {"file": path, "records_read": 3, "rows_by_type": {"RIB": 3}, "outputs": [f"{out_dir}/x.avro"]}

    module = types.ModuleType("rvcloud.converter_worker.convert")
    module.convert_local_file = convert_local_file  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rvcloud.converter_worker.convert", module)
    return calls


def test_convert_continues_after_a_failure(
    fake_converter: list[tuple[Any, ...]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = tmp_path / "good.bz2", tmp_path / "bad.bz2"
    good.write_bytes(b"x")
    bad.write_bytes(b"y")
    out_dir = tmp_path / "out"
    assert main(["convert", str(bad), str(good), "--format", "ndjson", "-o", str(out_dir)]) == 1
    out, err = capsys.readouterr()
    [summary] = [json.loads(line) for line in out.splitlines()]
    assert summary["file"] == str(good)
    assert "not an MRT file" in err and str(bad) in err
    assert [c[2:] for c in fake_converter] == [("ndjson", "routeviews", None)] * 2
    assert out_dir.is_dir()


def test_convert_filename_only_with_one_file(fake_converter: list[tuple[Any, ...]], tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"")
    b.write_bytes(b"")
    assert main(["convert", str(a), str(b), "-o", str(tmp_path), "--filename", "x/bgpdata/y"]) == 2
    assert (
        main(["convert", str(a), "-o", str(tmp_path), "--filename", "x/bgpdata/y", "--project", "ris"]) == 0
    )
    assert fake_converter == [(str(a), str(tmp_path), "avro", "ris", "x/bgpdata/y")]


def test_convert_missing_file_fails_and_others_still_convert(
    fake_converter: list[tuple[Any, ...]], tmp_path: Path
) -> None:
    present = tmp_path / "a.bz2"
    present.write_bytes(b"x")
    assert main(["convert", str(tmp_path / "missing.bz2"), str(present), "-o", str(tmp_path / "o")]) == 1
    assert [c[0] for c in fake_converter] == [str(present)]


def test_convert_refuses_inputs_with_one_name(fake_converter: list[tuple[Any, ...]], tmp_path: Path) -> None:
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "u.bz2").write_bytes(b"x")
    args = ["convert", str(tmp_path / "x/u.bz2"), str(tmp_path / "y/u.bz2"), "-o", str(tmp_path / "o")]
    assert main(args) == 2
    assert fake_converter == []


class FakeWarehouse:
    def __init__(self) -> None:
        self.closed = False
        self.sql: list[str] = []

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        self.sql.append(sql)
        return [("route-views2", 10, None), ("route-views.jinx", 2, 1.5)]

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_warehouse(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeWarehouse, list[str]]:
    wh = FakeWarehouse()
    urls: list[str] = []
    module = types.ModuleType("rvcloud.backends.factory")

    def open_blob_store(url: str) -> str:
        urls.append(url)
        return "blobs"

    def open_warehouse(url: str, blobs: object) -> FakeWarehouse:
        urls.append(url)
        return wh

    module.open_blob_store = open_blob_store  # type: ignore[attr-defined]
    module.open_warehouse = open_warehouse  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rvcloud.backends.factory", module)
    return wh, urls


def test_query_table_and_json(
    fake_warehouse: tuple[FakeWarehouse, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wh, urls = fake_warehouse
    (tmp_path / "x.duckdb").write_bytes(b"")
    assert (
        main(["query", "--data-dir", str(tmp_path), "SELECT collector, count(*) FROM ribs GROUP BY 1"]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out == ["route-views2      10  NULL", "route-views.jinx  2   1.5"]
    assert urls == [f"file://{tmp_path}/blobs", f"duckdb://{tmp_path}/warehouse.duckdb"]
    assert wh.closed
    assert (
        main(
            [
                "query",
                "--warehouse",
                f"duckdb://{tmp_path}/x.duckdb",
                "--json",
                "  with t as (select 1) select * from t",
            ]
        )
        == 0
    )
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()][1] == [
        "route-views.jinx",
        2,
        1.5,
    ]
    assert urls[-1] == f"duckdb://{tmp_path}/x.duckdb"


def test_query_refuses_writes(
    fake_warehouse: tuple[FakeWarehouse, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["query", "--data-dir", str(tmp_path), "DELETE FROM ribs"]) == 2
    assert main(["query", "--data-dir", str(tmp_path), "SELEC 1"]) == 2  # a typo is named as such
    err = capsys.readouterr().err
    assert "'DELETE' does not start a read-only query" in err and "'SELEC' does not start" in err
    assert fake_warehouse[0].sql == []


def test_cli_imports_no_server_packages() -> None:
    code = (
        "import sys\n"
        "import rvcloud.cli.main, rvcloud.cli.upload\n"
        "bad = [m for m in ('fastavro', 'duckdb', 'pyarrow') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_python_dash_m_runs(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "rvcloud.cli", "status", "-d", "ftp://x:1", "f"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "unsupported scheme" in r.stderr


@pytest.mark.parametrize("args", [["--converters", "0"], ["--listen", "https://h:1"], ["--listen", "nohost"]])
def test_local_usage_errors(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "--data-dir", str(tmp_path / "d"), *args]) == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()  # nothing started or created
