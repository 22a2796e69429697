"""Authentication and per-project authorization: refused calls get the right code and change nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.auth import crypt, jwt

from rvcloud.ingest_gateway.auth import (
    AuthConfigError,
    GoogleIdTokenAuthenticator,
    TokenAuthenticator,
    Unauthenticated,
    token_digest,
)
from rvcloud.v1 import gateway_pb2 as pb
from tests.gateway.helpers import (
    FILENAME,
    PAYLOAD,
    TOPIC,
    pem_key,
    requests,
    rsa_key,
    self_signed,
    start_replica,
)

GOOD = "rv-token-routeviews-0123456789"
RIS = "rv-token-ris-only-0123456789"
ADMIN = "rv-token-admin-0123456789abcd"


def tokens_file(d: Path) -> Path:
    p = d / "tokens"
    p.write_text(
        "# self-hosted uploaders\n"
        f"{token_digest(GOOD)} routeviews uploader-rv   # stored as a digest\n"
        f"{RIS} ris\n"
        f"{ADMIN} *  ops\n"
    )
    return p


def test_tokens_file_and_lookup(tmp_path: Path) -> None:
    auth = TokenAuthenticator.from_file(tokens_file(tmp_path))
    p = auth.authenticate(GOOD)
    assert (p.name, p.allows("routeviews"), p.allows("ris")) == ("uploader-rv", True, False)
    assert auth.authenticate(RIS).projects == frozenset({"ris"})
    assert auth.authenticate(ADMIN).allows("anything")
    for bad in (None, "", GOOD + "x", GOOD[:-1], token_digest(GOOD)):
        with pytest.raises(Unauthenticated):
            auth.authenticate(bad)
    (tmp_path / "bad").write_text("short routeviews\n")
    with pytest.raises(AuthConfigError, match="shorter than 16"):
        TokenAuthenticator.from_file(tmp_path / "bad")
    (tmp_path / "bad").write_text(f"{GOOD} route/views\n")
    with pytest.raises(AuthConfigError, match="bad project list"):
        TokenAuthenticator.from_file(tmp_path / "bad")


def _call_all(stub: Any, project: str, metadata: tuple[tuple[str, str], ...]) -> dict[str, grpc.StatusCode]:
    """Every RPC for ``project`` with ``metadata``; the status code each ended with."""
    calls = {
        "Upload": lambda: stub.Upload(requests(PAYLOAD, project=project), metadata=metadata, timeout=10),
        "CheckFiles": lambda: stub.CheckFiles(
            pb.CheckFilesRequest(project=project, files=[pb.FileRef(filename=FILENAME, sha256="0" * 64)]),
            metadata=metadata,
            timeout=10,
        ),
        "GetFile": lambda: stub.GetFile(
            pb.GetFileRequest(project=project, filename=FILENAME), metadata=metadata, timeout=10
        ),
        "ListFiles": lambda: stub.ListFiles(
            pb.ListFilesRequest(project=project), metadata=metadata, timeout=10
        ),
    }
    out = {}
    for name, fn in calls.items():
        try:
            fn()
            out[name] = grpc.StatusCode.OK
        except grpc.RpcError as e:
            out[name] = e.code()
    return out


def test_refused_calls_change_nothing_and_right_token_works(tmp_path: Path) -> None:
    rep = start_replica(tmp_path, authenticator=TokenAuthenticator.from_file(tokens_file(tmp_path)))
    try:
        stub = rep.stub()
        unauth = grpc.StatusCode.UNAUTHENTICATED
        for md in [(), (("authorization", "Bearer wrong-token-000000000"),), (("authorization", GOOD),)]:
            assert set(_call_all(stub, "routeviews", md).values()) == {unauth}, md
            assert rep.stored_nothing()
        # A valid token for another project: authenticated, not authorized.
        denied = _call_all(stub, "routeviews", (("authorization", f"Bearer {RIS}"),))
        assert set(denied.values()) == {grpc.StatusCode.PERMISSION_DENIED}
        assert rep.stored_nothing()
        # Listing every project needs a token for every project.
        with pytest.raises(grpc.RpcError) as ei:
            stub.ListFiles(pb.ListFilesRequest(), metadata=(("authorization", f"Bearer {GOOD}"),))
        assert ei.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "pass --project" in (ei.value.details() or "")
        failures = rep.app.metrics.auth_failures
        assert failures.labels("unauthenticated")._value.get() == 12
        assert failures.labels("permission_denied")._value.get() == 5

        md = (("authorization", f"Bearer {GOOD}"),)
        reply, call = stub.Upload.with_call(requests(PAYLOAD), metadata=md, timeout=10)
        assert reply.file.stage == "stored" and reply.file.bytes_received == len(PAYLOAD)
        assert dict(call.initial_metadata())["x-request-id"]
        assert [b.key for b in rep.blobs.list("")] == [f"routeviews/{FILENAME}"]
        assert rep.bus.pending(TOPIC) == 1
        assert stub.GetFile(pb.GetFileRequest(project="routeviews", filename=FILENAME), metadata=md).sha256
        admin = (("authorization", f"Bearer {ADMIN}"),)
        assert len(stub.ListFiles(pb.ListFilesRequest(), metadata=admin).files) == 1
        # Health stays open for probes without credentials.
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        h = health_pb2_grpc.HealthStub(rep.channel())
        assert h.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
    finally:
        rep.close()


# ---- Google ID tokens -------------------------------------------------------------------

AUD = "https://gateway.example.run.app"
SA = "uploader@rv-project.iam.gserviceaccount.com"


class FakeResponse:
    def __init__(self, status: int, data: bytes) -> None:
        self.status, self.data, self.headers = status, data, {}


class FakeRequest:
    """Stands in for google.auth.transport.requests.Request: serves the signing certs, counts fetches."""

    def __init__(self, certs: dict[str, str]) -> None:
        self.certs = certs
        self.calls = 0

    def __call__(self, url: str, method: str = "GET", **_: Any) -> FakeResponse:
        self.calls += 1
        return FakeResponse(200, json.dumps(self.certs).encode())


@pytest.fixture(scope="module")
def google_keys() -> dict[str, Any]:
    key, rogue = rsa_key(), rsa_key()
    from cryptography.hazmat.primitives import serialization

    cert = self_signed(key, "google test signer", ca=False).public_bytes(serialization.Encoding.PEM).decode()
    return {
        "signer": crypt.RSASigner.from_string(pem_key(key), key_id="kid-1"),
        "rogue": crypt.RSASigner.from_string(pem_key(rogue), key_id="kid-1"),
        "certs": {"kid-1": cert},
    }


def id_token(signer: Any, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": "https://accounts.google.com",
        "aud": AUD,
        "sub": "1234",
        "email": SA,
        "email_verified": True,
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode(signer, payload).decode()


def test_google_id_tokens(tmp_path: Path, google_keys: dict[str, Any]) -> None:
    principals = tmp_path / "principals"
    principals.write_text(f"{SA} routeviews\nother@x.iam.gserviceaccount.com ris\n")
    fake = FakeRequest(google_keys["certs"])
    auth = GoogleIdTokenAuthenticator(
        AUD, GoogleIdTokenAuthenticator.load_principals(principals), request=fake
    )
    signer = google_keys["signer"]
    p = auth.authenticate(id_token(signer))
    assert (p.name, p.allows("routeviews"), p.allows("ris")) == (SA, True, False)
    assert auth.authenticate(id_token(signer, iss="accounts.google.com")).name == SA
    rejected = {
        "audience": id_token(signer, aud="https://other.example"),
        "issuer": id_token(signer, iss="https://evil.example"),
        "expired": id_token(signer, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
        "not allowed": id_token(signer, email="stranger@x.iam.gserviceaccount.com"),
        "unverified": id_token(signer, email_verified=False),
        "signature": id_token(google_keys["rogue"]),
        "garbage": "not.a.jwt",
    }
    for why, tok in rejected.items():
        with pytest.raises(Unauthenticated):
            auth.authenticate(tok)
            pytest.fail(f"accepted a token with a bad {why}")
    assert fake.calls == 1  # certificates cached across calls

    rep = start_replica(tmp_path / "svc", authenticator=auth)
    try:
        stub = rep.stub()
        md = (("authorization", f"Bearer {id_token(signer)}"),)
        assert set(_call_all(stub, "ris", md).values()) == {grpc.StatusCode.PERMISSION_DENIED}
        bad = (("authorization", f"Bearer {rejected['audience']}"),)
        assert set(_call_all(stub, "routeviews", bad).values()) == {grpc.StatusCode.UNAUTHENTICATED}
        assert rep.stored_nothing()
        assert stub.Upload(requests(PAYLOAD), metadata=md, timeout=10).file.stage == "stored"
    finally:
        rep.close()
