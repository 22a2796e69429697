"""An in-process fake ingest gateway for the CLI tests (used through the ``gateway`` fixture).

It implements the generated servicer: Upload hashes the streamed bytes (keeping them
only for small files), records the header and every chunk size, and then serves a
scripted sequence of status records through GetFile; ListFiles serves fixed pages;
CheckFiles answers from the records. Upload and CheckFiles can be told to fail with
given codes first (the retry tests).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc

from rvcloud.v1 import gateway_pb2, gateway_pb2_grpc

# Received bytes are kept for assertions only up to this size; bigger uploads (the
# memory test) are hashed and dropped.
KEEP_BYTES_UP_TO = 64 * 1024 * 1024


@dataclass
class Received:
    header: gateway_pb2.UploadHeader
    chunk_sizes: list[int] = field(default_factory=list)
    sha256: str = ""
    data: bytes | None = None


class FakeGateway(gateway_pb2_grpc.GatewayServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], gateway_pb2.FileStatus] = {}
        # Records GetFile returns one per call after an upload (the last one repeats).
        self.script: list[gateway_pb2.FileStatus] = []
        self.uploads: list[Received] = []
        self.upload_abort: tuple[grpc.StatusCode, str] | None = None
        self.upload_reply: gateway_pb2.UploadResponse | None = None
        self.get_calls = 0
        self.list_requests: list[gateway_pb2.ListFilesRequest] = []
        self.pages: dict[str, gateway_pb2.ListFilesResponse] = {}
        self.check_requests: list[gateway_pb2.CheckFilesRequest] = []
        # Codes CheckFiles / Upload abort with, one per call, before answering normally.
        self.check_failures: list[grpc.StatusCode] = []
        self.upload_failures: list[grpc.StatusCode] = []

    def Upload(
        self, request_iterator: Iterator[gateway_pb2.UploadRequest], context: grpc.ServicerContext
    ) -> gateway_pb2.UploadResponse:
        if self.upload_failures:
            context.abort(self.upload_failures.pop(0), "scripted failure")
        first = next(request_iterator)
        rec = Received(header=first.header)
        self.uploads.append(rec)
        h = hashlib.sha256()
        keep = rec.header.size <= KEEP_BYTES_UP_TO
        parts: list[bytes] = []
        for req in request_iterator:
            rec.chunk_sizes.append(len(req.chunk))
            h.update(req.chunk)
            if keep:
                parts.append(req.chunk)
        rec.sha256 = h.hexdigest()
        rec.data = b"".join(parts) if keep else None
        if self.upload_abort is not None:
            context.abort(*self.upload_abort)
        if self.upload_reply is not None:
            return self.upload_reply
        hd = rec.header
        stored = gateway_pb2.FileStatus(
            project=hd.project,
            filename=hd.filename,
            status=gateway_pb2.STATUS_IN_PROGRESS,
            stage="stored",
            sha256=rec.sha256,
            size=hd.size,
            bytes_received=sum(rec.chunk_sizes),
        )
        self.records[(hd.project, hd.filename)] = stored
        return gateway_pb2.UploadResponse(file=stored)

    def GetFile(
        self, request: gateway_pb2.GetFileRequest, context: grpc.ServicerContext
    ) -> gateway_pb2.FileStatus:
        self.get_calls += 1
        key = (request.project, request.filename)
        if key not in self.records:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no file {request.filename}")
        if self.uploads and self.script:
            nxt = self.script.pop(0) if len(self.script) > 1 else self.script[0]
            rec = gateway_pb2.FileStatus()
            rec.CopyFrom(self.records[key])
            rec.MergeFrom(nxt)
            self.records[key] = rec
        return self.records[key]

    def CheckFiles(
        self, request: gateway_pb2.CheckFilesRequest, context: grpc.ServicerContext
    ) -> gateway_pb2.CheckFilesResponse:
        self.check_requests.append(request)
        if self.check_failures:
            context.abort(self.check_failures.pop(0), "scripted failure")
        out = []
        for ref in request.files:
            rec = self.records.get((request.project, ref.filename))
            done = rec is not None and rec.status == gateway_pb2.STATUS_DONE and rec.sha256 == ref.sha256
            out.append(
                gateway_pb2.FileCheck(
                    filename=ref.filename,
                    done=done,
                    status=rec.status if rec else gateway_pb2.STATUS_NONE,
                    sha256=rec.sha256 if rec else "",
                )
            )
        return gateway_pb2.CheckFilesResponse(files=out)

    def ListFiles(
        self, request: gateway_pb2.ListFilesRequest, context: grpc.ServicerContext
    ) -> gateway_pb2.ListFilesResponse:
        self.list_requests.append(request)
        return self.pages.get(request.page_token, gateway_pb2.ListFilesResponse())


@dataclass
class Gateway:
    """The fake and the address it is served on."""

    fake: FakeGateway
    address: str
