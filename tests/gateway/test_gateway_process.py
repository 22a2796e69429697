"""The real gateway process (TLS, tokens, JSON logs, metrics) driven by the real CLI; SIGTERM drains."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from rvcloud.backends.blob.file import FileBlobStore
from rvcloud.backends.bus.sqlite import SqliteBus
from rvcloud.metadata.sqlite import SqliteStatusStore
from rvcloud.metadata.store import ListFilter
from rvcloud.v1 import gateway_pb2_grpc as pb_grpc
from tests.e2e.service import free_port
from tests.gateway.helpers import FILENAME, PAYLOAD, Pki, slow_requests, token_line, wait_for

TOKEN = "rv-process-token-0123456789abcdef"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RVCLOUD_")}
    env["RVCLOUD_CONFIG"] = os.devnull  # no operator config file leaks into the test
    env.update(extra)
    return env


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rvcloud.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(**env),
    )


def test_tls_tokens_cli_logs_and_sigterm(tmp_path: Path, pki: Pki) -> None:
    (tmp_path / "tokens").write_text(token_line(TOKEN, "routeviews"))
    port, mport = free_port(), free_port()
    d = tmp_path / "data"
    cmd = [
        sys.executable,
        "-m",
        "rvcloud.ingest_gateway",
        f"--listen=127.0.0.1:{port}",
        f"--tls-cert={pki.cert_pem}",
        f"--tls-key={pki.key_pem}",
        "--auth=tokens",
        f"--tokens={tmp_path / 'tokens'}",
        f"--metrics-port={mport}",
        "--metrics-addr=127.0.0.1",
        "--log-format=json",
        "--shutdown-grace=20",
        f"--blob=file://{d}/blobs",
        f"--bus=sqlite://{d}/bus.db",
        f"--status=sqlite://{d}/status.db",
    ]
    log_path = tmp_path / "gateway.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(cmd, stderr=log_file, stdout=subprocess.DEVNULL, env=_env())
    try:
        wait_for(lambda: "listening on" in log_path.read_text(), timeout=20, what="the gateway to start")
        f = tmp_path / "route-views.jinx" / "bgpdata" / "2024.01" / "UPDATES" / "updates.20240101.0000.bz2"
        f.parent.mkdir(parents=True)
        f.write_bytes(PAYLOAD)
        url = f"https://localhost:{port}"
        base = ["upload", "-f", str(f), "-d", url, "--project", "routeviews", "--no-wait", "--json", "-q"]
        base += ["--retry-attempts", "1"]

        # Wrong CA, and the system roots: the CLI refuses the server's certificate.
        for extra in (["--ca", str(pki.other_ca_pem)], []):
            r = _cli(*base, *extra, RVCLOUD_TOKEN=TOKEN)
            assert r.returncode == 3, r.stderr
            assert "certificate" in r.stderr and "--ca" in r.stderr, r.stderr
        # The right CA, no token / a wrong token: refused by the gateway, exit 1.
        r = _cli(*base, "--ca", str(pki.ca_pem))
        assert r.returncode == 1 and "UNAUTHENTICATED" in r.stderr, r.stderr
        r = _cli(*base, "--ca", str(pki.ca_pem), RVCLOUD_TOKEN="wrong-" + TOKEN)
        assert r.returncode == 1 and "UNAUTHENTICATED" in r.stderr, r.stderr
        r = _cli(*base, "--ca", str(pki.ca_pem), "--project", "ris", RVCLOUD_TOKEN=TOKEN)
        assert r.returncode == 1 and "PERMISSION_DENIED" in r.stderr, r.stderr
        blobs = FileBlobStore(d / "blobs")
        status = SqliteStatusStore(str(d / "status.db"))
        bus = SqliteBus(str(d / "bus.db"))
        try:
            assert not list(blobs.list("")) and not status.list(ListFilter()).records
            assert bus.pending("rvcloud-stored") == 0

            # RVCLOUD_TOKEN and the right CA: stored.
            r = _cli(*base, "--ca", str(pki.ca_pem), RVCLOUD_TOKEN=TOKEN)
            assert r.returncode == 0, r.stderr
            out = json.loads(r.stdout)
            assert out["sha256"] == hashlib.sha256(PAYLOAD).hexdigest() and out["stage"] == "stored"
            assert [b.key for b in blobs.list("")] == [f"routeviews/{FILENAME}"]
            assert bus.pending("rvcloud-stored") == 1

            with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as resp:
                text = resp.read().decode()
            assert (
                f'rvcloud_gateway_received_bytes_total{{project="routeviews"}} {float(len(PAYLOAD))}' in text
            )

            # SIGTERM during a slow upload: the upload still completes, then the process exits 0.
            creds = grpc.ssl_channel_credentials(pki.ca_pem.read_bytes())
            with grpc.secure_channel(f"localhost:{port}", creds) as ch:
                stub = pb_grpc.GatewayStub(ch)  # type: ignore[no-untyped-call]
                release, sent = threading.Event(), threading.Event()
                data = PAYLOAD[::-1] + b"more"
                md = (("authorization", f"Bearer {TOKEN}"),)
                with futures.ThreadPoolExecutor(1) as pool:
                    fut = pool.submit(
                        stub.Upload,
                        slow_requests(data, release, sent_first=sent),
                        metadata=md,
                        timeout=30,
                    )
                    assert sent.wait(10)
                    time.sleep(0.3)  # the first chunk reaches the handler
                    proc.send_signal(signal.SIGTERM)
                    time.sleep(0.5)  # the server is draining now
                    release.set()
                    reply = fut.result(timeout=30)
            assert reply.file.stage == "stored" and reply.file.bytes_received == len(data)
            assert proc.wait(timeout=30) == 0
        finally:
            bus.close()
            status.close()
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
        stored = [x for x in lines if x["message"].startswith("stored routeviews/")]
        assert len(stored) == 2 and all(x["file"] == FILENAME and len(x["request_id"]) >= 8 for x in stored)
        assert stored[0]["request_id"] != stored[1]["request_id"]
        assert any("unauthenticated" in x["message"] for x in lines)
        assert any(x["message"].startswith("shutting down") for x in lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_second_gateway_on_a_busy_port_refuses_to_start(tmp_path: Path) -> None:
    """gRPC's default SO_REUSEPORT would let two gateways share a port and split clients
    between two services; ours refuses, and `rvcloud local` says so before starting."""
    from tests.gateway.helpers import start_replica

    first = start_replica(tmp_path / "a")
    try:
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{first.app.port}"):
            start_replica(tmp_path / "b", listen=f"127.0.0.1:{first.app.port}")
        r = _cli("local", "--data-dir", str(tmp_path / "c"), "--listen", first.target)
        assert r.returncode == 2, r.stderr
        assert f"{first.target} is already in use" in r.stderr
        assert not (tmp_path / "c").exists()  # refused before creating anything
    finally:
        first.close()


def test_https_to_a_plaintext_gateway_says_so(tmp_path: Path) -> None:
    from tests.gateway.helpers import start_replica

    plain = start_replica(tmp_path)
    try:
        r = _cli("status", "-d", f"https://{plain.target}", "route-views2/bgpdata/2014.05/UPDATES/x.bz2")
        assert r.returncode != 0
        want = f"does not speak TLS (it answered in plaintext); use http://{plain.target}"
        assert want in r.stderr, r.stderr
        assert "not trusted" not in r.stderr
        assert "ssl_transport_security" not in r.stderr  # no raw gRPC core log line
    finally:
        plain.close()
