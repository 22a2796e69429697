"""upload-to-cloudz against the in-process fake gateway: chunks, header, skip, exit codes."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path

import grpc
import pytest

from rvcloud.cli.client import CHUNK_SIZE, UsageError, parse_endpoint
from rvcloud.cli.upload import upload_to_cloudz_main
from rvcloud.v1 import gateway_pb2
from tests.cli.fake_gateway import Gateway

ARCHIVE_PATH = "route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2"
DONE = gateway_pb2.STATUS_DONE
FAILED = gateway_pb2.STATUS_FAILED
IN_PROGRESS = gateway_pb2.STATUS_IN_PROGRESS


@pytest.fixture
def archive_file(tmp_path: Path) -> Path:
    """A 2.5 MiB file under a RouteViews-style directory, with varied bytes."""
    path = tmp_path / ARCHIVE_PATH
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(2 * CHUNK_SIZE + CHUNK_SIZE // 2))
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_chunks_reassemble_and_header_defaults(
    gateway: Gateway, archive_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = upload_to_cloudz_main(["-f", str(archive_file), "-d", gateway.address, "--no-wait"])
    assert code == 0
    [rec] = gateway.fake.uploads
    assert rec.chunk_sizes == [CHUNK_SIZE, CHUNK_SIZE, CHUNK_SIZE // 2]
    assert rec.data == archive_file.read_bytes()
    assert rec.header.filename == ARCHIVE_PATH
    assert rec.header.project == "routeviews"
    assert rec.header.sha256 == _sha(archive_file)
    assert rec.header.size == archive_file.stat().st_size
    assert rec.header.convert is True
    assert "stored " + ARCHIVE_PATH in capsys.readouterr().out


def test_filename_and_project_flags(gateway: Gateway, tmp_path: Path) -> None:
    f = tmp_path / "x.bz2"
    f.write_bytes(b"abc")
    name = "rrc00/2024.01/updates.20240101.0000.gz"
    assert (
        upload_to_cloudz_main(
            ["-f", str(f), "-d", gateway.address, "--project", "ris", "--filename", name, "--no-wait"]
        )
        == 0
    )
    [rec] = gateway.fake.uploads
    assert (rec.header.project, rec.header.filename, rec.chunk_sizes) == ("ris", name, [3])


def test_empty_file_sends_header_only(gateway: Gateway, tmp_path: Path) -> None:
    """The CLI refuses an empty file (a dump still being written); the upload function
    itself, which backfill and watch use after their own checks, sends a header only."""
    from rvcloud.cli.client import GatewayClient
    from rvcloud.cli.progress import make_progress
    from rvcloud.cli.upload import upload_file

    f = tmp_path / "route-views2" / "bgpdata" / "2024.01" / "UPDATES" / "updates.20240101.0000.bz2"
    f.parent.mkdir(parents=True)
    f.touch()
    assert upload_to_cloudz_main(["-f", str(f), "-d", gateway.address, "--no-wait", "-q"]) == 2
    assert gateway.fake.uploads == []
    with grpc.insecure_channel(gateway.address) as ch:
        name = "route-views2/bgpdata/2024.01/UPDATES/updates.20240101.0000.bz2"
        client = GatewayClient(ch)
        upload_file(client, str(f), "routeviews", name, wait=False, progress=make_progress(True), timeout=30)
    [rec] = gateway.fake.uploads
    assert rec.chunk_sizes == []
    assert rec.header.size == 0
    assert rec.header.sha256 == hashlib.sha256(b"").hexdigest()


def test_already_done_sends_nothing(
    gateway: Gateway, archive_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.fake.records[("routeviews", ARCHIVE_PATH)] = gateway_pb2.FileStatus(
        project="routeviews",
        filename=ARCHIVE_PATH,
        status=DONE,
        stage="loaded",
        sha256=_sha(archive_file),
        rows_by_type={"RIB": 42},
    )
    assert upload_to_cloudz_main(["-f", str(archive_file), "-d", gateway.address]) == 0
    assert gateway.fake.uploads == []
    out = capsys.readouterr().out
    assert "already done" in out and "42 rows" in out


def test_done_with_other_sha_is_uploaded_again(gateway: Gateway, archive_file: Path) -> None:
    gateway.fake.records[("routeviews", ARCHIVE_PATH)] = gateway_pb2.FileStatus(
        project="routeviews", filename=ARCHIVE_PATH, status=DONE, sha256="0" * 64
    )
    assert upload_to_cloudz_main(["-f", str(archive_file), "-d", gateway.address, "--no-wait"]) == 0
    assert len(gateway.fake.uploads) == 1


def test_server_side_already_done(
    gateway: Gateway, archive_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.fake.upload_reply = gateway_pb2.UploadResponse(
        file=gateway_pb2.FileStatus(project="routeviews", filename=ARCHIVE_PATH, status=DONE),
        already_done=True,
    )
    assert upload_to_cloudz_main(["-f", str(archive_file), "-d", gateway.address, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["already_done"] is True


def test_waits_through_stages_to_done(
    gateway: Gateway, archive_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.fake.script = [
        gateway_pb2.FileStatus(status=IN_PROGRESS, stage="converting"),
        gateway_pb2.FileStatus(status=IN_PROGRESS, stage="loading", records_read=7),
        gateway_pb2.FileStatus(status=DONE, stage="loaded", rows_by_type={"RIB": 503_590}),
    ]
    assert upload_to_cloudz_main(["-f", str(archive_file), "-d", gateway.address]) == 0
    out, err = capsys.readouterr()
    stages = [line.strip() for line in err.splitlines() if "→" in line]
    assert [s.split()[1] for s in stages] == ["stored", "converting", "loading", "DONE"]
    assert "503,590 rows (RIB 503,590)" in stages[-1]
    assert out.startswith("DONE " + ARCHIVE_PATH)


def test_failed_exits_1_with_error(
    gateway: Gateway, archive_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.fake.script = [
        gateway_pb2.FileStatus(
            status=FAILED, stage="converting", error="not an MRT file", first_errors=["offset 0: bad header"]
        )
    ]
    assert upload_to_cloudz_main(["-f", str(archive_file), "-d", gateway.address]) == 1
    out, err = capsys.readouterr()
    assert "FAILED" in out
    assert "error: not an MRT file" in err and "offset 0: bad header" in err


def test_json_output(gateway: Gateway, archive_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gateway.fake.script = [gateway_pb2.FileStatus(status=DONE, stage="loaded", rows_by_type={"RIB": 5})]
    assert upload_to_cloudz_main(["-f", str(archive_file), "-d", gateway.address, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)  # exactly one JSON document
    assert doc["status"] == "DONE"
    assert doc["filename"] == ARCHIVE_PATH
    assert doc["sha256"] == _sha(archive_file)
    assert doc["rows_by_type"] == {"RIB": 5}  # numbers, not proto JSON's int64 strings
    assert doc["already_done"] is False


def test_data_loss_is_permanent(
    gateway: Gateway, archive_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.fake.upload_abort = (
        grpc.StatusCode.DATA_LOSS,
        "sha256 mismatch for x at stage receiving, byte 2621440",
    )
    assert upload_to_cloudz_main(["-f", str(archive_file), "-d", gateway.address]) == 1
    assert "error: DATA_LOSS: sha256 mismatch" in capsys.readouterr().err
    assert len(gateway.fake.uploads) == 1  # the file did not change: permanent, not retried


def test_unavailable_from_server_exits_3(
    gateway: Gateway, archive_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.fake.upload_abort = (grpc.StatusCode.UNAVAILABLE, "blob store down")
    argv = [
        "-f",
        str(archive_file),
        "-d",
        gateway.address,
        "--retry-attempts",
        "3",
        "--retry-initial",
        "0.01",
    ]
    assert upload_to_cloudz_main(argv) == 3
    assert len(gateway.fake.uploads) == 3  # the transient error was retried twice, then reported
    err = capsys.readouterr().err
    assert "UNAVAILABLE" in err and "retry 2" in err


def test_wait_timeout_exits_3(
    gateway: Gateway, archive_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.fake.script = [gateway_pb2.FileStatus(status=IN_PROGRESS, stage="converting")]
    t0 = time.monotonic()
    assert upload_to_cloudz_main(["-f", str(archive_file), "-d", gateway.address, "--timeout", "1"]) == 3
    assert time.monotonic() - t0 < 10
    assert "timed out" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_exits_3_quickly(archive_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t0 = time.monotonic()
    argv = ["-f", str(archive_file), "-d", f"127.0.0.1:{_free_port()}", "--retry-max-time", "2"]
    assert upload_to_cloudz_main(argv) == 3
    assert time.monotonic() - t0 < 10
    assert "UNAVAILABLE" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["-f", "/nonexistent/file.bz2", "-d", "localhost:1"],
        ["-f", "{dir}", "-d", "localhost:1"],
        ["-f", "{plain}", "-d", "localhost:1"],  # no collector directory in the path
        ["-f", "{plain}", "-d", "localhost:1", "--filename", "../etc/passwd"],
        ["-f", "{plain}", "-d", "ftp://host:1", "--filename", "a/b"],
        ["-f", "{plain}", "-d", "localhost", "--filename", "a/b"],  # no port
        ["-f", "{plain}", "-d", "localhost:1", "--filename", "a/b", "--project", "Bad Project"],
        ["-f", "{plain}", "-d", "localhost:1", "--timeout", "0"],
    ],
)
def test_usage_errors_exit_2(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "rib.bz2"
    plain.write_bytes(b"x")
    argv = [a.format(dir=tmp_path, plain=plain) for a in args]
    try:
        code = upload_to_cloudz_main(argv)
    except SystemExit as e:  # argparse rejects --timeout 0 itself
        code = int(e.code or 0)
    assert code == 2
    assert "error" in capsys.readouterr().err


def test_missing_collector_dir_suggests_filename(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "rib.bz2"
    plain.write_bytes(b"x")
    assert upload_to_cloudz_main(["-f", str(plain), "-d", "localhost:1"]) == 2
    assert "--filename" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("address", "target", "tls"),
    [
        ("localhost:50051", "localhost:50051", False),
        ("grpc://10.0.0.1:7000", "10.0.0.1:7000", False),
        ("http://gw.example.org", "gw.example.org:80", False),
        ("http://gw.example.org:8080/", "gw.example.org:8080", False),
        ("https://gw.example.org", "gw.example.org:443", True),
        ("https://gw.example.org:8443", "gw.example.org:8443", True),
        ("[::1]:50051", "[::1]:50051", False),
    ],
)
def test_parse_endpoint(address: str, target: str, tls: bool) -> None:
    ep = parse_endpoint(address)
    assert (ep.target, ep.tls) == (target, tls)


@pytest.mark.parametrize(
    "address", ["localhost", "grpc://h", "ftp://h:1", "h:notaport", "https://h/path", "https://"]
)
def test_parse_endpoint_rejects(address: str) -> None:
    with pytest.raises(UsageError):
        parse_endpoint(address)
