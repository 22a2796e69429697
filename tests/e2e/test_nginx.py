"""deploy/nginx/rvcloud-grpc.conf in front of real gateway replicas: the settings that matter.

Each claim of deploy/nginx/README.md is checked against nginx itself (embedded
backends, so no emulators; a few seconds): uploads larger than nginx's default body
limit pass, and the timeouts are idle timers, not limits on a stream's length; a
call to a replica that is down goes to the other one.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from rvcloud.backends.settings import embedded_urls
from rvcloud.cli.client import is_transient
from rvcloud.v1 import gateway_pb2 as pb
from rvcloud.v1 import gateway_pb2_grpc as pb_grpc
from tests.e2e.nginx import Nginx, die_with_parent, install_problem, nginx_binary
from tests.e2e.service import cli_env, free_port


@pytest.fixture(scope="module")
def nginx_bin() -> str:
    found = nginx_binary()
    if found is None:
        pytest.skip(install_problem())
    return found


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One gateway replica on the embedded backends; yields its HOST:PORT."""
    data = tmp_path_factory.mktemp("gw")
    addr = f"127.0.0.1:{free_port()}"
    flags = [f"--{k}={v}" for k, v in embedded_urls(str(data)).items()]
    log = open(data / "gateway.log", "wb")  # noqa: SIM115 -- closed at teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "rvcloud.ingest_gateway", "--listen", addr, "--shutdown-grace", "1", *flags],
        stdout=log,
        stderr=log,
        env=cli_env(),
        preexec_fn=die_with_parent,
    )
    try:
        with grpc.insecure_channel(addr) as ch:
            grpc.channel_ready_future(ch).result(timeout=30)
        yield addr
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _requests(name: str, data: bytes, chunk: int, pauses: dict[int, float]) -> Iterator[pb.UploadRequest]:
    """Header, then ``data`` in ``chunk``-byte pieces; ``pauses[i]`` seconds before piece i."""
    yield pb.UploadRequest(
        header=pb.UploadHeader(
            filename=name,
            project="routeviews",
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            convert=False,  # stored is final: no converter in this test
        )
    )
    for i, start in enumerate(range(0, len(data), chunk)):
        time.sleep(pauses.get(i, 0.0))
        yield pb.UploadRequest(chunk=data[start : start + chunk])


def _upload(
    addr: str, name: str, data: bytes, chunk: int = 1 << 20, pauses: dict[int, float] | None = None
) -> pb.UploadResponse:
    with grpc.insecure_channel(addr) as ch:
        stub = pb_grpc.GatewayStub(ch)  # type: ignore[no-untyped-call]
        reply: pb.UploadResponse = stub.Upload(_requests(name, data, chunk, pauses or {}), timeout=60)
        return reply


def _name(tag: str) -> str:
    return f"route-views.nginx/bgpdata/2024.01/UPDATES/updates.20240101.{tag}.bz2"


DATA = bytes(range(256)) * (12 << 10)  # 3 MiB, three times nginx's default body limit


def test_upload_larger_than_nginx_default_body_limit(nginx_bin: str, gateway: str, tmp_path: Path) -> None:
    ngx = Nginx(nginx_bin, tmp_path / "nginx", free_port())
    ngx.start([gateway])
    try:
        reply = _upload(ngx.addr, _name("0000"), DATA)
    finally:
        ngx.stop()
    assert reply.file.status == pb.STATUS_DONE
    assert reply.file.bytes_received == len(DATA) == 3 << 20
    assert reply.file.sha256 == hashlib.sha256(DATA).hexdigest()
    [call] = ngx.calls()
    assert call["call"] == "/rvcloud.v1.Gateway/Upload"
    assert call["grpc_status"] == "0" and call["upstream"] == gateway
    assert int(call["request_bytes"]) > len(DATA)

    # The same upload with nginx's default client_max_body_size (1m) is refused: the
    # setting is what lets it through.
    ngx = Nginx(nginx_bin, tmp_path / "nginx-default", free_port())
    ngx.start([gateway], overrides={"client_max_body_size": None})
    try:
        with pytest.raises(grpc.RpcError) as ei:
            _upload(ngx.addr, _name("0001"), DATA)
    finally:
        ngx.stop()
    # The client sees only a reset stream (INTERNAL, RST_STREAM); nginx's log says why.
    assert ei.value.code() == grpc.StatusCode.INTERNAL, ei.value
    assert "client intended to send too large" in (tmp_path / "nginx-default" / "error.log").read_text()


def test_timeouts_are_idle_timers_not_stream_limits(nginx_bin: str, gateway: str, tmp_path: Path) -> None:
    """With every timeout at 2 s, a 5 s stream that never pauses 2 s passes; one 3 s pause cuts it."""
    short = {"client_body_timeout": "2s", "grpc_read_timeout": "2s", "grpc_send_timeout": "2s"}
    ngx = Nginx(nginx_bin, tmp_path / "nginx", free_port())
    ngx.start([gateway], overrides=short)
    try:
        t0 = time.monotonic()
        reply = _upload(ngx.addr, _name("0100"), DATA, chunk=256 << 10, pauses=dict.fromkeys(range(12), 0.45))
        took = time.monotonic() - t0
        with pytest.raises(grpc.RpcError) as ei:
            _upload(ngx.addr, _name("0101"), DATA, chunk=256 << 10, pauses={3: 3.0})
    finally:
        ngx.stop()
    assert reply.file.status == pb.STATUS_DONE and reply.file.bytes_received == len(DATA)
    assert took > 5.0  # longer than two of the timers back to back
    # nginx resets the client's stream (RST_STREAM): gRPC reports INTERNAL, not a reply.
    assert ei.value.code() == grpc.StatusCode.INTERNAL, ei.value
    assert "RST_STREAM" in (ei.value.details() or "")
    assert is_transient(ei.value)  # the CLI retries such a cut (and resumes the upload)
    calls = ngx.calls()
    assert [c["grpc_status"] for c in calls] == ["0", ""], calls


def test_call_to_a_replica_that_is_down_goes_to_the_other(
    nginx_bin: str, gateway: str, tmp_path: Path
) -> None:
    down = f"127.0.0.1:{free_port()}"  # nothing listens there
    ngx = Nginx(nginx_bin, tmp_path / "nginx", free_port())
    ngx.start([down, gateway])
    try:
        with grpc.insecure_channel(ngx.addr) as ch:
            stub = pb_grpc.GatewayStub(ch)  # type: ignore[no-untyped-call]
            for i in range(4):
                with pytest.raises(grpc.RpcError) as ei:
                    stub.GetFile(pb.GetFileRequest(project="routeviews", filename=_name(f"02{i:02d}")))
                # NOT_FOUND comes from the gateway: every call reached the live replica.
                assert ei.value.code() == grpc.StatusCode.NOT_FOUND, ei.value
    finally:
        ngx.stop()
    calls = ngx.calls()
    assert len(calls) == 4 and all(c["grpc_status"] == "5" for c in calls), calls
    # One call tried the dead replica first, then the live one; after that the dead one
    # is out of rotation (max_fails=1, fail_timeout=10s).
    upstreams = [c["upstream"] for c in calls]
    assert sorted(upstreams) == sorted([f"{down}, {gateway}", gateway, gateway, gateway]), upstreams
