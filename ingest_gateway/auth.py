"""Who may call the gateway, and for which projects.

Three modes, chosen with ``--auth``:

- ``none``: every caller may do everything (a laptop, ``rvcloud local``, tests).
- ``tokens``: static bearer tokens for self-hosting. The file (``--tokens FILE``) has one
  token a line: ``TOKEN PROJECTS [NAME]``, where ``TOKEN`` is ``sha256:<64 hex>`` (the
  SHA-256 of the token, recommended: the file then holds no secret) or the token itself,
  ``PROJECTS`` a comma-separated list (``*`` = every project) and ``NAME`` an optional
  label for logs. ``#`` starts a comment.
- ``google``: Google-signed ID tokens (what Cloud Run and service accounts use). The
  signature, expiry, audience (``--audience``) and issuer are verified with google-auth;
  the verified ``email`` is looked up in ``--google-principals FILE``: one
  ``EMAIL PROJECTS`` a line, same syntax as above.

An authenticator turns the ``authorization: Bearer ...`` metadata into a ``Principal``
(or raises ``Unauthenticated``); ``Principal.allows(project)`` is the per-project check
the interceptor applies before any handler runs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

ALL_PROJECTS = "*"
GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
_SHA_PREFIX = "sha256:"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PROJECT = re.compile(r"^(\*|[A-Za-z0-9._-]+)$")


class Unauthenticated(Exception):
    """No credentials, or credentials that do not verify: UNAUTHENTICATED."""


class AuthConfigError(ValueError):
    """A bad tokens/principals file or flag combination (the gateway refuses to start)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller and the projects it may read and write."""

    name: str
    projects: frozenset[str]

    def allows(self, project: str) -> bool:
        return ALL_PROJECTS in self.projects or project in self.projects

    @property
    def all_projects(self) -> bool:
        return ALL_PROJECTS in self.projects


ANONYMOUS = Principal("anonymous", frozenset({ALL_PROJECTS}))


class Authenticator(Protocol):
    """Maps a bearer token (None when the caller sent none) to a principal."""

    mode: str

    def authenticate(self, token: str | None) -> Principal: ...


class NoAuth:
    """``--auth none``: everyone is allowed everything."""

    mode = "none"

    def authenticate(self, token: str | None) -> Principal:
        return ANONYMOUS


def _parse_projects(text: str, where: str) -> frozenset[str]:
    projects = frozenset(p.strip() for p in text.split(",") if p.strip())
    if not projects or not all(_PROJECT.match(p) for p in projects):
        raise AuthConfigError(f"{where}: bad project list {text!r} (comma-separated names or *)")
    return projects


def _entries(path: str | Path) -> list[tuple[str, frozenset[str], str, str]]:
    """(first field, projects, optional name, location) of every non-comment line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise AuthConfigError(f"cannot read {path}: {e.strerror or e}") from None
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{n}"
        fields = line.split()
        if len(fields) not in (2, 3):
            raise AuthConfigError(f"{where}: expected 'KEY PROJECTS [NAME]', got {len(fields)} fields")
        out.append(
            (fields[0], _parse_projects(fields[1], where), fields[2] if len(fields) == 3 else "", where)
        )
    return out


def token_digest(token: str) -> str:
    """The ``sha256:<hex>`` form of a token, as written in a tokens file."""
    return _SHA_PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenAuthenticator:
    """``--auth tokens``: a static list of (SHA-256 of token, projects)."""

    mode = "tokens"

    def __init__(self, entries: Mapping[bytes, Principal]) -> None:
        if not entries:
            raise AuthConfigError("the tokens file lists no token")
        # Only digests are kept in memory, so a heap dump leaks no usable token.
        self._entries = list(entries.items())

    @classmethod
    def from_file(cls, path: str | Path) -> TokenAuthenticator:
        entries: dict[bytes, Principal] = {}
        for n, (key, projects, name, where) in enumerate(_entries(path), 1):
            if key.startswith(_SHA_PREFIX):
                hexdigest = key[len(_SHA_PREFIX) :].lower()
                if not _HEX64.match(hexdigest):
                    raise AuthConfigError(f"{where}: sha256: needs 64 hex digits")
                digest = bytes.fromhex(hexdigest)
            else:
                if len(key) < 16:
                    raise AuthConfigError(f"{where}: token shorter than 16 characters")
                digest = hashlib.sha256(key.encode("utf-8")).digest()
            if digest in entries:
                raise AuthConfigError(f"{where}: the same token is listed twice")
            entries[digest] = Principal(name or f"token#{n}", projects)
        return cls(entries)

    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise Unauthenticated("no bearer token (set RVCLOUD_TOKEN or token in the config file)")
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        found: Principal | None = None
        # Compare against every entry, in constant time each, so neither the position
        # of a match nor a common prefix shows in the response time.
        for known, principal in self._entries:
            if hmac.compare_digest(known, digest):
                found = principal
        if found is None:
            raise Unauthenticated("unknown bearer token")
        return found


# A transport callable in the shape of google.auth.transport.Request:
# request(url, method="GET") -> response with .status and .data.
HttpRequest = Callable[..., Any]


class GoogleIdTokenAuthenticator:
    """``--auth google``: Google-signed ID tokens whose email is on an allow-list.

    Google's signing certificates are fetched through ``request`` (a
    ``google.auth.transport.Request``; tests inject a fake) and cached for
    ``certs_ttl`` seconds, refetched early when a token names an unknown key id, so a
    busy gateway does not fetch them on every call.
    """

    mode = "google"

    def __init__(
        self,
        audience: str,
        principals: Mapping[str, frozenset[str]],
        *,
        request: HttpRequest | None = None,
        certs_url: str = GOOGLE_CERTS_URL,
        certs_ttl: float = 3600.0,
        clock_skew_s: int = 10,
    ) -> None:
        if not audience:
            raise AuthConfigError("--auth google needs --audience (the gateway's URL or client id)")
        if not principals:
            raise AuthConfigError("the Google principals file lists no service account")
        self.audience = audience
        self._principals = {email.lower(): projects for email, projects in principals.items()}
        self._request = request
        self._certs_url = certs_url
        self._certs_ttl = certs_ttl
        self._skew = clock_skew_s
        self._lock = threading.Lock()
        self._certs: dict[str, str] = {}
        self._certs_at = 0.0

    @staticmethod
    def load_principals(path: str | Path) -> dict[str, frozenset[str]]:
        out: dict[str, frozenset[str]] = {}
        for email, projects, _name, where in _entries(path):
            if "@" not in email:
                raise AuthConfigError(f"{where}: {email!r} is not an email address")
            out[email.lower()] = projects
        return out

    def _transport(self) -> HttpRequest:
        if self._request is None:
            import google.auth.transport.requests as gtr  # the server extra brings requests

            self._request = gtr.Request()
        return self._request

    def _fetch_certs(self) -> dict[str, str]:
        resp = self._transport()(self._certs_url, method="GET")
        if resp.status != 200:
            raise Unauthenticated(f"cannot fetch Google's signing certificates: HTTP {resp.status}")
        data = resp.data.decode("utf-8") if isinstance(resp.data, bytes) else resp.data
        certs = json.loads(data)
        if not isinstance(certs, dict):
            raise Unauthenticated("Google's signing certificates are not a JSON object")
        return {str(k): str(v) for k, v in certs.items()}

    def _signing_certs(self, kid: str | None) -> dict[str, str]:
        with self._lock:
            stale = time.monotonic() - self._certs_at > self._certs_ttl
            # Google rotates keys: a token signed with a key we have not seen yet means
            # our copy is old (rate-limited so garbage kids cannot make us fetch often).
            unknown = kid is not None and kid not in self._certs and time.monotonic() - self._certs_at > 30
            if not self._certs or stale or unknown:
                self._certs = self._fetch_certs()
                self._certs_at = time.monotonic()
            return self._certs

    def authenticate(self, token: str | None) -> Principal:
        from google.auth import exceptions as gexc
        from google.auth import jwt

        if not token:
            raise Unauthenticated("no bearer token (an ID token for audience " + self.audience + ")")
        try:
            header = jwt.decode_header(token)  # type: ignore[no-untyped-call]
        except (ValueError, gexc.GoogleAuthError) as e:
            raise Unauthenticated(f"not a JWT: {e}") from None
        kid = header.get("kid") if isinstance(header, dict) else None
        try:
            claims = jwt.decode(  # type: ignore[no-untyped-call]
                token,
                certs=self._signing_certs(kid if isinstance(kid, str) else None),
                audience=self.audience,
                clock_skew_in_seconds=self._skew,
            )
        except (ValueError, gexc.GoogleAuthError) as e:
            raise Unauthenticated(f"ID token rejected: {e}") from None
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise Unauthenticated(f"ID token from issuer {claims.get('iss')!r}, not Google")
        email = str(claims.get("email", "")).lower()
        if not email or claims.get("email_verified") is not True:
            raise Unauthenticated("ID token carries no verified email")
        projects = self._principals.get(email)
        if projects is None:
            raise Unauthenticated(f"{email} is not an allowed principal")
        return Principal(email, projects)


def bearer_token(metadata: Any) -> str | None:
    """The token of an ``authorization: Bearer <token>`` entry in gRPC metadata, if any."""
    for key, value in metadata or ():
        if key.lower() == "authorization" and isinstance(value, str):
            scheme, _, rest = value.strip().partition(" ")
            if scheme.lower() == "bearer" and rest.strip():
                return rest.strip()
    return None


def make_authenticator(
    mode: str,
    *,
    tokens_file: str | None = None,
    audience: str | None = None,
    principals_file: str | None = None,
    request: HttpRequest | None = None,
) -> Authenticator:
    """The authenticator for ``--auth MODE`` and its files; raises AuthConfigError."""
    if mode == "none":
        return NoAuth()
    if mode == "tokens":
        if not tokens_file:
            raise AuthConfigError("--auth tokens needs --tokens FILE")
        return TokenAuthenticator.from_file(tokens_file)
    if mode == "google":
        if not principals_file:
            raise AuthConfigError("--auth google needs --google-principals FILE")
        return GoogleIdTokenAuthenticator(
            audience or "", GoogleIdTokenAuthenticator.load_principals(principals_file), request=request
        )
    raise AuthConfigError(f"unknown --auth mode {mode!r} (none, tokens or google)")
