"""`rvcloud watch` against the real local service: settle before sending, catch up after a stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from rvcloud.v1 import gateway_pb2 as pb
from rvcloud.v1 import gateway_pb2_grpc as pb_grpc
from tests.uploader.service import Service, new_service, uploader_env
from tests.uploader.tree import synthetic_path

SETTLE = 2.0


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    s = new_service(tmp_path_factory.mktemp("data"))
    try:
        yield s
    finally:
        s.stop()


class Watch:
    def __init__(self, svc: Service, root: Path, state: Path, home: Path, log: Path) -> None:
        self.argv = [
            sys.executable,
            "-m",
            "rvcloud.cli",
            "watch",
            str(root),
            "-d",
            svc.addr,
            "--state",
            str(state),
        ]
        self.argv += ["--settle", str(SETTLE), "--poll-interval", "1", "--retry-max-time", "5"]
        self.env = uploader_env(home)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=out, env=self.env)
        self.wait_for_log("start-up pass")

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log.read_text():
                return
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not logged: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=30) == 0, self.log.read_text()


def _status(stub: pb_grpc.GatewayStub, name: str) -> pb.FileStatus | None:
    try:
        return stub.GetFile(pb.GetFileRequest(project="routeviews", filename=name), timeout=5)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
            return None
        raise


def _wait_done(stub: pb_grpc.GatewayStub, name: str, timeout: float = 60) -> pb.FileStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rec = _status(stub, name)
        if rec is not None and rec.status in (pb.STATUS_DONE, pb.STATUS_FAILED):
            return rec
        time.sleep(0.2)
    raise AssertionError(f"{name} not DONE in {timeout} s")


def test_watch_waits_for_a_slow_write_and_catches_up_after_a_stop(
    svc: Service, tmp_path: Path, home: Path
) -> None:
    root = tmp_path / "archive"
    (root / "route-views.jinx" / "bgpdata").mkdir(parents=True)
    old = "route-views.jinx/bgpdata/2024.05/UPDATES/updates.20240501.0000.bz2"
    synthetic_path(root, old, "updates", seed=300)
    os.utime(root / old, (time.time() - 600, time.time() - 600))  # finished long ago
    watch = Watch(svc, root, tmp_path / "state", home, tmp_path / "watch.log")
    channel = grpc.insecure_channel(svc.addr)
    stub = pb_grpc.GatewayStub(channel)  # type: ignore[no-untyped-call]
    try:
        watch.start()
        # A file already there at start is sent by the start-up pass.
        assert _wait_done(stub, old).status == pb.STATUS_DONE

        # A file written slowly, in pieces: nothing may be sent before it stops growing.
        synthetic_path(
            tmp_path / "gen", "route-views.jinx/bgpdata/2024.05/RIBS/rib.20240501.0200.bz2", "rib", 301
        )
        src = tmp_path / "gen" / "route-views.jinx/bgpdata/2024.05/RIBS/rib.20240501.0200.bz2"
        data = src.read_bytes()
        slow = "route-views.jinx/bgpdata/2024.05/RIBS/rib.20240501.0200.bz2"
        dest = root / slow
        dest.parent.mkdir(parents=True, exist_ok=True)
        pieces = [data[i : i + len(data) // 5 + 1] for i in range(0, len(data), len(data) // 5 + 1)]
        with dest.open("wb") as f:
            for piece in pieces:
                f.write(piece)
                f.flush()
                last_write = time.monotonic()
                if piece is not pieces[-1]:
                    time.sleep(SETTLE * 0.6)  # shorter than the settle time: still growing
                    assert _status(stub, slow) is None, "uploaded while still being written"
        while time.monotonic() < last_write + SETTLE * 0.9:
            assert _status(stub, slow) is None, "uploaded before the settle time passed"
            time.sleep(0.1)
        rec = _wait_done(stub, slow)
        assert rec.status == pb.STATUS_DONE and rec.sha256 and rec.size == len(data)

        # A file renamed into place is complete at once (its hidden temporary is ignored).
        tmp = root / "route-views.jinx/bgpdata/2024.05/UPDATES/.updates.20240501.0015.bz2.part"
        synthetic_path(
            tmp_path / "gen", "x/bgpdata/2024.05/UPDATES/updates.20240501.0015.bz2", "updates", 302
        )
        tmp.write_bytes((tmp_path / "gen/x/bgpdata/2024.05/UPDATES/updates.20240501.0015.bz2").read_bytes())
        renamed = "route-views.jinx/bgpdata/2024.05/UPDATES/updates.20240501.0015.bz2"
        t0 = time.monotonic()
        tmp.rename(root / renamed)
        assert _wait_done(stub, renamed).status == pb.STATUS_DONE
        assert time.monotonic() - t0 < SETTLE + 8

        # Written while watch was stopped: sent when it starts again.
        watch.stop()
        missed = "route-views.jinx/bgpdata/2024.05/UPDATES/updates.20240501.0030.bz2"
        synthetic_path(root, missed, "updates", seed=303)
        os.utime(root / missed, (time.time() - 60, time.time() - 60))
        time.sleep(0.5)
        assert _status(stub, missed) is None
        watch.start()
        assert _wait_done(stub, missed).status == pb.STATUS_DONE
        watch.wait_for_log("uploaded " + missed)
        log = watch.log.read_text()
        assert log.count("uploaded " + old) == 1  # not sent again after the restart
    finally:
        watch.stop()
        channel.close()
