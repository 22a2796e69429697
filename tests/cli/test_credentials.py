"""The uploader's Google ID tokens, end to end against a gateway verifying Google ID tokens.

Nothing here talks to Google: a throwaway RSA key plays the service account (its key
file's ``token_uri`` points at a token endpoint served by the test), another plays
Google's ID-token signer (the gateway's verifier fetches its certificate from the same
test server). The flow is otherwise the real one: google-auth signs a JWT assertion
with the service-account key, the endpoint checks it and answers with an ID token for
the requested audience, the CLI sends it as the bearer token, and the gateway
verifies signature, audience and issuer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from google.auth import crypt, jwt

from rvcloud.cli import config
from rvcloud.cli.client import GatewayClient, UsageError
from rvcloud.cli.credentials import IdTokenSource
from rvcloud.ingest_gateway.auth import GoogleIdTokenAuthenticator
from rvcloud.metadata.store import ListFilter
from tests.gateway.helpers import FILENAME, PAYLOAD, Replica, pem_key, rsa_key, self_signed, start_replica

AUD = "https://ingest-test.example.run.app"
SA = "uploader@rv-test.iam.gserviceaccount.com"
GOOGLE_TOKEN_ENDPOINT = "https://oauth2.googleapis.com/token"


@dataclass
class TokenServer:
    """Google's token endpoint and certificate list, for the test's own keys."""

    sa_cert: str
    google_signer: crypt.RSASigner
    google_certs: dict[str, str]
    lifetime: int = 3600
    issued: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def exchange(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type"}
        try:
            # The assertion must be signed by the service account's key and name Google's
            # token endpoint as its audience (google-auth does so whatever the token_uri).
            claims = jwt.decode(form["assertion"], certs=self.sa_cert, audience=GOOGLE_TOKEN_ENDPOINT)
        except (KeyError, ValueError) as e:
            return 400, {"error": "invalid_grant", "error_description": str(e)}
        now = int(time.time())
        id_claims = {
            "iss": "https://accounts.google.com",
            "aud": claims["target_audience"],
            "sub": "1234567890",
            "email": claims["iss"],
            "email_verified": True,
            "iat": now,
            "exp": now + self.lifetime,
        }
        with self.lock:
            self.issued.append(id_claims)
        return 200, {"id_token": jwt.encode(self.google_signer, id_claims).decode()}


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TokenServer, Path]]:
    sa_key, google_key = rsa_key(), rsa_key()
    pem = serialization.Encoding.PEM
    ts = TokenServer(
        sa_cert=self_signed(sa_key, SA, ca=False).public_bytes(pem).decode(),
        google_signer=crypt.RSASigner.from_string(pem_key(google_key), key_id="g-1"),
        google_certs={
            "g-1": self_signed(google_key, "google test signer", ca=False).public_bytes(pem).decode()
        },
    )

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._send(200, ts.google_certs) if self.path == "/certs" else self._send(404, {})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            form = {k: v[-1] for k, v in urllib.parse.parse_qs(body).items()}
            self._send(*ts.exchange(form)) if self.path == "/token" else self._send(404, {})

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ts.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    key_file = tmp_path_factory.mktemp("sa") / "sa.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "rv-test",
                "private_key_id": "sa-1",
                "private_key": pem_key(sa_key).decode(),
                "client_email": SA,
                "client_id": "1",
                "token_uri": f"{ts.url}/token",
            }
        )
    )
    try:
        yield ts, key_file
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def gateway(tmp_path: Path, token_server: tuple[TokenServer, Path]) -> Iterator[Replica]:
    ts, _ = token_server
    principals = tmp_path / "principals"
    principals.write_text(f"{SA} routeviews\n")
    # The real verifier with the real HTTP transport, fetching the test signer's certificate.
    auth = GoogleIdTokenAuthenticator(
        AUD, GoogleIdTokenAuthenticator.load_principals(principals), certs_url=f"{ts.url}/certs"
    )
    rep = start_replica(tmp_path / "svc", authenticator=auth)
    try:
        yield rep
    finally:
        rep.close()


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("RVCLOUD_", "GOOGLE_"))}
    e["RVCLOUD_CONFIG"] = os.devnull
    e.update(env)
    return subprocess.run(
        [sys.executable, "-m", "rvcloud.cli", *args], capture_output=True, text=True, timeout=60, env=e
    )


def _file(tmp_path: Path, name: str = FILENAME, data: bytes = PAYLOAD) -> Path:
    f = tmp_path / "archive" / name
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(data)
    return f


def test_cli_uploads_with_an_id_token_from_a_service_account_key(
    tmp_path: Path, token_server: tuple[TokenServer, Path], gateway: Replica
) -> None:
    ts, key_file = token_server
    f = _file(tmp_path)
    upload = [
        "upload",
        "-f",
        str(f),
        "-d",
        gateway.target,
        "--no-wait",
        "--json",
        "-q",
        "--retry-attempts",
        "1",
    ]

    # No credentials at all: the gateway refuses, nothing is written.
    r = _cli(*upload)
    assert r.returncode == 1 and "UNAUTHENTICATED" in r.stderr, r.stderr
    # A token for another audience (another service's URL): refused, nothing written.
    before = len(ts.issued)
    r = _cli(
        *upload,
        RVCLOUD_ID_TOKEN_AUDIENCE="https://other.example",
        GOOGLE_APPLICATION_CREDENTIALS=str(key_file),
    )
    assert r.returncode == 1 and "UNAUTHENTICATED" in r.stderr, r.stderr
    assert [c["aud"] for c in ts.issued[before:]] == ["https://other.example"]
    assert gateway.stored_nothing()

    # The right audience: the service account's ID token is accepted and the file stored.
    before = len(ts.issued)
    r = _cli(*upload, RVCLOUD_ID_TOKEN_AUDIENCE=AUD, GOOGLE_APPLICATION_CREDENTIALS=str(key_file))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["filename"], out["stage"]) == (FILENAME, "stored")
    issued = ts.issued[before:]
    assert issued and {(c["aud"], c["email"]) for c in issued} == {(AUD, SA)}
    assert [b.key for b in gateway.blobs.list("")] == [f"routeviews/{FILENAME}"]
    rec = gateway.status.get("routeviews", FILENAME)
    assert rec is not None and rec.size == len(PAYLOAD)


def test_token_is_refreshed_before_it_expires(
    token_server: tuple[TokenServer, Path], gateway: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    ts, key_file = token_server
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    # Tokens that live 100 s: with a 300 s margin each call needs a new one, with 10 s none.
    monkeypatch.setattr(ts, "lifetime", 100)
    eager, lazy = IdTokenSource(AUD, margin=300), IdTokenSource(AUD, margin=10)
    before = len(ts.issued)
    first = eager()
    time.sleep(1.1)  # a new token differs in iat/exp
    second = eager()
    assert first != second and len(ts.issued) - before == 2
    before = len(ts.issued)
    assert lazy() == lazy() == lazy()
    assert len(ts.issued) - before == 1

    # A client with a token source asks it on every call: both calls are authenticated
    # (NOT_FOUND is the handler's answer, so authentication passed) and each fetched a token.
    import grpc

    before = len(ts.issued)
    with grpc.insecure_channel(gateway.target) as ch:
        client = GatewayClient(ch, token=eager)
        for _ in range(2):
            with pytest.raises(grpc.RpcError) as ei:
                client.get_file("routeviews", FILENAME)
            assert ei.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    assert len(ts.issued) - before == 2
    assert not gateway.status.list(ListFilter()).records


def test_settings_and_errors(tmp_path: Path, token_server: tuple[TokenServer, Path]) -> None:
    s = config.resolve(None, {"RVCLOUD_CONFIG": os.devnull, "RVCLOUD_ID_TOKEN_AUDIENCE": AUD})
    assert isinstance(s.token, IdTokenSource) and s.token.audience == AUD
    assert config.show(s)["id_token_audience"] == {"value": AUD, "source": "env RVCLOUD_ID_TOKEN_AUDIENCE"}
    assert config.resolve(None, {"RVCLOUD_CONFIG": os.devnull, "RVCLOUD_TOKEN": "t" * 20}).token == "t" * 20
    with pytest.raises(UsageError, match=r"token .* and id_token_audience .* both set"):
        config.resolve(
            None, {"RVCLOUD_CONFIG": os.devnull, "RVCLOUD_TOKEN": "x" * 20, "RVCLOUD_ID_TOKEN_AUDIENCE": AUD}
        )
    r = _cli("config", "show", "--json", RVCLOUD_ID_TOKEN_AUDIENCE=AUD)
    assert json.loads(r.stdout)["settings"]["id_token_audience"]["value"] == AUD

    # A key file that does not exist: refused like a bad token (exit 1), no traceback.
    f = _file(tmp_path)
    r = _cli(
        "upload", "-f", str(f), "-d", "127.0.0.1:1", "--no-wait", "--retry-attempts", "1",
        RVCLOUD_ID_TOKEN_AUDIENCE=AUD,
        GOOGLE_APPLICATION_CREDENTIALS=str(tmp_path / "missing.json"),
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "error: UNAUTHENTICATED: cannot get a Google ID token for audience" in r.stderr
    assert "Traceback" not in r.stderr


BLOCKER = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.startswith(("google.auth", "google.oauth2")):
            raise ImportError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, Blocker())
from rvcloud.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_google_auth_installed_the_error_says_what_to_install(tmp_path: Path) -> None:
    f = _file(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RVCLOUD_", "GOOGLE_"))}
    env.update(RVCLOUD_CONFIG=os.devnull, RVCLOUD_ID_TOKEN_AUDIENCE=AUD)
    r = subprocess.run(
        [sys.executable, "-c", BLOCKER, "upload", "-f", str(f), "-d", "127.0.0.1:1", "--retry-attempts", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert r.returncode == 2, r.stderr
    assert "pip install 'rvcloud[gcp]'" in r.stderr and "Traceback" not in r.stderr
