"""Limits (file size, concurrent uploads, deadlines), backend-aware health, reflection and metrics."""

from __future__ import annotations

import threading
import urllib.request
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from rvcloud.v1 import gateway_pb2 as pb
from tests.gateway.helpers import (
    FILENAME,
    PAYLOAD,
    header,
    requests,
    slow_requests,
    start_replica,
    wait_for,
)


def test_max_file_size(tmp_path: Path) -> None:
    rep = start_replica(tmp_path, max_file_size=1000)
    try:
        with pytest.raises(grpc.RpcError) as ei:
            rep.stub().Upload(requests(PAYLOAD), timeout=10)
        assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"file of {len(PAYLOAD)} bytes exceeds this gateway's limit of 1000 bytes" in (
            ei.value.details() or ""
        )
        assert rep.stored_nothing()
    finally:
        rep.close()


def test_max_uploads_and_retry_hint(tmp_path: Path) -> None:
    rep = start_replica(tmp_path, max_uploads=1, retry_after_ms=750)
    release, sent = threading.Event(), threading.Event()
    try:
        stub = rep.stub()
        with futures.ThreadPoolExecutor(1) as pool:
            holder = pool.submit(stub.Upload, slow_requests(PAYLOAD, release, sent_first=sent), timeout=20)
            assert sent.wait(10)
            wait_for(lambda: rep.app.metrics.in_flight._value.get() == 1, what="the slot to be taken")
            with pytest.raises(grpc.RpcError) as ei:
                other = PAYLOAD[::-1]
                stub.Upload(iter([header(other, filename=FILENAME.replace("0000", "0015"))]), timeout=10)
            assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert dict(ei.value.trailing_metadata())["retry-after-ms"] == "750"
            assert "retry after 750 ms" in (ei.value.details() or "")
            release.set()
            assert holder.result(timeout=20).file.stage == "stored"
        # The slot is free again.
        assert rep.stub().Upload(requests(PAYLOAD[:100] + b"x"), timeout=10).file.stage == "stored"
        uploads = rep.app.metrics.uploads
        assert uploads.labels("rejected")._value.get() == 1
        assert uploads.labels("stored")._value.get() == 2
    finally:
        release.set()
        rep.close()


def test_client_deadline_cancels_cleanly(tmp_path: Path) -> None:
    rep = start_replica(tmp_path)
    never = threading.Event()
    try:
        with pytest.raises(grpc.RpcError) as ei:
            rep.stub().Upload(slow_requests(PAYLOAD, never), timeout=0.5)
        assert ei.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        def failed() -> bool:
            rec = rep.status.get("routeviews", FILENAME)
            return rec is not None and rec.status == "FAILED"

        wait_for(failed, what="the record to be FAILED")
        rec = rep.status.get("routeviews", FILENAME)
        assert rec is not None and rec.lease_owner == "" and "byte 4096" in rec.error
        assert not list(rep.blobs.list("")), "no object from a cancelled upload"
        assert not list((tmp_path / "blobs" / ".tmp").iterdir()), "no temporary file left behind"
        assert rep.bus.pending("rvcloud-stored") == 0
        wait_for(lambda: rep.app.metrics.in_flight._value.get() == 0, what="in-flight to drop")
    finally:
        never.set()
        rep.close()


def test_health_follows_backends_reflection_and_metrics(tmp_path: Path) -> None:
    rep = start_replica(tmp_path)
    try:
        health = health_pb2_grpc.HealthStub(rep.channel())

        def status(service: str = "") -> int:
            return int(health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status)

        serving, not_serving = (
            health_pb2.HealthCheckResponse.SERVING,
            health_pb2.HealthCheckResponse.NOT_SERVING,
        )
        assert status() == serving and status("rvcloud.v1.Gateway") == serving
        rep.status.broken = True
        wait_for(lambda: status() == not_serving, what="NOT_SERVING")
        assert status("rvcloud.v1.Gateway") == not_serving
        rep.status.broken = False
        wait_for(lambda: status() == serving, what="SERVING again")

        refl = reflection_pb2_grpc.ServerReflectionStub(rep.channel())
        answers = refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for a in answers for s in a.list_services_response.service}
        assert {"rvcloud.v1.Gateway", "grpc.health.v1.Health"} <= names

        data = PAYLOAD * 3
        rep.stub().Upload(requests(data), timeout=10)
        with pytest.raises(grpc.RpcError):
            rep.stub().GetFile(pb.GetFileRequest(project="routeviews", filename="a/bgpdata/none.bz2"))
        url = f"http://127.0.0.1:{rep.app.metrics_server.port}/metrics"  # type: ignore[union-attr]
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        assert f'rvcloud_gateway_received_bytes_total{{project="routeviews"}} {float(len(data))}' in text
        assert f'rvcloud_gateway_stored_bytes_total{{project="routeviews"}} {float(len(data))}' in text
        assert 'rvcloud_gateway_uploads_total{outcome="stored"} 1.0' in text
        assert "rvcloud_gateway_uploads_in_flight 0.0" in text
        assert 'rvcloud_gateway_upload_duration_seconds_count{outcome="stored"} 1.0' in text
        assert 'rvcloud_gateway_errors_total{code="NOT_FOUND",method="GetFile"} 1.0' in text
        assert 'rvcloud_gateway_backend_up{backend="status"} 1.0' in text
        assert "rvcloud_gateway_serving 1.0" in text
    finally:
        rep.close()
