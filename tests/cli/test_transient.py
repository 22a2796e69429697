"""Which gRPC errors the CLI retries: transient codes, and a stream a proxy reset."""

from __future__ import annotations

import grpc
import pytest

from rvcloud.cli.client import EXIT_FAILED, EXIT_UNAVAILABLE, is_transient, rpc_error_exit

# What grpcio reports when nginx resets a stream whose upstream replica died (seen in
# tests/e2e/test_cluster.py and test_nginx.py).
NGINX_RESET = "Stream removed (RST_STREAM (Received RST_STREAM with error code 2))"


class Err(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "details", "transient"),
    [
        (grpc.StatusCode.UNAVAILABLE, "Connection reset by peer", True),
        (grpc.StatusCode.INTERNAL, NGINX_RESET, True),
        (grpc.StatusCode.INTERNAL, "Exception serializing request!", False),
        (grpc.StatusCode.INTERNAL, "", False),
        (grpc.StatusCode.DATA_LOSS, "sha256 mismatch; RST_STREAM", False),
        (grpc.StatusCode.INVALID_ARGUMENT, "bad header", False),
    ],
)
def test_is_transient(code: grpc.StatusCode, details: str, transient: bool) -> None:
    assert is_transient(Err(code, details)) is transient


def test_a_reset_stream_exits_as_unavailable(capsys: pytest.CaptureFixture[str]) -> None:
    assert rpc_error_exit(Err(grpc.StatusCode.INTERNAL, NGINX_RESET)) == EXIT_UNAVAILABLE
    assert rpc_error_exit(Err(grpc.StatusCode.INTERNAL, "boom")) == EXIT_FAILED
    assert "error: INTERNAL: Stream removed" in capsys.readouterr().err
