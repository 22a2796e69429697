"""End to end on embedded backends: the real `rvcloud local` service driven by the real CLI.

One service instance serves the whole module (starting it costs a few seconds); each
test uses its own archive paths so tests do not see each other's files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from rvcloud.v1 import gateway_pb2 as pb
from rvcloud.v1 import gateway_pb2_grpc as pb_grpc
from tests.conftest import ManifestEntry, load_manifest, shared_mrt_dir
from tests.e2e.service import LocalService, run_cli, start_local
from tests.emulators import (  # noqa: F401 -- registers the emulator fixtures
    bigquery_emulator,
    cloud_emulators,
    datastore_emulator,
    emulator_manager,
    gcs_emulator,
    pubsub_emulator,
)

JINX = "libbgpstream__routeviews.route-views.jinx.ribs.1401487200.bz2"
JINX_PATH = "route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2"
UPD2026 = "mrtparser__updates.20260222.1530.bz2"
UPD2026_PATH = "bgpdata/2026.02/UPDATES/updates.20260222.1530.bz2"
TRUNCATED = "pyasn__rib.20140523.0600_firstMB.bz2"
SMALL_UPD = "libbgpstream__routeviews.route-views.jinx.updates.1401493500.bz2"

ELEM = {"B": "RIB", "A": "ANNOUNCE", "W": "WITHDRAW", "STATE": "STATE"}


@pytest.fixture(scope="module", params=["embedded", "cloud"])
def svc(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """The service as separate processes: gateway, two converters, one loader.

    ``embedded``: local directory, SQLite bus and status, DuckDB. ``cloud``: GCS,
    Pub/Sub, Datastore and BigQuery, on their local emulators.
    """
    urls = None
    if request.param == "cloud":
        from tests.emulators import PROJECT

        request.getfixturevalue("cloud_emulators")
        u = uuid.uuid4().hex[:10]
        urls = {
            "blob": f"gs://rvcloud-e2e-{u}",
            "bus": f"pubsub://{PROJECT}",
            "status": f"datastore://{PROJECT}?namespace=e2e{u}",
            "warehouse": f"bigquery://{PROJECT}/e2e_{u}",
            "topic_stored": f"e2e-{u}-stored",
            "topic_converted": f"e2e-{u}-converted",
        }
    s = start_local(tmp_path_factory.mktemp("local"), converters=2, urls=urls)
    try:
        yield s
    finally:
        s.stop()


def archive_path(e: ManifestEntry, i: int, collector: str = "route-views.e2e") -> str:
    rib = "TABLE_DUMP" in e.types
    ext = e.name.rsplit(".", 1)[-1] if e.name.endswith((".gz", ".bz2")) else "mrt"
    kind, d = ("rib", "RIBS") if rib else ("updates", "UPDATES")
    return f"{collector}/bgpdata/2020.01/{d}/{kind}.20200101.{i // 60:02d}{i % 60:02d}.{ext}"


def rows_by_type(svc: LocalService, filename: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for table in ("ribs", "updates"):
        for elem, n in svc.query(
            f"SELECT elem_type, count(*) FROM {table} WHERE source_file = ? GROUP BY 1", [filename]
        ):
            out[elem] = out.get(elem, 0) + int(n)
    return out


def test_ok_files_match_bgpdump_counts(svc: LocalService) -> None:
    """Every MANIFEST file all three oracles agree on: rows by type == bgpdump's lines."""
    entries = [e for e in load_manifest() if e.all_ok]
    assert len(entries) >= 15
    names = [archive_path(e, i) for i, e in enumerate(entries)]
    # Four CLI processes at a time, as an operator's backfill would run them (and the
    # loader gets to batch them).
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(svc.upload, [e.path for e in entries], names))
    for e, name, (code, rec) in zip(entries, names, results, strict=True):
        assert code == 0, (e.name, rec)
        assert rec["status"] == "DONE", (e.name, rec)
        want = {ELEM[k]: v for k, v in e.bgpdump_counts.items()}
        assert {k: int(v) for k, v in rec.get("rows_by_type", {}).items()} == want, e.name
        assert rows_by_type(svc, name) == want, e.name
        assert rec["sha256"] == e.sha256


def test_jinx_rib_and_2026_updates_done(svc: LocalService) -> None:
    code, rec = svc.upload(shared_mrt_dir() / JINX, JINX_PATH)
    assert code == 0, rec
    assert rec["status"] == "DONE"
    assert rec["collector"] == "route-views.jinx"
    assert rec["mrt_type"] == "RIB"
    assert rec["content_encoding"] == "bzip2"
    assert int(rec["rows_by_type"]["RIB"]) == 503_590
    assert rows_by_type(svc, JINX_PATH) == {"RIB": 503_590}
    code, rec = svc.upload(shared_mrt_dir() / UPD2026, UPD2026_PATH)
    assert code == 0, rec
    assert rec["collector"] == "route-views2"
    assert rec["mrt_type"] == "UPDATES"
    assert rows_by_type(svc, UPD2026_PATH) == {"ANNOUNCE": 111_057, "WITHDRAW": 7_606}
    assert int(rec["file_time"]) == 1771774200  # 2026-02-22 15:30 UTC

    # Re-uploading a DONE file: answered at once, nothing sent, nothing changed.
    t0 = time.monotonic()
    code, again = svc.upload(shared_mrt_dir() / JINX, JINX_PATH)
    assert code == 0
    assert again["already_done"] is True
    assert again["updated_at"] == rec_updated(svc, JINX_PATH)
    assert time.monotonic() - t0 < 30
    assert rows_by_type(svc, JINX_PATH) == {"RIB": 503_590}


def rec_updated(svc: LocalService, filename: str) -> float:
    r = run_cli("status", "-d", svc.addr, filename, "--json")
    return float(json.loads(r.stdout)["updated_at"])


def test_new_version_replaces_rows(svc: LocalService) -> None:
    d = shared_mrt_dir()
    name = "route-views.versions/bgpdata/2015.04/UPDATES/updates.20150401.0000.bz2"
    code, _ = svc.upload(d / "libbgpstream__routeviews.route-views.jinx.updates.1427846400.bz2", name)
    assert code == 0
    assert rows_by_type(svc, name) == {"ANNOUNCE": 8160, "WITHDRAW": 451}
    code, rec = svc.upload(d / SMALL_UPD, name)
    assert code == 0 and rec["already_done"] is False
    assert rows_by_type(svc, name) == {"ANNOUNCE": 1238, "WITHDRAW": 116}


def test_parallel_uploads_of_one_file_load_once(svc: LocalService) -> None:
    name = "route-views.parallel/bgpdata/2014.05/UPDATES/updates.20140530.2345.bz2"
    path = shared_mrt_dir() / SMALL_UPD
    results: list[tuple[int, dict[str, object]]] = []

    def go() -> None:
        results.append(svc.upload(path, name))

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [c for c, _ in results] == [0, 0, 0], results
    assert all(r["status"] == "DONE" for _, r in results)
    assert rows_by_type(svc, name) == {"ANNOUNCE": 1238, "WITHDRAW": 116}


def test_duplicate_events_change_nothing(svc: LocalService) -> None:
    from rvcloud.backends.factory import open_event_bus

    name = "route-views.dup/bgpdata/2014.05/UPDATES/updates.20140530.2345.bz2"
    code, rec = svc.upload(shared_mrt_dir() / SMALL_UPD, name)
    assert code == 0
    before = json.loads(run_cli("status", "-d", svc.addr, name, "--json").stdout)
    bus = open_event_bus(svc.urls["bus"])
    msg = {"project": "routeviews", "filename": name, "sha256": rec["sha256"], "upload_id": "replayed"}
    for _ in range(2):  # every message delivered twice more
        bus.publish(svc.urls["topic_stored"], msg)
        bus.publish(svc.urls["topic_converted"], {**msg, "avro": {"updates": rec["avro_uris"][0]}})
    bus.close()
    time.sleep(5)  # give both workers time to (not) act on the duplicates
    assert json.loads(run_cli("status", "-d", svc.addr, name, "--json").stdout) == before
    assert rows_by_type(svc, name) == {"ANNOUNCE": 1238, "WITHDRAW": 116}


def _chunks(header: pb.UploadHeader, data: bytes, delay: float = 0.0) -> Iterator[pb.UploadRequest]:
    yield pb.UploadRequest(header=header)
    for i in range(0, len(data), 1 << 16):
        if delay:
            time.sleep(delay)
        yield pb.UploadRequest(chunk=data[i : i + (1 << 16)])


def test_wrong_sha256_is_data_loss_and_leaves_nothing(svc: LocalService) -> None:
    data = (shared_mrt_dir() / SMALL_UPD).read_bytes()
    name = "route-views.badsha/bgpdata/2014.05/UPDATES/updates.20140530.2345.bz2"
    header = pb.UploadHeader(filename=name, project="routeviews", sha256="0" * 64, size=len(data))
    with grpc.insecure_channel(svc.addr) as ch, pytest.raises(grpc.RpcError) as ei:
        pb_grpc.GatewayStub(ch).Upload(_chunks(header, data))
    assert ei.value.code() == grpc.StatusCode.DATA_LOSS
    assert name in (ei.value.details() or "") and "receiving" in (ei.value.details() or "")
    assert not svc.blob_store().exists(f"routeviews/{name}")
    assert [b.key for b in svc.blob_store().list("routeviews/route-views.badsha/")] == []
    assert rows_by_type(svc, name) == {}


def test_bad_archive_path_is_invalid_argument(svc: LocalService) -> None:
    header = pb.UploadHeader(filename="../../etc/passwd", project="routeviews", sha256="0" * 64, size=1)
    with grpc.insecure_channel(svc.addr) as ch, pytest.raises(grpc.RpcError) as ei:
        pb_grpc.GatewayStub(ch).Upload(_chunks(header, b"x"))
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_truncated_rib_keeps_complete_records(svc: LocalService) -> None:
    name = "route-views2/bgpdata/2014.05/RIBS/rib.20140523.0600.bz2"
    code, rec = svc.upload(shared_mrt_dir() / TRUNCATED, name)
    assert code == 0, rec
    assert rec["status"] == "DONE"
    assert int(rec["rows_by_type"]["RIB"]) == 270_005
    assert rows_by_type(svc, name) == {"RIB": 270_005}
    assert any(re.search(r"truncat\w* at byte \d+", e) for e in rec["first_errors"]), rec["first_errors"]


def test_non_mrt_file_fails_clearly_and_raw_is_kept(svc: LocalService, tmp_path: Path) -> None:
    junk = tmp_path / "updates.20200101.0000.bz2"
    junk.write_bytes(b"this is not an MRT file at all\n" * 100)
    name = "route-views.junk/bgpdata/2020.01/UPDATES/updates.20200101.0000.bz2"
    code, rec = svc.upload(junk, name)
    assert code == 1
    assert rec["status"] == "FAILED"
    assert "not an MRT file" in rec["error"] and "converting" in rec["error"]
    with svc.blob_store().open(f"routeviews/{name}") as f:
        assert f.read() == junk.read_bytes()


def test_status_shows_progress_during_a_slow_upload(svc: LocalService) -> None:
    data = (shared_mrt_dir() / UPD2026).read_bytes()
    name = "route-views.slow/bgpdata/2026.02/UPDATES/updates.20260222.1530.bz2"
    header = pb.UploadHeader(
        filename=name, project="routeviews", sha256=hashlib.sha256(data).hexdigest(), size=len(data)
    )
    result: list[pb.UploadResponse] = []

    def upload() -> None:
        with grpc.insecure_channel(svc.addr) as ch:
            result.append(pb_grpc.GatewayStub(ch).Upload(_chunks(header, data, delay=0.25)))

    t = threading.Thread(target=upload)
    t.start()
    seen: set[str] = set()
    while t.is_alive():
        r = run_cli("status", "-d", svc.addr, name)
        if r.returncode == 0:
            m = re.search(r"IN_PROGRESS.*?(receiving|stored|converting|converted|loading)", r.stdout, re.S)
            if m:
                seen.add(m.group(1))
        time.sleep(0.3)
    t.join()
    assert "receiving" in seen, seen
    r = run_cli("upload", "-f", os.devnull, "-d", svc.addr)  # usage error path is quick
    assert r.returncode == 2
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        r = run_cli("status", "-d", svc.addr, name)
        if "DONE" in r.stdout:
            break
        time.sleep(1)
    assert "DONE" in r.stdout


def test_memory_of_gateway_and_converter_stays_bounded(svc: LocalService) -> None:
    """Peak memory (process-tree PSS, sampled) of every service process while the jinx RIB went through."""
    if rows_by_type(svc, JINX_PATH) != {"RIB": 503_590}:
        code, _ = svc.upload(shared_mrt_dir() / JINX, JINX_PATH)
        assert code == 0
    peaks = dict(svc.peak_pss)
    gw = [v for k, v in peaks.items() if "ingest_gateway" in k]
    conv = [v for k, v in peaks.items() if "converter_worker" in k]
    assert gw and conv, peaks
    # The converter's tree held more than its idle size at some point: the sampler saw the work.
    assert max(conv) > 60, peaks
    assert max(gw) < 300, peaks
    assert max(conv) < 300, peaks


def test_generated_grpc_code_is_fresh(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    subprocess.run(
        [
            os.sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            str(repo / "proto"),
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            str(repo / "proto/rvcloud/v1/gateway.proto"),
        ],
        check=True,
    )
    for f in ("gateway_pb2.py", "gateway_pb2.pyi", "gateway_pb2_grpc.py"):
        assert (tmp_path / "rvcloud/v1" / f).read_bytes() == (repo / "proto/rvcloud/v1" / f).read_bytes(), (
            f"{f} is stale: run `make proto`"
        )


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    # Rows of one record in a canonical order (the warehouse keeps no order within a record).
    return (row["elem_type"], row["peer_ip"], row["prefix"] or "", row["path_id"] or -1, row["as_path"] or "")


def _by_record(pairs: Iterator[tuple[dict[str, Any], Any]]) -> Iterator[Any]:
    """Regroup (row, payload) pairs by record_index and yield payloads in canonical order."""
    group: list[tuple[dict[str, Any], Any]] = []
    for row, payload in pairs:
        if group and row["record_index"] != group[0][0]["record_index"]:
            yield from (p for _, p in sorted(group, key=lambda g: _key(g[0])))
            group = []
        group.append((row, payload))
    yield from (p for _, p in sorted(group, key=lambda g: _key(g[0])))


def _warehouse_rows(svc: LocalService, table: str, filename: str, every: int) -> Iterator[dict[str, Any]]:
    """Rows of one file queried back (the records whose index is a multiple of ``every``),
    ordered by record, in chunks (bounded memory)."""
    from rvcloud.mrt.schema import COLUMN_NAMES

    epoch = dt.datetime(1970, 1, 1)
    cols = ", ".join(COLUMN_NAMES)
    start, step = 0, 100_000
    (last,) = svc.query(f"SELECT max(record_index) FROM {table} WHERE source_file = ?", [filename])[0]
    while start <= last:
        rows = svc.query(
            f"SELECT {cols} FROM {table} WHERE source_file = ? AND record_index >= ? AND record_index < ? "
            f"AND MOD(record_index, {every}) = 0 ORDER BY record_index",
            [filename, start, start + step],
        )
        for values in rows:
            row = dict(zip(COLUMN_NAMES, values, strict=True))
            for k in ("timestamp", "originated_time"):
                if row[k] is not None:
                    row[k] = (row[k] - epoch) // dt.timedelta(microseconds=1)
            yield row
        start += step


@pytest.mark.parametrize(
    ("name", "filename", "table", "expected"),
    [(JINX, JINX_PATH, "ribs", 503_590), (UPD2026, UPD2026_PATH, "updates", 118_663)],
)
def test_warehouse_rows_equal_bgpdump_field_by_field(
    svc: LocalService, name: str, filename: str, table: str, expected: int
) -> None:
    """Rows queried back from the warehouse, every field against `bgpdump -m -v -l`.

    bgpdump's lines are matched to records through our decoder's row order (the decoder
    itself is checked line by line against bgpdump in tests/mrt). On BigQuery every
    tenth record is compared (every column type goes through the same load; fetching
    half a million rows from the emulator alone takes a minute and a half), and the
    row count of the whole file is checked."""
    from rvcloud.mrt import DecodeStats
    from tests.mrt.mrt_helpers import bgpdump_lines, compare_line, iter_rows

    path = shared_mrt_dir() / name
    counts = rows_by_type(svc, filename)
    if counts == {}:
        code, rec = svc.upload(path, filename)
        assert code == 0, rec
        counts = rows_by_type(svc, filename)
    assert sum(counts.values()) == expected
    every = 10 if svc.cloud else 1
    ours = _by_record((r, r) for r in _warehouse_rows(svc, table, filename, every))
    pairs = zip(iter_rows(path, DecodeStats()), bgpdump_lines(path), strict=True)
    lines = _by_record((r, line) for r, line in pairs if r["record_index"] % every == 0)
    n, bad = 0, []
    for line in lines:
        row = next(ours, None)
        assert row is not None, f"bgpdump has more lines than the warehouse has rows (line {n})"
        diffs = compare_line(row, line)
        if diffs and len(bad) < 10:
            bad.append(f"line {n}: {line}\n    {diffs}")
        n += 1
    assert next(ours, None) is None, "the warehouse has more rows than bgpdump lines"
    assert not bad, "\n".join(bad)
    assert n == expected if every == 1 else expected // every // 2 < n < expected // every * 2


def test_raw_object_keeps_bytes_type_and_metadata(svc: LocalService) -> None:
    """A stored .gz is byte-identical (no transcoding) and carries the record's key fields."""
    src = shared_mrt_dir() / "libbgpstream__ris.rrc06.updates.1427846400.gz"
    name = "rrc06/2015.04/updates.20150401.0000.gz"
    code, rec = svc.upload(src, name, project="ris")
    assert code == 0, rec
    blobs = svc.blob_store()
    info = blobs.stat(f"ris/{name}")
    assert info.content_type == "application/gzip"
    assert dict(info.metadata) == {
        "project": "ris",
        "collector": "rrc06",
        "mrt_type": "UPDATES",
        "sha256": src_sha(src),
        "file_time": "1427846400",
    }
    with blobs.open(f"ris/{name}") as f:
        assert f.read() == src.read_bytes()
    assert rows_by_type(svc, name) == {"ANNOUNCE": 1435, "WITHDRAW": 122, "STATE": 4}


def src_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_killed_converter_and_duplicate_events_leave_one_set_of_rows(svc: LocalService) -> None:
    """SIGKILL the converter in the middle of a file, and deliver its events twice more:
    the file still ends DONE with exactly one set of rows."""
    from rvcloud.backends.factory import open_event_bus, open_status_store

    name = "route-views.kill/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2"
    code, rec = svc.upload(shared_mrt_dir() / JINX, name, "--no-wait")
    assert code == 0, rec
    status = open_status_store(svc.urls["status"])
    deadline = time.monotonic() + 120
    owner = ""
    while time.monotonic() < deadline:
        r = status.get("routeviews", name)
        if r is not None and r.stage == "converting" and r.lease_owner.startswith("converter-"):
            owner = r.lease_owner
            break
        time.sleep(0.1)
    assert owner, "the file never reached a converter"
    time.sleep(1.0)  # well inside the conversion
    pid = int(owner.split("-")[-3])
    os.kill(pid, 9)
    bus = open_event_bus(svc.urls["bus"])
    msg = {"project": "routeviews", "filename": name, "sha256": rec["sha256"], "upload_id": "dup"}
    for _ in range(2):
        bus.publish(svc.urls["topic_stored"], msg)
    bus.close()
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        r = status.get("routeviews", name)
        assert r is not None
        if r.status in ("DONE", "FAILED"):
            break
        time.sleep(1)
    assert r.status == "DONE", r
    assert rows_by_type(svc, name) == {"RIB": 503_590}
    status.close()


def test_poison_event_is_dead_lettered_and_its_file_failed(svc: LocalService) -> None:
    """An event that always fails (its raw object is gone) ends in the dead-letter topic,
    and the file is FAILED with the reason."""
    from rvcloud.backends.bus.base import Message
    from rvcloud.backends.factory import open_event_bus, open_status_store
    from rvcloud.metadata.record import FileRecord

    name = "route-views.poison/bgpdata/2020.01/UPDATES/updates.20200101.0000.bz2"
    sha = "e" * 64
    status = open_status_store(svc.urls["status"])
    status.update(
        "routeviews",
        name,
        lambda _: FileRecord(
            "routeviews",
            name,
            "IN_PROGRESS",
            "stored",
            collector="route-views.poison",
            sha256=sha,
            raw_uri=svc.blob_store().uri(f"routeviews/{name}"),
            updated_at=time.time(),
        ),
    )
    dead: list[Message] = []
    bus = open_event_bus(svc.urls["bus"])
    sub = bus.subscribe(svc.urls["topic_stored"] + ".dead", dead.append)
    try:
        bus.publish(svc.urls["topic_stored"], {"project": "routeviews", "filename": name, "sha256": sha})
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not any(m.data.get("filename") == name for m in dead):
            time.sleep(0.5)
    finally:
        sub.stop()
        bus.close()
    assert any(m.data.get("filename") == name for m in dead), "no dead letter"
    r = status.get("routeviews", name)
    assert r is not None and r.status == "FAILED" and r.stage == "converting"
    assert "BlobNotFound" in r.error or "not found" in r.error.lower(), r.error
    status.close()


def test_200_files_arriving_together_share_few_load_jobs(svc: LocalService, tmp_path: Path) -> None:
    """200 files uploaded within a minute (a backfill, 8 workers): far fewer load jobs."""
    src = (shared_mrt_dir() / SMALL_UPD).read_bytes()
    root = tmp_path / "archive"
    d = root / "route-views.batch" / "bgpdata" / "2014.05" / "UPDATES"
    d.mkdir(parents=True)
    names = []
    for i in range(200):
        f = d / f"updates.20140530.{i // 60:02d}{i % 60:02d}.bz2"
        f.write_bytes(src)
        names.append(str(f.relative_to(root)))
    t0 = time.monotonic()
    r = run_cli(
        "backfill",
        str(root),
        "-d",
        svc.addr,
        "--workers",
        "8",
        "--json",
        "--state",
        str(tmp_path / "state"),
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    took = time.monotonic() - t0
    report = json.loads(r.stdout)
    assert report["counts"]["uploaded"] == 200, report["counts"]
    listed = json.loads(
        run_cli("list", "-d", svc.addr, "--collector", "route-views.batch", "--all", "--json").stdout
    )
    by_name = {f["filename"]: f for f in listed}
    assert set(names) <= set(by_name)
    assert all(by_name[n]["status"] == "DONE" for n in names)
    load_ids = {lid for n in names for lid in by_name[n]["load_id"].split(",")}
    # BigQuery (2 s window): few jobs. DuckDB has no load quota and loads without a window,
    # but files that arrive during a load still share the next one.
    assert len(load_ids) <= (40 if svc.cloud else 100), (len(load_ids), took)
    (n_rows,) = svc.query(
        "SELECT count(*) FROM updates WHERE source_file LIKE 'route-views.batch/bgpdata/2014.05/UPDATES/%'"
    )[0]
    assert n_rows == 200 * 1354
    if svc.cloud:  # count the load jobs BigQuery itself ran for this dataset
        from rvcloud.backends.warehouse.bigquery import make_client

        dataset = svc.urls["warehouse"].rsplit("/", 1)[-1]
        client = make_client(svc.urls["warehouse"].split("/")[2], "US")
        jobs = [j for j in client.list_jobs(all_users=True) if j.job_type == "load" and dataset in j.job_id]
        batch_jobs = {j.job_id for j in jobs if any(lid in j.job_id for lid in load_ids)}
        assert 0 < len(batch_jobs) <= 40, len(batch_jobs)
