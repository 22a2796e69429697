"""Worker metrics: the real gateway, converter and loader processes, scraped over HTTP.

Two real MRT files (a RIB and an UPDATES file whose bgpdump counts the MANIFEST gives)
and one file that is not MRT go through the pipeline on the embedded backends; the
converter's and loader's ``/metrics`` must then count exactly those files, their rows
(equal to bgpdump's lines and to the warehouse's rows), their bytes, the failure by
kind, one duration per conversion and one queue-lag sample per event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from rvcloud.metadata.sqlite import SqliteStatusStore
from rvcloud.metadata.store import ListFilter
from tests.conftest import ManifestEntry, load_manifest
from tests.e2e.service import free_port

SMALL = 200_000  # bytes: small files keep the test fast


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RVCLOUD_")}
    env["RVCLOUD_CONFIG"] = os.devnull
    return env


def _scrape(port: int) -> dict[str, float]:
    """'name{labels}' -> value of every sample on a /metrics page."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def _pick(entries: list[ManifestEntry], rib: bool) -> ManifestEntry:
    ok = [e for e in entries if e.all_ok and e.size < SMALL and ("B" in e.bgpdump_counts) == rib]
    return max(ok, key=lambda e: e.size)


def _name(e: ManifestEntry, stem: str) -> str:
    """An archive path for ``e`` whose extension says its compression, as the gateway checks."""
    ext = e.name.rsplit(".", 1)[-1] if e.name.endswith((".gz", ".bz2")) else "mrt"
    return f"route-views.metrics/bgpdata/2020.01/{stem}.{ext}"


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[dict[str, object]]:
    d = tmp_path / "data"
    backends = [
        f"--blob=file://{d}/blobs",
        f"--bus=sqlite://{d}/bus.db?poll=0.05&backoff=0.1",
        f"--status=sqlite://{d}/status.db",
        f"--warehouse=duckdb://{d}/warehouse.duckdb",
    ]
    gw_port, conv_port, load_port = free_port(), free_port(), free_port()
    cmds = {
        "gateway": ["rvcloud.ingest_gateway", f"--listen=127.0.0.1:{gw_port}"],
        "converter": [
            "rvcloud.converter_worker",
            f"--metrics-port={conv_port}",
            "--metrics-addr=127.0.0.1",
            "--log-format=json",
        ],
        "loader": [
            "rvcloud.loader_worker",
            f"--metrics-port={load_port}",
            "--metrics-addr=127.0.0.1",
            "--batch-seconds=0.5",
            "--file-counts-every=0.1",
            "--log-format=json",
        ],
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {}
    try:
        for name, args in cmds.items():
            logs[name] = tmp_path / f"{name}.log"
            with open(logs[name], "w") as f:
                procs[name] = subprocess.Popen(
                    [sys.executable, "-m", *args, *backends], stderr=f, stdout=subprocess.DEVNULL, env=_env()
                )
            if name == "gateway":
                _wait(lambda: "listening on" in logs["gateway"].read_text(), "the gateway")
        _wait(lambda: "metrics on port" in logs["converter"].read_text(), "the converter")
        _wait(lambda: "metrics on port" in logs["loader"].read_text(), "the loader")
        yield {
            "target": f"127.0.0.1:{gw_port}",
            "converter": conv_port,
            "loader": load_port,
            "data": d,
            "logs": logs,
        }
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _wait(pred: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_converter_and_loader_metrics_count_the_files(pipeline: dict[str, object], tmp_path: Path) -> None:
    entries = load_manifest()
    rib, upd = _pick(entries, rib=True), _pick(entries, rib=False)
    junk = tmp_path / "junk.bz2"
    junk.write_bytes(b"this is not an MRT file at all\n" * 50)
    uploads = {
        _name(rib, "RIBS/rib.20200101.0000"): rib.path,
        _name(upd, "UPDATES/updates.20200101.0000"): upd.path,
        "route-views.metrics/bgpdata/2020.01/UPDATES/updates.20200101.0015.bz2": junk,
    }
    published = time.time()
    cli = [sys.executable, "-m", "rvcloud.cli", "upload", "-q", "--no-wait"]
    for name, path in uploads.items():
        r = subprocess.run(
            [*cli, "-d", str(pipeline["target"]), "-f", str(path), "--filename", name],
            capture_output=True,
            text=True,
            timeout=60,
            env=_env(),
        )
        assert r.returncode == 0, r.stderr
    d = Path(str(pipeline["data"]))
    status = SqliteStatusStore(d / "status.db")
    try:

        def settled() -> bool:
            recs = status.list(ListFilter(project="routeviews")).records
            return len(recs) == 3 and all(r.status in ("DONE", "FAILED") for r in recs)

        _wait(settled, "all three files to finish")
        recs = {r.filename: r for r in status.list(ListFilter(project="routeviews")).records}
    finally:
        status.close()
    good = [n for n, p in uploads.items() if p != junk]
    bad = next(n for n, p in uploads.items() if p == junk)
    assert [recs[n].status for n in good] == ["DONE", "DONE"], {n: recs[n].error for n in good}
    assert recs[bad].status == "FAILED"

    # The expected rows come from bgpdump (the MANIFEST) and, independently, the warehouse.
    want = Counter({"ribs": rib.bgpdump_counts["B"]})
    want["updates"] = sum(v for k, v in upd.bgpdump_counts.items() if k != "B")
    with duckdb.connect(str(d / "warehouse.duckdb"), read_only=True) as db:
        in_warehouse = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("ribs", "updates")}  # type: ignore[index]
    assert in_warehouse == dict(want)
    raw_bytes = sum(recs[n].size for n in good)
    assert raw_bytes == rib.size + upd.size

    conv = _scrape(int(str(pipeline["converter"])))
    load = _scrape(int(str(pipeline["loader"])))
    c, lo = 'stage="converter"', 'stage="loader"'

    assert conv[f'rvcloud_stage_files_total{{outcome="done",{c}}}'] == 2
    assert conv[f'rvcloud_stage_files_total{{outcome="failed",{c}}}'] == 1
    assert conv[f'rvcloud_stage_errors_total{{kind="not_mrt",{c}}}'] == 1
    for table, n in want.items():
        assert conv[f'rvcloud_stage_rows_total{{{c},table="{table}"}}'] == n
        assert load[f'rvcloud_stage_rows_total{{{lo},table="{table}"}}'] == n
    assert conv[f"rvcloud_stage_file_bytes_total{{{c}}}"] == raw_bytes
    avro = sum(p.stat().st_size for p in (d / "blobs").rglob("*.avro"))
    assert avro > 0 and conv[f"rvcloud_stage_output_bytes_total{{{c}}}"] == avro
    assert conv[f'rvcloud_stage_duration_seconds_count{{{c},step="convert"}}'] == 2
    assert conv[f"rvcloud_stage_queue_lag_seconds_count{{{c}}}"] == 3
    lag_sum = conv[f"rvcloud_stage_queue_lag_seconds_sum{{{c}}}"]
    assert 0 < lag_sum < 3 * (time.time() - published)
    assert conv[f"rvcloud_stage_in_flight{{{c}}}"] == 0

    assert load[f'rvcloud_stage_files_total{{outcome="done",{lo}}}'] == 2
    assert load[f'rvcloud_stage_files_total{{outcome="failed",{lo}}}'] == 0
    assert load[f"rvcloud_stage_file_bytes_total{{{lo}}}"] == raw_bytes
    assert load[f"rvcloud_stage_queue_lag_seconds_count{{{lo}}}"] == 2
    assert load[f'rvcloud_stage_duration_seconds_count{{{lo},step="load"}}'] >= 1
    # Files by status and stage, from the status store: only the failed file is left.
    failed_stage = recs[bad].stage
    assert load[f'rvcloud_files{{stage="{failed_stage}",status="FAILED"}}'] == 1
    assert not any(k.startswith("rvcloud_files{") and 'status="IN_PROGRESS"' in k for k in load)


def _json_lines(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_worker_logs_carry_the_file_and_request_id(pipeline: dict[str, object]) -> None:
    upd = _pick(load_manifest(), rib=False)
    name = _name(upd, "UPDATES/updates.20200101.0030")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "rvcloud.cli",
            "upload",
            "-q",
            "--json",
            "--timeout",
            "60",
            "-d",
            str(pipeline["target"]),
            "-f",
            str(upd.path),
            "--filename",
            name,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env=_env(),
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "DONE"
    logs = pipeline["logs"]
    assert isinstance(logs, dict)
    conv = [x for x in _json_lines(logs["converter"]) if x["message"].startswith("converted ")]
    load = [x for x in _json_lines(logs["loader"]) if x["message"].startswith("loaded routeviews/")]
    assert len(conv) == 1 and len(load) == 1
    for x in (conv[0], load[0]):
        assert (x["project"], x["file"]) == ("routeviews", name)
        assert len(x["request_id"]) >= 8 and len(x["upload_id"]) == 32
    # The same upload, seen by both stages; each event has its own request id.
    assert conv[0]["upload_id"] == load[0]["upload_id"]
    assert conv[0]["request_id"] != load[0]["request_id"]
