"""The gateway's server interceptor: request ids, authentication, per-project authorization, RPC metrics.

Every Gateway RPC passes through here before its handler runs:

1. a request id (the caller's ``x-request-id`` when it looks sane, else a new one) is
   bound to the log context and echoed in the initial metadata;
2. the bearer token is authenticated: no token or a bad one ends the call with
   UNAUTHENTICATED before any handler code runs;
3. the request's project is authorized: for unary calls from the request message, for
   ``Upload`` from the header (the first stream message; no chunk is read and no backend
   is touched before the check). A project the caller is not allowed, or a ListFiles
   over all projects by a caller limited to some, ends with PERMISSION_DENIED.

So a refused call changes nothing anywhere. Health and reflection are left open (load
balancers probe without credentials; reflection exposes only the public contract).
"""

from __future__ import annotations

import itertools
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from rvcloud.ingest_gateway import logs
from rvcloud.ingest_gateway.auth import Authenticator, Principal, Unauthenticated, bearer_token
from rvcloud.ingest_gateway.metrics import GatewayMetrics

log = logging.getLogger("rvcloud.gateway.auth")

SERVICE_PREFIX = "/rvcloud.v1.Gateway/"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class _Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _request_id(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == "x-request-id" and isinstance(value, str) and _REQUEST_ID.match(value):
            return value
    return uuid.uuid4().hex[:16]


def _authorize(principal: Principal, method: str, project: str) -> None:
    if method == "ListFiles" and not project:
        if not principal.all_projects:
            raise _Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{principal.name} may list only projects {','.join(sorted(principal.projects))}: "
                "pass --project",
            )
        return
    if not principal.allows(project):
        raise _Refused(
            grpc.StatusCode.PERMISSION_DENIED, f"{principal.name} is not allowed project {project!r}"
        )


class GatewayInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]  # generic only in the stubs
    def __init__(self, authenticator: Authenticator, metrics: GatewayMetrics) -> None:
        self.authenticator = authenticator
        self.metrics = metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        full = handler_call_details.method
        if handler is None or not full.startswith(SERVICE_PREFIX):
            return handler
        method = full[len(SERVICE_PREFIX) :]
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_stream(method, handler.stream_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # no streaming-response methods in the contract

    # ---- wrappers ------------------------------------------------------------------

    def _authenticate(self, context: grpc.ServicerContext) -> Principal:
        try:
            return self.authenticator.authenticate(bearer_token(context.invocation_metadata()))
        except Unauthenticated as e:
            self.metrics.auth_failures.labels("unauthenticated").inc()
            log.warning("unauthenticated call from %s: %s", context.peer(), e)
            raise _Refused(grpc.StatusCode.UNAUTHENTICATED, str(e)) from None

    def _run(
        self,
        method: str,
        context: grpc.ServicerContext,
        body: Callable[[Principal], Any],
    ) -> Any:
        rid = _request_id(context.invocation_metadata())
        started = time.monotonic()
        with logs.scope(request_id=rid, method=method):
            code = grpc.StatusCode.OK
            try:
                context.send_initial_metadata((("x-request-id", rid),))
                try:
                    principal = self._authenticate(context)
                    if principal.name != "anonymous":
                        logs.bind(principal=principal.name)
                    return body(principal)
                except _Refused as e:
                    if e.code == grpc.StatusCode.PERMISSION_DENIED:
                        self.metrics.auth_failures.labels("permission_denied").inc()
                        log.warning("permission denied: %s", e.message)
                    context.abort(e.code, e.message)
            except BaseException:
                code = context.code() or grpc.StatusCode.UNKNOWN  # type: ignore[attr-defined]
                raise
            finally:
                if code == grpc.StatusCode.OK:
                    code = context.code() or grpc.StatusCode.OK  # type: ignore[attr-defined]
                name = code.name if isinstance(code, grpc.StatusCode) else str(code)
                self.metrics.rpcs.labels(method, name).inc()
                if code != grpc.StatusCode.OK:
                    self.metrics.errors.labels(method, name).inc()
                log.debug("%s %s in %.3f s", method, name, time.monotonic() - started)

    def _wrap_unary(self, method: str, behavior: Callable[[Any, grpc.ServicerContext], Any]) -> Any:
        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            def body(principal: Principal) -> Any:
                _authorize(principal, method, str(getattr(request, "project", "")))
                return behavior(request, context)

            return self._run(method, context, body)

        return wrapped

    def _wrap_stream(
        self, method: str, behavior: Callable[[Iterator[Any], grpc.ServicerContext], Any]
    ) -> Any:
        def wrapped(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            def body(principal: Principal) -> Any:
                # Authenticated already; only now read the header (the first message),
                # authorize its project, then hand the handler the whole stream.
                first = next(requests, None)
                if first is not None and first.WhichOneof("part") == "header":
                    _authorize(principal, method, first.header.project)
                stream = requests if first is None else itertools.chain([first], requests)
                return behavior(stream, context)

            return self._run(method, context, body)

        return wrapped
