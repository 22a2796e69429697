"""Resumable uploads: a cut upload continues from the bytes the blob store committed.

The acceptance test runs the real gateway process and the real CLI with a TCP proxy
between them that counts the bytes the CLI sends and cuts the connection once, half
way through a 200 MiB file: the CLI must finish on its own, the stored object must be
the file, and the bytes sent must show that what was committed was not sent again.
Other tests: the resumed stream lands on another gateway process (the first one
killed, its lease still running), a per-call deadline, and in-process checks of the
protocol (wrong sha256 or size, stale offsets, takeover, idempotency).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from rvcloud.backends.blob.file import FileBlobStore
from rvcloud.backends.blob.staging import PREFIX, UploadSession
from rvcloud.cli.client import GatewayClient
from rvcloud.cli.progress import Progress
from rvcloud.cli.retry import Retrier, RetryPolicy
from rvcloud.cli.upload import SendStats, send_with_retry
from rvcloud.metadata.sqlite import SqliteStatusStore
from rvcloud.v1 import gateway_pb2 as pb
from tests.e2e.service import free_port
from tests.gateway.helpers import FILENAME, Replica, start_replica, wait_for

MIB = 1 << 20
RAW_KEY = f"routeviews/{FILENAME}"


# ---- a TCP proxy that counts and cuts --------------------------------------------


class CuttingProxy:
    """Forwards TCP connections to ``targets`` (the i-th connection to ``targets[min(i, n-1)]``).

    Counts the bytes forwarded client -> server over all connections. Once that count
    reaches ``cut_after`` (once per run) it calls ``on_cut`` and closes the connection
    both ways: what a dying load balancer, replica or network path does to a stream.
    ``rate`` (bytes/s, client -> server) throttles, for the deadline test.
    """

    def __init__(
        self,
        targets: list[int],
        *,
        cut_after: int | None = None,
        on_cut: Callable[[], None] | None = None,
        rate: float | None = None,
    ) -> None:
        self.targets = targets
        self.cut_after = cut_after
        self.on_cut = on_cut
        self.rate = rate
        self.forwarded = 0  # client -> server bytes, all connections
        self.per_connection: list[int] = []
        self.connections = 0
        self.cut_at: int | None = None
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        if rate:
            # A slow link does not hide megabytes in the proxy's receive buffer (Linux
            # grows it up to tcp_rmem's maximum otherwise), which the client would count
            # as sent long before they arrive.
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        self.port = int(self._sock.getsockname()[1])
        self._open: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                target = self.targets[min(self.connections, len(self.targets) - 1)]
                index = self.connections
                self.connections += 1
                self.per_connection.append(0)
            try:
                upstream = socket.create_connection(("127.0.0.1", target))
            except OSError:
                client.close()
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._open += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, index), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, index: int | None) -> None:
        """Copy src to dst; ``index`` is the connection's number for the client -> server side."""
        started = time.monotonic()
        moved = 0
        try:
            while data := src.recv(256 * 1024):
                dst.sendall(data)
                if index is None:
                    continue
                moved += len(data)
                cut = False
                with self._lock:
                    self.forwarded += len(data)
                    self.per_connection[index] += len(data)
                    if (
                        self.cut_after is not None
                        and self.cut_at is None
                        and self.forwarded >= self.cut_after
                    ):
                        self.cut_at = self.forwarded
                        cut = True
                if cut:
                    if self.on_cut is not None:
                        self.on_cut()
                    break
                if self.rate:
                    ahead = moved / self.rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def close(self) -> None:
        self._sock.close()
        for s in self._open:
            with contextlib.suppress(OSError):
                s.close()


# ---- the real processes ----------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RVCLOUD_")}
    env["RVCLOUD_CONFIG"] = os.devnull  # no operator config file leaks into the test
    return env


class GatewayProcess:
    """``python -m rvcloud.ingest_gateway`` on embedded backends under ``data`` (shareable)."""

    def __init__(self, data: Path, log: Path, *extra: str) -> None:
        self.port = free_port()
        self.log = log
        cmd = [
            sys.executable,
            "-m",
            "rvcloud.ingest_gateway",
            f"--listen=127.0.0.1:{self.port}",
            f"--blob=file://{data}/blobs",
            f"--bus=sqlite://{data}/bus.db",
            f"--status=sqlite://{data}/status.db",
            "--shutdown-grace=1",
            *extra,
        ]
        with open(log, "w") as f:
            self.proc = subprocess.Popen(cmd, stderr=f, stdout=subprocess.DEVNULL, env=_env())
        wait_for(lambda: "listening on" in log.read_text(), timeout=30, what=f"gateway {log.name}")

    def text(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _random_file(path: Path, size: int) -> str:
    """``size`` random bytes written in 8 MiB pieces; returns their SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(8 * MIB, left))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.hexdigest()


def _stored_sha(blobs: FileBlobStore) -> str:
    h = hashlib.sha256()
    with blobs.open(RAW_KEY) as f:
        while block := f.read(8 * MIB):
            h.update(block)
    return h.hexdigest()


def _cli_upload(path: Path, port: int, *extra: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "rvcloud.cli", "upload", "-f", str(path), "-d", f"127.0.0.1:{port}"]
    cmd += ["--project", "routeviews", "--filename", FILENAME, "--no-convert", "--json"]
    cmd += ["--retry-initial", "0.2", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())


def test_200_mib_upload_cut_half_way_resumes_without_resending(tmp_path: Path) -> None:
    size = 200 * MIB
    part = 16 * MIB  # the gateway's default part size
    src = tmp_path / "src" / "rib.bz2"
    sha = _random_file(src, size)
    data = tmp_path / "data"
    gw = GatewayProcess(data, tmp_path / "gateway.log")
    proxy = CuttingProxy([gw.port], cut_after=100 * MIB)
    try:
        started = time.monotonic()
        r = _cli_upload(src, proxy.port)
        seconds = time.monotonic() - started
        assert r.returncode == 0, (r.stdout, r.stderr, gw.text()[-3000:])
        out = json.loads(r.stdout)
        assert (out["status"], out["sha256"], out["size"]) == ("DONE", sha, size)
        assert proxy.cut_at is not None and proxy.connections >= 2, "the stream was never cut"
        blobs = FileBlobStore(data / "blobs")
        assert _stored_sha(blobs) == sha
        assert list(blobs.list(PREFIX)) == []  # the parts are gone after the commit
        # The resumed stream started at or shortly before the cut: the gateway committed
        # all it had received (its part in progress too, when it noticed the cut in time)...
        resumed = [
            int(line.split(" at byte ")[1].split()[0])
            for line in gw.text().splitlines()
            if "resuming" in line
        ]
        assert len(resumed) == 1 and 100 * MIB - part <= resumed[0] <= proxy.cut_at
        # ...and the committed bytes were not sent again: all connections together carried
        # the file once, plus what was in flight beyond the last committed part, plus
        # gRPC framing (a few bytes per 1 MiB chunk) and the query/status calls.
        assert size < proxy.forwarded < size + part + 4 * MIB, proxy.forwarded
        print(
            f"\n200 MiB upload cut at {proxy.cut_at / MIB:.1f} MiB, resumed at {resumed[0] / MIB:.0f} MiB: "
            f"{proxy.forwarded / MIB:.1f} MiB sent in {proxy.connections} connections, {seconds:.1f} s"
        )
    finally:
        proxy.close()
        gw.stop()


def test_resume_lands_on_another_replica_after_the_first_died(tmp_path: Path) -> None:
    """Two gateway processes share the stores; the first is killed mid-stream (its lease
    still has minutes to run) and the CLI's retry, sent to the second, continues from the
    parts the first committed."""
    size, part = 64 * MIB, 8 * MIB
    src = tmp_path / "src" / "rib.bz2"
    sha = _random_file(src, size)
    data = tmp_path / "data"
    flags = (f"--part-size={part}", "--receiving-lease=600")
    a = GatewayProcess(data, tmp_path / "a.log", *flags)
    b = GatewayProcess(data, tmp_path / "b.log", *flags)
    proxy = CuttingProxy(
        [a.port, b.port], cut_after=36 * MIB, on_cut=lambda: a.proc.send_signal(signal.SIGKILL)
    )
    try:
        started = time.monotonic()
        r = _cli_upload(src, proxy.port)
        seconds = time.monotonic() - started
        assert r.returncode == 0, (r.stdout, r.stderr, b.text()[-3000:])
        assert a.proc.wait(timeout=10) == -signal.SIGKILL
        assert json.loads(r.stdout)["sha256"] == sha
        blobs = FileBlobStore(data / "blobs")
        assert _stored_sha(blobs) == sha and list(blobs.list(PREFIX)) == []
        # The second replica continued from what the first had committed (a part boundary:
        # the killed one kept nothing of its part in progress) ...
        [resumed] = [
            int(x.split(" at byte ")[1].split()[0]) for x in b.text().splitlines() if "resuming" in x
        ]
        assert resumed % part == 0 and 16 * MIB <= resumed <= proxy.cut_at  # type: ignore[operator]
        assert "resuming" not in a.text()
        # ... long before the dead replica's 600 s lease ran out: it was taken over.
        assert seconds < 60
        # The killed replica kept nothing of its part in progress, and up to a few MiB were
        # in flight (socket buffers, the gRPC receive window) when it died.
        assert size < proxy.forwarded < size + part + 8 * MIB, (proxy.per_connection, proxy.cut_at)
        status = SqliteStatusStore(str(data / "status.db"))
        try:
            rec = status.get("routeviews", FILENAME)
        finally:
            status.close()
        assert rec is not None and (rec.status, rec.stage, rec.lease_owner) == ("DONE", "stored", "")
        print(
            f"\n64 MiB upload, replica A killed at {proxy.cut_at / MIB:.1f} MiB (lease 600 s), replica B "  # type: ignore[operator]
            f"resumed at {resumed / MIB:.0f} MiB: {proxy.forwarded / MIB:.1f} MiB sent, {seconds:.1f} s"
        )
    finally:
        proxy.close()
        a.stop()
        b.stop()


def test_a_killed_cli_run_again_continues_where_it_stopped(tmp_path: Path) -> None:
    """The uploader itself dies mid-file (SIGKILL); running the same command again asks
    the gateway what it committed and sends only the rest."""
    size, part = 64 * MIB, 8 * MIB
    src = tmp_path / "src" / "rib.bz2"
    sha = _random_file(src, size)
    data = tmp_path / "data"
    gw = GatewayProcess(data, tmp_path / "gateway.log", f"--part-size={part}")
    first: list[subprocess.Popen[str]] = []
    proxy = CuttingProxy([gw.port], cut_after=30 * MIB, on_cut=lambda: first[0].kill())
    try:
        cmd = [sys.executable, "-m", "rvcloud.cli", "upload", "-f", str(src), "-d", f"127.0.0.1:{proxy.port}"]
        cmd += ["--project", "routeviews", "--filename", FILENAME, "--no-convert", "--json"]
        first.append(
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        )
        first[0].communicate(timeout=120)
        assert first[0].returncode == -signal.SIGKILL
        sent_first = proxy.forwarded
        r = _cli_upload(src, proxy.port)
        assert r.returncode == 0, (r.stdout, r.stderr, gw.text()[-3000:])
        assert json.loads(r.stdout)["sha256"] == sha
        assert _stored_sha(FileBlobStore(data / "blobs")) == sha
        [resumed] = [
            int(x.split(" at byte ")[1].split()[0]) for x in gw.text().splitlines() if "resuming" in x
        ]
        assert 30 * MIB - part <= resumed <= sent_first
        assert "resuming" in r.stderr  # the CLI says so
        assert size < proxy.forwarded < size + part + 8 * MIB, proxy.per_connection
    finally:
        proxy.close()
        gw.stop()


def test_upload_resumes_after_each_deadline(tmp_path: Path) -> None:
    """A link too slow for the per-call timeout: every call ends in DEADLINE_EXCEEDED, keeps
    what it sent (the gateway commits the part in progress), and the next one continues."""
    size, part = 24 * MIB, 2 * MIB
    src = tmp_path / "src" / "rib.bz2"
    sha = _random_file(src, size)
    data = tmp_path / "data"
    gw = GatewayProcess(data, tmp_path / "gateway.log", f"--part-size={part}")
    proxy = CuttingProxy([gw.port], rate=6 * MIB)  # about 4 s for the file, calls time out after 2.5 s
    try:
        r = _cli_upload(src, proxy.port, "--timeout", "2.5", "--retry-attempts", "8")
        assert r.returncode == 0, (r.stdout, r.stderr, gw.text()[-3000:])
        assert r.stderr.count("DEADLINE_EXCEEDED") >= 1, r.stderr
        assert json.loads(r.stdout)["sha256"] == sha
        assert _stored_sha(FileBlobStore(data / "blobs")) == sha
        resumed = [int(x.split(" at byte ")[1].split()[0]) for x in gw.text().splitlines() if "resuming" in x]
        kept = [x for x in gw.text().splitlines() if " kept " in x]
        assert resumed and resumed == sorted(resumed) and resumed[0] > 0
        # A call that hit its deadline committed all it had received, its part in progress too.
        assert len(kept) >= len(resumed)
        # Each deadline loses at most what was in flight (the client's socket buffer, up to
        # 4 MiB on Linux), never a committed part.
        assert size < proxy.forwarded < size + len(resumed) * 5 * MIB, (proxy.per_connection, resumed)
        print(
            f"\n24 MiB upload at 6 MiB/s with 2.5 s per call: resumed at {[x // MIB for x in resumed]} MiB, "
            f"{proxy.forwarded / MIB:.1f} MiB sent in {proxy.connections} connection(s)"
        )
    finally:
        proxy.close()
        gw.stop()


# ---- the protocol, in process ----------------------------------------------------

PART = 64 * 1024
CHUNK = 16 * 1024


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[Replica]:
    r = start_replica(tmp_path, part_size=PART)
    yield r
    r.close()


def _header(
    data: bytes, *, offset: int = 0, resume: bool = False, sha: str | None = None
) -> pb.UploadRequest:
    return pb.UploadRequest(
        header=pb.UploadHeader(
            filename=FILENAME,
            project="routeviews",
            sha256=sha or hashlib.sha256(data).hexdigest(),
            size=len(data),
            convert=False,
            write_offset=offset,
            resume=resume,
        )
    )


def _stream(
    data: bytes,
    *,
    offset: int = 0,
    resume: bool = False,
    stop_at: int | None = None,
    hold: threading.Event | None = None,
) -> Iterator[pb.UploadRequest]:
    """Header and chunks from ``offset``; at ``stop_at`` either wait for ``hold`` or fail (a cut).

    Failing in the request iterator makes gRPC cancel the call: the gateway sees its
    stream end early, as with a cut connection or a client-side deadline.
    """
    yield _header(data, offset=offset, resume=resume)
    for i in range(offset, len(data), CHUNK):
        if stop_at is not None and i >= stop_at:
            if hold is None:
                time.sleep(0.5)  # the gateway takes in everything sent so far
                raise ConnectionError("cut")
            hold.wait(30)
            stop_at = None
        yield pb.UploadRequest(chunk=data[i : i + CHUNK])


def _query(
    stub: object, data: bytes, *, sha: str | None = None, size: int | None = None
) -> pb.QueryWriteStatusResponse:
    req = pb.QueryWriteStatusRequest(
        project="routeviews",
        filename=FILENAME,
        sha256=sha or hashlib.sha256(data).hexdigest(),
        size=len(data) if size is None else size,
    )
    return stub.QueryWriteStatus(req, timeout=10)  # type: ignore[attr-defined, no-any-return]


def _cut_upload(stub: object, data: bytes, at: int) -> int:
    """An upload whose client fails at byte ``at``; returns the committed size once settled."""
    with pytest.raises(grpc.RpcError):
        stub.Upload(_stream(data, stop_at=at), timeout=10)  # type: ignore[attr-defined]
    wait_for(lambda: not _query(stub, data).in_progress, what="the cut stream to end")
    return int(_query(stub, data).committed_size)


def test_query_resume_and_idempotency(replica: Replica) -> None:
    data = b"BZh9" + os.urandom(10 * PART + 1234)
    stub = replica.stub()
    committed = _cut_upload(stub, data, 5 * PART + 3 * CHUNK)
    # The cut stream kept even its part in progress: nothing received is lost.
    assert committed == 5 * PART + 3 * CHUNK
    # Another sha256, size or file: nothing committed.
    assert _query(stub, data, sha="0" * 64).committed_size == 0
    assert _query(stub, data, size=len(data) + 1).committed_size == 0
    before = replica.status.get("routeviews", FILENAME)
    # A stale offset is refused before anything changes.
    for bad in (committed - CHUNK, committed + CHUNK):
        with pytest.raises(grpc.RpcError) as e:
            stub.Upload(_stream(data, offset=bad, resume=True), timeout=10)
        assert e.value.code() == grpc.StatusCode.ABORTED  # type: ignore[attr-defined]
        assert f"committed {committed} bytes" in e.value.details()  # type: ignore[attr-defined]
    assert replica.status.get("routeviews", FILENAME) == before
    reply = stub.Upload(_stream(data, offset=committed, resume=True), timeout=10)
    assert (reply.file.status, reply.file.size, reply.file.content_encoding) == (
        pb.STATUS_DONE,
        len(data),
        "bzip2",
    )
    assert replica.blobs.open(RAW_KEY).read() == data
    raw = replica.blobs.stat(RAW_KEY)
    assert (raw.content_type, raw.metadata["sha256"]) == (
        "application/x-bzip2",
        hashlib.sha256(data).hexdigest(),
    )
    assert list(replica.blobs.list(PREFIX)) == []
    st = _query(stub, data)
    assert (st.complete, st.committed_size) == (True, len(data))
    # Idempotent: a DONE file with the same sha256 answers already_done, resumed or not.
    for offset in (0, len(data)):
        again = stub.Upload(_stream(data, offset=offset, resume=True), timeout=10)
        assert again.already_done and again.file.sha256 == hashlib.sha256(data).hexdigest()
    assert replica.blobs.open(RAW_KEY).read() == data


def test_resume_with_another_sha_or_size_does_not_reuse_parts(replica: Replica) -> None:
    first = os.urandom(6 * PART)
    stub = replica.stub()
    committed = _cut_upload(stub, first, 3 * PART)
    assert committed == 3 * PART
    second = first[: 2 * PART] + os.urandom(4 * PART)  # same size, different content
    longer = first + b"x"
    for other in (second, longer):
        assert _query(stub, other).committed_size == 0
        with pytest.raises(grpc.RpcError) as e:
            stub.Upload(_stream(other, offset=committed, resume=True), timeout=10)
        assert e.value.code() == grpc.StatusCode.ABORTED  # type: ignore[attr-defined]
    reply = stub.Upload(_stream(second), timeout=10)
    assert reply.file.sha256 == hashlib.sha256(second).hexdigest()
    assert replica.blobs.open(RAW_KEY).read() == second
    # The first content's parts were left alone (clean-up is by age), the second's are gone.
    sess = UploadSession(
        replica.blobs, "routeviews", FILENAME, hashlib.sha256(first).hexdigest(), len(first), part_size=PART
    )
    assert sess.committed_size() == committed
    assert [p.key for p in replica.blobs.list(PREFIX)] == [p.key for p in sess.parts()]


def test_resumed_stream_takes_over_a_live_lease_and_fences_the_old_one(replica: Replica) -> None:
    data = os.urandom(8 * PART)
    stub = replica.stub()
    hold = threading.Event()
    result: dict[str, object] = {}

    def old_stream() -> None:
        try:
            result["reply"] = stub.Upload(_stream(data, stop_at=4 * PART, hold=hold), timeout=30)
        except grpc.RpcError as e:
            result["error"] = e

    t = threading.Thread(target=old_stream)
    t.start()
    try:
        wait_for(lambda: _query(stub, data).committed_size == 4 * PART, what="4 parts committed")
        assert _query(stub, data).in_progress
        # Without resume, the same content being received answers already_in_progress.
        busy = stub.Upload(_stream(data), timeout=10)
        assert busy.already_in_progress
        # The resumed stream takes over although the old stream's lease is alive.
        reply = stub.Upload(_stream(data, offset=4 * PART, resume=True), timeout=10)
        assert reply.file.status == pb.STATUS_DONE and not reply.already_in_progress
    finally:
        hold.set()
        t.join(30)
    err = result.get("error")
    assert isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.ABORTED, result  # type: ignore[attr-defined]
    rec = replica.status.get("routeviews", FILENAME)
    assert rec is not None and (rec.status, rec.error) == ("DONE", "")
    assert replica.blobs.open(RAW_KEY).read() == data


def test_cli_restarts_from_zero_when_resumed_parts_are_not_the_file(
    replica: Replica, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from rvcloud.cli import upload as upload_mod

    monkeypatch.setattr(upload_mod, "RESUME_QUERY_MIN_SIZE", 0)  # ask on the first attempt too
    data = os.urandom(5 * PART + 7)
    path = tmp_path / "f.bz2"
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    # Parts under this upload's name whose bytes are not the file's (a broken client).
    sess = UploadSession(replica.blobs, "routeviews", FILENAME, sha, len(data), part_size=PART)
    with sess.open_part(0, "badbad00") as w:
        w.write(os.urandom(PART))
        w.commit()
    header = pb.UploadHeader(
        filename=FILENAME, project="routeviews", sha256=sha, size=len(data), convert=False
    )
    stats = SendStats()
    with grpc.insecure_channel(replica.target) as ch:
        reply = send_with_retry(
            GatewayClient(ch),
            str(path),
            header,
            retrier=Retrier(RetryPolicy(initial=0.01)),
            progress=Progress(),
            timeout=10,
            stats=stats,
        )
    assert reply.file.status == pb.STATUS_DONE
    assert (stats.attempts, stats.resumed_at) == (2, [PART])
    assert stats.bytes_sent == len(data) - PART + len(data)
    assert replica.blobs.open(RAW_KEY).read() == data
    assert list(replica.blobs.list(PREFIX)) == []


def test_query_write_status_is_authorized_per_project(tmp_path: Path) -> None:
    from rvcloud.ingest_gateway.auth import TokenAuthenticator
    from tests.gateway.helpers import token_line

    token = "rv-resume-token-0123456789abcdef"
    (tmp_path / "tokens").write_text(token_line(token, "ris"))
    r = start_replica(
        tmp_path, authenticator=TokenAuthenticator.from_file(tmp_path / "tokens"), part_size=PART
    )
    try:
        stub = r.stub()
        req = pb.QueryWriteStatusRequest(
            project="routeviews", filename=FILENAME, sha256="ab" * 32, size=10 * PART
        )
        md = (("authorization", f"Bearer {token}"),)
        with pytest.raises(grpc.RpcError) as e:
            stub.QueryWriteStatus(req, metadata=md, timeout=10)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
        with pytest.raises(grpc.RpcError) as e:
            stub.QueryWriteStatus(req, timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        req.project = "ris"
        assert stub.QueryWriteStatus(req, metadata=md, timeout=10).committed_size == 0
        for bad in (
            pb.QueryWriteStatusRequest(project="ris", filename="../x", sha256="ab" * 32, size=1),
            pb.QueryWriteStatusRequest(project="ris", filename=FILENAME, sha256="AB" * 32, size=1),
            pb.QueryWriteStatusRequest(project="ris", filename=FILENAME, sha256="ab" * 32, size=-1),
        ):
            with pytest.raises(grpc.RpcError) as e:
                stub.QueryWriteStatus(bad, metadata=md, timeout=10)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    finally:
        r.close()


def test_resume_on_gcs_composes_many_parts(tmp_path: Path, gcs_emulator: object) -> None:
    """The same protocol on the GCS backend (the emulator): more parts than one compose
    call takes, committed by one replica and finished by another."""
    import uuid

    from rvcloud.backends.blob.gcs import GcsBlobStore
    from rvcloud.backends.bus.memory import MemoryBus
    from rvcloud.ingest_gateway.app import GatewayApp, GatewayConfig

    part = 256 * 1024
    url = f"gs://rvc-resume-{uuid.uuid4().hex[:12]}?chunk_size={part}"
    GcsBlobStore.from_url(url).ensure_bucket()
    status = SqliteStatusStore(str(tmp_path / "status.db"))
    apps = []
    for _ in range(2):
        cfg = GatewayConfig(listen="127.0.0.1:0", metrics_port=None, health_interval=5, part_size=part)
        app = GatewayApp(cfg, GcsBlobStore.from_url(url), MemoryBus(), status)
        app.start()
        apps.append(app)
    data = b"\x1f\x8b" + os.urandom(40 * part + 999)  # gzip magic: 41 parts
    try:
        with (
            grpc.insecure_channel(f"127.0.0.1:{apps[0].port}") as ch1,
            grpc.insecure_channel(f"127.0.0.1:{apps[1].port}") as ch2,
        ):
            from rvcloud.v1 import gateway_pb2_grpc as pb_grpc

            first = pb_grpc.GatewayStub(ch1)  # type: ignore[no-untyped-call]
            second = pb_grpc.GatewayStub(ch2)  # type: ignore[no-untyped-call]
            committed = _cut_upload(first, data, 17 * part + 5 * CHUNK)
            assert committed == 17 * part + 5 * CHUNK
            assert _query(second, data).committed_size == committed  # any replica knows
            reply = second.Upload(_stream(data, offset=committed, resume=True), timeout=60)
            assert (reply.file.status, reply.file.content_encoding) == (pb.STATUS_DONE, "gzip")
            assert reply.file.raw_uri.startswith("gs://")
        blobs = GcsBlobStore.from_url(url)
        with blobs.open(RAW_KEY) as f:
            assert f.read() == data
        assert blobs.stat(RAW_KEY).content_type == "application/gzip"
        assert [i.key for i in blobs.list()] == [RAW_KEY]  # no parts, no compose scratch
    finally:
        for app in apps:
            app.stop(grace=0)
        status.close()


class _Recorder(Progress):
    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def start(self, label: str, total: int) -> None:
        self.events.append((label, total))

    def advance(self, done: int) -> None:
        self.events.append(("advance", done))


def test_progress_counts_from_the_resumed_offset(replica: Replica, tmp_path: Path) -> None:
    from rvcloud.cli.upload import resume_offset, send_from

    data = os.urandom(6 * PART + 10)
    path = tmp_path / "f.bz2"
    path.write_bytes(data)
    stub = replica.stub()
    committed = _cut_upload(stub, data, 2 * PART + CHUNK)
    header = pb.UploadHeader(
        filename=FILENAME,
        project="routeviews",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        convert=False,
    )
    progress, stats = _Recorder(), SendStats()
    with grpc.insecure_channel(replica.target) as ch:
        client = GatewayClient(ch)
        offset = resume_offset(client, header)
        assert offset == committed == 2 * PART + CHUNK
        reply = send_from(
            client, str(path), header, offset, progress=progress, resume=True, timeout=10, stats=stats
        )
    assert reply.file.status == pb.STATUS_DONE
    done = [n for what, n in progress.events if what == "advance"]
    assert progress.events[0] == ("sending", len(data))
    assert done[0] == offset and done[-1] == len(data) and done == sorted(done)
    assert stats.bytes_sent == len(data) - offset
    assert header.write_offset == 0  # the caller's header is left as it was
