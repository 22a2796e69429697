"""Google-signed ID tokens for a gateway started with ``--auth google`` (Cloud Run and the like).

When ``id_token_audience`` is set (``RVCLOUD_ID_TOKEN_AUDIENCE`` or the config file,
usually the gateway's URL), the uploader sends an ID token for that audience as its
bearer token instead of a static ``token``. Where the token comes from is Google's
usual order (google-auth's ``fetch_id_token_credentials``):

1. ``GOOGLE_APPLICATION_CREDENTIALS`` naming a service-account key file: the key signs
   a JWT that Google's token endpoint (the key file's ``token_uri``) exchanges for an
   ID token;
2. otherwise the metadata server (a VM, Cloud Run, GKE with workload identity).

Tokens live an hour; :class:`IdTokenSource` keeps one and fetches a new one
``margin`` seconds before it expires, so every call -- also a long-running ``watch``
-- carries a valid token. google-auth is not part of the base install (an archive
host that uses static tokens needs none of it): ``pip install 'rvcloud[gcp]'``;
``config.resolve`` checks that it is there (a usage error, exit 2).

A token that cannot be had fails the call like a refusal by the gateway would: as a
``grpc.RpcError`` (:class:`TokenError`), which every command already turns into an
exit code -- UNAUTHENTICATED (exit 1) for missing or bad credentials, UNAVAILABLE
(retried, then exit 3) when the token endpoint or metadata server cannot be reached.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from typing import Any

import grpc

from rvcloud.cli.client import UsageError

INSTALL_HINT = "pip install 'rvcloud[gcp]'"
DEFAULT_MARGIN = 300.0  # seconds before expiry at which a token is replaced


class TokenError(grpc.RpcError):
    """No ID token could be had; quacks like the ``grpc.Call`` error of a refused call."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def check_installed() -> None:
    """Raise UsageError when google-auth (the ``gcp`` extra) is missing."""
    _google_auth()


def _google_auth() -> tuple[Any, Any, Any]:
    """(google.oauth2.id_token, the requests transport, google.auth.exceptions), imported lazily."""
    try:
        import google.auth.exceptions as gexc
        import google.auth.transport.requests as gtr
        from google.oauth2 import id_token
    except ImportError as e:
        raise UsageError(
            f"id_token_audience is set, but google-auth is not installed ({e}); {INSTALL_HINT}"
        ) from None
    return id_token, gtr, gexc


class IdTokenSource:
    """A callable returning a valid ID token for ``audience``; thread-safe.

    ``request`` is a ``google.auth.transport.Request`` (default: the requests-based one).
    Failures raise :class:`TokenError` naming the audience and the cause.
    """

    def __init__(self, audience: str, *, request: Any = None, margin: float = DEFAULT_MARGIN) -> None:
        if not audience:
            raise ValueError("an ID token needs an audience")
        self.audience = audience
        self.margin = margin
        self._request = request
        self._credentials: Any = None
        self._lock = threading.Lock()

    def _expires_soon(self) -> bool:
        creds = self._credentials
        if creds is None or not creds.token:
            return True
        expiry = creds.expiry  # naive UTC datetime in google-auth
        if expiry is None:
            return False
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        return bool((expiry - now).total_seconds() < self.margin)

    def __call__(self) -> str:
        with self._lock:
            if self._expires_soon():
                self._refresh()
            return str(self._credentials.token)

    def _refresh(self) -> None:
        id_token, gtr, gexc = _google_auth()
        if self._request is None:
            self._request = gtr.Request()
        try:
            if self._credentials is None:
                self._credentials = id_token.fetch_id_token_credentials(self.audience, request=self._request)
            self._credentials.refresh(self._request)
        except gexc.TransportError as e:
            # The token endpoint or metadata server did not answer: worth a retry.
            raise TokenError(
                grpc.StatusCode.UNAVAILABLE,
                f"cannot reach Google's token service for an ID token (audience {self.audience}): {e}",
            ) from None
        except gexc.GoogleAuthError as e:
            raise TokenError(
                grpc.StatusCode.UNAUTHENTICATED,
                f"cannot get a Google ID token for audience {self.audience}: {e} (set "
                "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run where a "
                "metadata server answers)",
            ) from None
        if not self._credentials.token:
            raise TokenError(
                grpc.StatusCode.UNAUTHENTICATED, f"Google returned no ID token for audience {self.audience}"
            )


@functools.cache
def id_token_source(audience: str) -> IdTokenSource:
    """The process's one token source per audience, so every client shares its cached token."""
    return IdTokenSource(audience)
