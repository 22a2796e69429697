"""Acceptance: health follows the backends of a real gateway process; metrics count the run's files.

The status store (then the bus) is made unreachable by moving its SQLite file away, as
an unmounted volume would: the gateway keeps its open connection, but the health
probe opens the path again and fails. Moving the file back makes it SERVING again.
A check that hangs is bounded by the health timeout instead of freezing the service.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from rvcloud.ingest_gateway.health import HealthChecker
from tests.e2e.service import free_port
from tests.gateway.helpers import PAYLOAD, wait_for

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RVCLOUD_")}
    env["RVCLOUD_CONFIG"] = os.devnull
    return env


def _metrics(port: int) -> dict[str, float]:
    """The samples of a /metrics page: 'name{labels}' -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def test_health_follows_status_store_and_bus_metrics_count_the_run(tmp_path: Path) -> None:
    port, mport = free_port(), free_port()
    d = tmp_path / "data"
    cmd = [
        sys.executable,
        "-m",
        "rvcloud.ingest_gateway",
        f"--listen=127.0.0.1:{port}",
        f"--metrics-port={mport}",
        "--metrics-addr=127.0.0.1",
        "--health-interval=0.2",
        "--health-timeout=1",
        f"--blob=file://{d}/blobs",
        f"--bus=sqlite://{d}/bus.db",
        f"--status=sqlite://{d}/status.db",
    ]
    log_path = tmp_path / "gateway.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(cmd, stderr=log_file, stdout=subprocess.DEVNULL, env=_env())
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        wait_for(lambda: "listening on" in log_path.read_text(), timeout=20, what="the gateway to start")
        stub = health_pb2_grpc.HealthStub(ch)

        def status() -> int:
            return int(stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status)

        wait_for(lambda: status() == SERVING, what="SERVING")

        # Files of this run, uploaded by the real CLI.
        files = []
        for i, data in enumerate((PAYLOAD, PAYLOAD[::-1] + b"x" * 1000, PAYLOAD * 2)):
            f = (
                tmp_path
                / "route-views.jinx"
                / "bgpdata"
                / "2024.01"
                / "UPDATES"
                / f"updates.20240101.{i:02d}00.bz2"
            )
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(data)
            files.append(f)
        target = f"127.0.0.1:{port}"
        cli = [sys.executable, "-m", "rvcloud.cli", "upload", "--no-wait", "-q"]
        for f in files:
            r = subprocess.run(
                [*cli, "-d", target, "-f", str(f)],
                capture_output=True,
                text=True,
                timeout=60,
                env=_env(),
            )
            assert r.returncode == 0, r.stderr
        sizes = [f.stat().st_size for f in files]
        m = _metrics(mport)
        assert m['rvcloud_gateway_uploads_total{outcome="stored"}'] == len(files)
        assert m['rvcloud_gateway_received_bytes_total{project="routeviews"}'] == sum(sizes)
        assert m['rvcloud_gateway_stored_bytes_total{project="routeviews"}'] == sum(sizes)
        assert m['rvcloud_gateway_upload_duration_seconds_count{outcome="stored"}'] == len(files)
        stored = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (d / "blobs").rglob("*.bz2")}
        assert stored == {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}

        for name in ("status", "bus"):
            db = d / f"{name}.db"
            moved = d / f"{name}.db.away"
            db.rename(moved)
            t0 = time.monotonic()
            wait_for(lambda: status() == NOT_SERVING, what=f"NOT_SERVING without the {name} store")
            assert time.monotonic() - t0 < 5
            m = _metrics(mport)
            assert m[f'rvcloud_gateway_backend_up{{backend="{name}"}}'] == 0
            assert m["rvcloud_gateway_serving"] == 0
            moved.rename(db)
            wait_for(lambda: status() == SERVING, what=f"SERVING with the {name} store back")
            m = _metrics(mport)
            assert m[f'rvcloud_gateway_backend_up{{backend="{name}"}}'] == 1
            assert m["rvcloud_gateway_serving"] == 1
        text = log_path.read_text()
        assert "backend status is down" in text and "backend status is back" in text
        assert "backend bus is down" in text and "backend bus is back" in text
    finally:
        ch.close()
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_hung_check_times_out_and_is_not_stacked() -> None:
    release = threading.Event()
    calls = []

    def hangs() -> None:
        calls.append(time.monotonic())
        release.wait(30)

    servicer = health.HealthServicer()
    checker = HealthChecker(servicer, [("ok", lambda: None), ("hung", hangs)], interval=60, timeout=0.3)
    try:
        t0 = time.monotonic()
        assert checker.check_once() is False
        assert 0.3 <= time.monotonic() - t0 < 2
        assert checker.check_once() is False
        assert len(calls) == 1, "the hung check was started again while still running"
        release.set()
        # The late answer of the hung call counts; the next round calls the check again.
        wait_for(lambda: checker.check_once(), what="the check to pass once it returns")
        assert checker.check_once() and checker.serving
        assert len(calls) == 2
    finally:
        release.set()
        checker.stop()
