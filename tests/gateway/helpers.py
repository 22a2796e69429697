"""Shared pieces of the gateway tests: certificates, an in-process replica on embedded backends, uploads."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from rvcloud.backends.blob.file import FileBlobStore
from rvcloud.backends.bus.memory import MemoryBus
from rvcloud.ingest_gateway.app import GatewayApp, GatewayConfig
from rvcloud.ingest_gateway.auth import Authenticator
from rvcloud.ingest_gateway.health import Check
from rvcloud.metadata.sqlite import SqliteStatusStore
from rvcloud.metadata.store import ListFilter
from rvcloud.v1 import gateway_pb2 as pb
from rvcloud.v1 import gateway_pb2_grpc as pb_grpc

TOPIC = "rvcloud-stored"
FILENAME = "route-views.jinx/bgpdata/2024.01/UPDATES/updates.20240101.0000.bz2"
# bzip2 magic so the gateway records an encoding; nothing converts it in these tests.
PAYLOAD = b"BZh9" + bytes(range(256)) * 40


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def self_signed(key: rsa.RSAPrivateKey, name: str, *, ca: bool) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return b.sign(key, hashes.SHA256())


@dataclass
class Pki:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path
    other_ca_pem: Path  # a CA that did not sign the server certificate


def make_pki(d: Path) -> Pki:
    """A test CA, a server certificate for localhost/127.0.0.1 signed by it, and an unrelated CA."""
    ca_key, srv_key, other_key = rsa_key(), rsa_key(), rsa_key()
    ca = self_signed(ca_key, "rvcloud test CA", ca=True)
    now = dt.datetime.now(dt.UTC)
    srv = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.subject)
        .public_key(srv_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    other = self_signed(other_key, "someone else's CA", ca=True)
    pki = Pki(d / "ca.pem", d / "server.pem", d / "server.key", d / "other-ca.pem")
    pki.ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert_pem.write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    pki.key_pem.write_bytes(pem_key(srv_key))
    pki.other_ca_pem.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    return pki


class FlakyStatusStore(SqliteStatusStore):
    """A SQLite status store whose ping fails while ``broken`` is set (an unreachable store)."""

    broken = False

    def ping(self) -> None:
        if self.broken:
            raise ConnectionError("status store unreachable (test)")
        super().ping()


@dataclass
class Replica:
    app: GatewayApp
    blobs: FileBlobStore
    bus: MemoryBus
    status: FlakyStatusStore
    channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.app.port}"

    def channel(self) -> grpc.Channel:
        ch = grpc.insecure_channel(self.target)
        self.channels.append(ch)
        return ch

    def stub(self) -> pb_grpc.GatewayStub:
        return pb_grpc.GatewayStub(self.channel())  # type: ignore[no-untyped-call]

    def stored_nothing(self) -> bool:
        """No object, no status record, no event: the call changed nothing anywhere."""
        return (
            not list(self.blobs.list(""))
            and not self.status.list(ListFilter()).records
            and self.bus.pending(TOPIC) == 0
        )

    def close(self) -> None:
        for ch in self.channels:
            ch.close()
        self.app.stop(grace=0)
        self.bus.close()
        self.status.close()


def start_replica(
    tmp: Path,
    *,
    authenticator: Authenticator | None = None,
    checks: list[Check] | None = None,
    **config: object,
) -> Replica:
    blobs = FileBlobStore(tmp / "blobs")
    bus = MemoryBus()
    status = FlakyStatusStore(str(tmp / "status.db"))
    cfg = GatewayConfig(listen="127.0.0.1:0", topic_stored=TOPIC, metrics_port=0, health_interval=0.2)
    for k, v in config.items():
        setattr(cfg, k, v)
    app = GatewayApp(cfg, blobs, bus, status, authenticator=authenticator, checks=checks)
    app.start()
    return Replica(app, blobs, bus, status)


def header(
    data: bytes = PAYLOAD, *, project: str = "routeviews", filename: str = FILENAME, size: int | None = None
) -> pb.UploadRequest:
    return pb.UploadRequest(
        header=pb.UploadHeader(
            filename=filename,
            project=project,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data) if size is None else size,
        )
    )


def requests(
    data: bytes = PAYLOAD, *, project: str = "routeviews", chunk: int = 4096
) -> Iterator[pb.UploadRequest]:
    yield header(data, project=project)
    for i in range(0, len(data), chunk):
        yield pb.UploadRequest(chunk=data[i : i + chunk])


def slow_requests(
    data: bytes, release: threading.Event, *, sent_first: threading.Event | None = None, chunk: int = 4096
) -> Iterator[pb.UploadRequest]:
    """Header and one chunk, then wait for ``release`` before the rest: a client holding a slot."""
    yield header(data)
    yield pb.UploadRequest(chunk=data[:chunk])
    if sent_first is not None:
        sent_first.set()
    release.wait(30)
    for i in range(chunk, len(data), chunk):
        yield pb.UploadRequest(chunk=data[i : i + chunk])


def wait_for(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def token_line(token: str, projects: str) -> str:
    """A tokens-file line holding the token's digest, as an operator would write it."""
    return f"sha256:{hashlib.sha256(token.encode()).hexdigest()} {projects}\n"
