"""CheckFiles: one call tells a backfill which files the service already has."""

from __future__ import annotations

from concurrent import futures
from pathlib import Path

import grpc
import pytest

from rvcloud.backends.blob.file import FileBlobStore
from rvcloud.backends.bus.memory import MemoryBus
from rvcloud.ingest_gateway.server import GatewayService
from rvcloud.metadata.record import FileRecord
from rvcloud.metadata.sqlite import SqliteStatusStore
from rvcloud.v1 import gateway_pb2 as pb
from rvcloud.v1 import gateway_pb2_grpc as pb_grpc


def test_check_files(tmp_path: Path) -> None:
    status = SqliteStatusStore(str(tmp_path / "s.db"))
    for name, st, sha in [("a/bgpdata/x.bz2", "DONE", "1" * 64), ("a/bgpdata/y.bz2", "FAILED", "2" * 64)]:
        status.update(
            "routeviews",
            name,
            lambda _, n=name, s=st, h=sha: FileRecord("routeviews", n, s, "loaded", sha256=h),
        )
    server = grpc.server(futures.ThreadPoolExecutor(4))
    svc = GatewayService(FileBlobStore(tmp_path / "b"), MemoryBus(), status, topic_stored="t")
    pb_grpc.add_GatewayServicer_to_server(svc, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = pb_grpc.GatewayStub(ch)
            refs = [
                pb.FileRef(filename="a/bgpdata/x.bz2", sha256="1" * 64),  # done, same content
                pb.FileRef(filename="a/bgpdata/x.bz2", sha256="3" * 64),  # done, other content
                pb.FileRef(filename="a/bgpdata/y.bz2", sha256="2" * 64),  # failed
                pb.FileRef(filename="a/bgpdata/z.bz2", sha256="4" * 64),  # unknown
            ]
            r = stub.CheckFiles(pb.CheckFilesRequest(project="routeviews", files=refs))
            assert [f.done for f in r.files] == [True, False, False, False]
            assert [pb.Status.Name(f.status) for f in r.files] == [
                "STATUS_DONE",
                "STATUS_DONE",
                "STATUS_FAILED",
                "STATUS_NONE",
            ]
            assert r.files[1].sha256 == "1" * 64
            with pytest.raises(grpc.RpcError) as ei:
                stub.CheckFiles(
                    pb.CheckFilesRequest(project="routeviews", files=[pb.FileRef(filename="../x")])
                )
            assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        server.stop(None)
