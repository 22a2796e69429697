"""Talking to the ingest gateway: address parsing, channels, typed calls and exit codes.

Every command that reaches the gateway (``upload``, ``status``, ``list``) goes through
this module so that addresses, TLS, message-size limits and the mapping from gRPC
errors to exit codes are the same everywhere.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, cast
from urllib.parse import urlsplit

import grpc

from rvcloud.v1 import gateway_pb2, gateway_pb2_grpc

# Exit codes shared by every subcommand.
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1  # the file FAILED, or the service refused the request for good
EXIT_USAGE: Final = 2  # bad arguments or local file problems (argparse uses 2 as well)
EXIT_UNAVAILABLE: Final = 3  # the service could not be reached or did not answer in time
EXIT_INTERRUPTED: Final = 130  # Ctrl-C, as a shell reports SIGINT

CHUNK_SIZE: Final = 1024 * 1024
# A chunk message is 1 MiB plus a few bytes of framing; a ListFiles page of large
# records can exceed gRPC's 4 MiB default receive limit, so both limits get headroom.
MAX_MESSAGE_BYTES: Final = 32 * 1024 * 1024
# Unary calls (GetFile, ListFiles) answer from the status store; far longer than this
# means the service is not healthy.
CALL_TIMEOUT: Final = 30.0
# The gateway answers CheckFiles for at most this many files per call.
MAX_CHECK_FILES: Final = 1000

# These codes mean "try again later" (exit 3, and retried with backoff); every other
# code is a definite answer from the service (exit 1), e.g. DATA_LOSS for a checksum
# mismatch. RESOURCE_EXHAUSTED (overload, quotas) and ABORTED (a lost compare-and-set
# race on the service) go away on their own as well.
TRANSIENT_CODES: Final = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)
_TRANSIENT_CODES: Final = TRANSIENT_CODES
# A load balancer (nginx's grpc_pass, for one) that loses its upstream mid-call -- the
# gateway replica died -- resets the client's stream with RST_STREAM INTERNAL_ERROR,
# which gRPC reports as INTERNAL "Stream removed (RST_STREAM ...)". That is the replica
# going away, not the service's verdict, and every call the CLI makes is idempotent
# (an upload is keyed by archive path and SHA-256), so it is retried like UNAVAILABLE.
PROXY_RESET: Final = "RST_STREAM"

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


class UsageError(Exception):
    """A problem with the command line or a local file: exit code 2."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the gateway listens and whether to use TLS."""

    host: str
    port: int
    tls: bool

    @property
    def target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.target}"


def parse_endpoint(address: str) -> Endpoint:
    """Parse ``HOST:PORT``, ``http://HOST[:PORT]``, ``https://HOST[:PORT]`` or ``grpc://HOST:PORT``."""
    scheme, sep, _ = address.partition("://")
    if not sep:
        scheme = "grpc"
    if scheme not in ("grpc", "http", "https"):
        raise UsageError(
            f"unsupported scheme {scheme!r} in {address!r}: use HOST:PORT, http://, https:// or grpc://"
        )
    # urlsplit needs the "//" to read a host and port; a bare HOST:PORT gets one.
    parts = urlsplit(address if sep else f"//{address}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise UsageError(f"address {address!r} must be only a host and port")
    try:
        port = parts.port
    except ValueError as e:
        raise UsageError(f"bad port in {address!r}: {e}") from None
    if not parts.hostname:
        raise UsageError(f"no host in {address!r}")
    if port is None:
        if scheme == "grpc":
            raise UsageError(f"address {address!r} needs a port (HOST:PORT)")
        port = _DEFAULT_PORTS[scheme]
    return Endpoint(parts.hostname, port, scheme == "https")


def open_channel(endpoint: Endpoint, *, ca_file: str | None = None) -> grpc.Channel:
    """A channel to ``endpoint``; with TLS, ``ca_file`` (PEM) replaces the system roots."""
    options = [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ]
    if endpoint.tls:
        roots: bytes | None = None
        if ca_file:
            try:
                with open(ca_file, "rb") as f:
                    roots = f.read()
            except OSError as e:
                raise UsageError(f"cannot read the CA file {ca_file}: {e.strerror or e}") from None
        # Without roots gRPC uses its bundled/system roots.
        creds = grpc.ssl_channel_credentials(root_certificates=roots)
        return grpc.secure_channel(endpoint.target, creds, options=options)
    return grpc.insecure_channel(endpoint.target, options=options)


class GatewayClient:
    """Typed calls to the gateway (the generated stub has no type annotations).

    ``token`` is sent as ``authorization: Bearer ...`` metadata on every call: a static
    token (RVCLOUD_TOKEN), or a callable asked before each call (a Google ID token
    source, which refreshes the token before it expires); a gateway started with
    ``--auth tokens`` or ``--auth google`` checks it and the project of every call.
    """

    def __init__(self, channel: grpc.Channel, *, token: str | Callable[[], str] | None = None) -> None:
        self._stub = gateway_pb2_grpc.GatewayStub(channel)  # type: ignore[no-untyped-call]
        self._token = token

    @property
    def _metadata(self) -> tuple[tuple[str, str], ...]:
        # Computed per call, so a long-lived client always sends an unexpired ID token.
        token = self._token() if callable(self._token) else self._token
        return (("authorization", f"Bearer {token}"),) if token else ()

    def get_file(
        self, project: str, filename: str, *, timeout: float = CALL_TIMEOUT
    ) -> gateway_pb2.FileStatus:
        req = gateway_pb2.GetFileRequest(project=project, filename=filename)
        return cast(gateway_pb2.FileStatus, self._stub.GetFile(req, timeout=timeout, metadata=self._metadata))

    def list_files(
        self, request: gateway_pb2.ListFilesRequest, *, timeout: float = CALL_TIMEOUT
    ) -> gateway_pb2.ListFilesResponse:
        return cast(
            gateway_pb2.ListFilesResponse,
            self._stub.ListFiles(request, timeout=timeout, metadata=self._metadata),
        )

    def check_files(
        self, project: str, refs: list[tuple[str, str]], *, timeout: float = CALL_TIMEOUT
    ) -> list[gateway_pb2.FileCheck]:
        """Which of these (filename, sha256) the service holds DONE with the same content.

        At most ``MAX_CHECK_FILES`` per call; the answers come back in request order.
        """
        if len(refs) > MAX_CHECK_FILES:
            raise ValueError(f"check_files: {len(refs)} files, at most {MAX_CHECK_FILES} per call")
        req = gateway_pb2.CheckFilesRequest(
            project=project, files=[gateway_pb2.FileRef(filename=n, sha256=s) for n, s in refs]
        )
        reply = cast(
            gateway_pb2.CheckFilesResponse,
            self._stub.CheckFiles(req, timeout=timeout, metadata=self._metadata),
        )
        return list(reply.files)

    def query_write_status(
        self, project: str, filename: str, sha256: str, size: int, *, timeout: float = CALL_TIMEOUT
    ) -> gateway_pb2.QueryWriteStatusResponse:
        """How many leading bytes of this upload the service has committed (resumable uploads).

        A gateway older than resumable uploads answers UNIMPLEMENTED; the caller then
        sends the whole file.
        """
        req = gateway_pb2.QueryWriteStatusRequest(
            project=project, filename=filename, sha256=sha256, size=size
        )
        return cast(
            gateway_pb2.QueryWriteStatusResponse,
            self._stub.QueryWriteStatus(req, timeout=timeout, metadata=self._metadata),
        )

    def upload(
        self, requests: Iterator[gateway_pb2.UploadRequest], *, timeout: float | None
    ) -> gateway_pb2.UploadResponse:
        return cast(
            gateway_pb2.UploadResponse,
            self._stub.Upload(requests, timeout=timeout, metadata=self._metadata),
        )


def rpc_error_exit(err: grpc.RpcError, endpoint: Endpoint | None = None) -> int:
    """Print a gRPC error as ``error: CODE: details`` and return the exit code for it."""
    call = cast(grpc.Call, err)
    code = call.code()
    details = call.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE and endpoint is not None:
        if endpoint.tls and "WRONG_VERSION_NUMBER" in details:
            # The TLS handshake met plaintext: the gateway does not use TLS at all.
            details = (
                f"TLS: the gateway at {endpoint} does not speak TLS (it answered in plaintext); "
                f"use http://{endpoint.target} or just {endpoint.target} ({details})"
            )
        elif endpoint.tls and _is_tls_failure(details):
            # gRPC reports a refused certificate as a generic connection failure;
            # say what it is, since retrying cannot fix it.
            details = (
                f"TLS: the certificate of the gateway at {endpoint} is not trusted; pass --ca PEM "
                f"(or RVCLOUD_CA, or ca in the config file) with the CA that signed it ({details})"
            )
        else:
            details = f"cannot reach the gateway at {endpoint}: {details}"
    elif code == grpc.StatusCode.UNAUTHENTICATED:
        details = f"{details} (the gateway needs a valid token: RVCLOUD_TOKEN or token in the config file)"
    print(f"error: {code.name}: {details}", file=sys.stderr)
    return EXIT_UNAVAILABLE if is_transient(err) else EXIT_FAILED


_TLS_FAILURE_MARKERS: Final = (
    "CERTIFICATE_VERIFY_FAILED",
    "Tls handshake failed",
    "SSL_ERROR_SSL",
    "handshake",
)


def _is_tls_failure(details: str) -> bool:
    return any(m.lower() in details.lower() for m in _TLS_FAILURE_MARKERS)


def is_transient(err: grpc.RpcError) -> bool:
    """A transient code, or a stream reset by a proxy (``PROXY_RESET``)."""
    call = cast(grpc.Call, err)
    code = call.code()
    if code in _TRANSIENT_CODES:
        return True
    return code == grpc.StatusCode.INTERNAL and PROXY_RESET in (call.details() or "")


def rpc_code(err: grpc.RpcError) -> grpc.StatusCode:
    return cast(grpc.Call, err).code()


def rpc_text(err: grpc.RpcError) -> str:
    """``CODE: details``, for reports and logs."""
    call = cast(grpc.Call, err)
    return f"{call.code().name}: {call.details() or ''}"


def is_not_found(err: grpc.RpcError) -> bool:
    return cast(grpc.Call, err).code() == grpc.StatusCode.NOT_FOUND
