"""Retries: backoff with full jitter, bounded; transient codes retried, permanent ones reported once."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from rvcloud.cli.client import GatewayClient
from rvcloud.cli.main import main
from rvcloud.cli.progress import Progress
from rvcloud.cli.retry import Retrier, RetryPolicy
from rvcloud.cli.upload import send_with_retry
from rvcloud.v1 import gateway_pb2
from tests.cli.fake_gateway import Gateway

NAME = "route-views.jinx/bgpdata/2024.01/UPDATES/updates.20240101.0000.bz2"


@pytest.fixture
def client(gateway: Gateway) -> Iterator[GatewayClient]:
    with grpc.insecure_channel(gateway.address) as channel:
        yield GatewayClient(channel)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def test_unavailable_then_ok_is_retried(gateway: Gateway, client: GatewayClient) -> None:
    gateway.fake.check_failures = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED]
    sleeps = Sleeps()
    retrier = Retrier(RetryPolicy(attempts=5, initial=0.5, max_delay=10), sleep=sleeps)
    [check] = retrier.call(lambda: client.check_files("routeviews", [(NAME, "0" * 64)]))
    assert check.filename == NAME and not check.done
    assert len(gateway.fake.check_requests) == 3
    assert len(sleeps.calls) == 2
    assert 0 <= sleeps.calls[0] <= 0.5 and 0 <= sleeps.calls[1] <= 1.0  # capped at initial * 2**(n-1)


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.DATA_LOSS,
    ],
)
def test_permanent_error_is_not_retried(
    gateway: Gateway, client: GatewayClient, code: grpc.StatusCode
) -> None:
    gateway.fake.check_failures = [code]
    sleeps = Sleeps()
    with pytest.raises(grpc.RpcError) as e:
        Retrier(RetryPolicy(attempts=5), sleep=sleeps).call(
            lambda: client.check_files("routeviews", [(NAME, "")])
        )
    assert e.value.code() == code  # type: ignore[attr-defined]
    assert len(gateway.fake.check_requests) == 1
    assert sleeps.calls == []


def test_attempts_are_bounded(gateway: Gateway, client: GatewayClient) -> None:
    gateway.fake.check_failures = [grpc.StatusCode.UNAVAILABLE] * 10
    with pytest.raises(grpc.RpcError):
        Retrier(RetryPolicy(attempts=3, initial=0.01), sleep=Sleeps()).call(
            lambda: client.check_files("routeviews", [])
        )
    assert len(gateway.fake.check_requests) == 3


def test_total_time_is_bounded(gateway: Gateway, client: GatewayClient) -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    gateway.fake.check_failures = [grpc.StatusCode.DEADLINE_EXCEEDED] * 100
    policy = RetryPolicy(attempts=100, initial=1.0, max_delay=4.0, max_time=10.0)
    with pytest.raises(grpc.RpcError):
        Retrier(policy, sleep=sleep, clock=lambda: now[0]).call(lambda: client.check_files("routeviews", []))
    assert now[0] <= 10.0
    assert 3 <= len(gateway.fake.check_requests) < 100


def test_full_jitter_delays() -> None:
    policy = RetryPolicy(initial=0.5, max_delay=8.0)
    rng = random.Random(7)
    for retry in range(1, 10):
        cap = min(8.0, 0.5 * 2 ** (retry - 1))
        samples = [policy.delay(retry, rng) for _ in range(200)]
        assert all(0 <= s <= cap for s in samples)
        assert max(samples) > cap * 0.8 and min(samples) < cap * 0.2  # spread over the whole range


def test_upload_changed_file_after_data_loss_is_sent_again(
    gateway: Gateway, client: GatewayClient, tmp_path: Path
) -> None:
    f = tmp_path / "f.bz2"
    f.write_bytes(b"new content")
    # The header still names the content hashed before the file changed; the service
    # answers DATA_LOSS, a re-hash shows the file changed, and the new content goes out.
    header = gateway_pb2.UploadHeader(filename=NAME, project="routeviews", sha256="0" * 64, size=3)
    gateway.fake.upload_failures = [grpc.StatusCode.DATA_LOSS]
    reply = send_with_retry(
        client, str(f), header, retrier=Retrier(RetryPolicy(initial=0.01)), progress=Progress(), timeout=10
    )
    assert reply.file.sha256 == hashlib.sha256(b"new content").hexdigest()
    [rec] = gateway.fake.uploads
    assert rec.data == b"new content" and rec.header.sha256 == reply.file.sha256


def _tree_with_one_file(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    path = root / NAME
    path.parent.mkdir(parents=True)
    path.write_bytes(b"mrt bytes")
    return root


def _backfill(
    gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, object]]:
    root = _tree_with_one_file(tmp_path)
    argv = ["backfill", str(root), "-d", gateway.address, "--state", str(tmp_path / "state"), "--json", "-q"]
    argv += ["--retry-initial", "0.01"]
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


def test_backfill_retries_an_upload_through_unavailable(
    gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.fake.upload_failures = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED]
    gateway.fake.check_failures = [grpc.StatusCode.UNAVAILABLE]
    gateway.fake.script = [gateway_pb2.FileStatus(status=gateway_pb2.STATUS_DONE, stage="loaded")]
    code, report = _backfill(gateway, tmp_path, capsys)
    assert code == 0, report
    assert report["counts"] == {"uploaded": 1, "present": 0, "failed": 0, "would_upload": 0}
    assert len(gateway.fake.uploads) == 1 and gateway.fake.uploads[0].data == b"mrt bytes"
    assert len(gateway.fake.check_requests) == 2


def test_backfill_reports_a_permanent_error_once(
    gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.fake.upload_failures = [grpc.StatusCode.PERMISSION_DENIED]
    code, report = _backfill(gateway, tmp_path, capsys)
    assert code == 1
    [f] = report["files"]  # type: ignore[misc]
    assert f["outcome"] == "failed" and f["error"].startswith("PERMISSION_DENIED")
    assert gateway.fake.uploads == []  # no second attempt reached the service


def test_backfill_gateway_down_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.e2e.service import free_port

    root = _tree_with_one_file(tmp_path)
    argv = ["backfill", str(root), "-d", f"127.0.0.1:{free_port()}", "--state", str(tmp_path / "s"), "--json"]
    assert main([*argv, "--retry-attempts", "2", "--retry-initial", "0.01"]) == 3
    out, err = capsys.readouterr()
    [f] = json.loads(out)["files"]
    assert f["outcome"] == "failed" and "UNAVAILABLE" in f["error"]
    assert "1 files: 0 uploaded (0 B), 0 already present, 0 failed" not in err and "1 failed" in err


def test_retry_after_trailer_is_a_floor_under_the_delay() -> None:
    """RESOURCE_EXHAUSTED with retry-after-ms: the CLI never comes back sooner."""
    import grpc

    from rvcloud.cli.retry import Retrier, RetryPolicy

    class Exhausted(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.RESOURCE_EXHAUSTED

        def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
            return (("retry-after-ms", "2500"),)

    slept: list[float] = []
    calls = iter([Exhausted(), "ok"])

    def fn() -> str:
        v = next(calls)
        if isinstance(v, Exception):
            raise v
        return v

    r = Retrier(RetryPolicy(attempts=3, initial=0.01, max_delay=0.01, max_time=60), sleep=slept.append)
    assert r.call(fn) == "ok"
    assert slept == [2.5]
