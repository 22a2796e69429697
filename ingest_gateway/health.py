"""Backend-aware gRPC health: SERVING only while the status store, blob store and bus answer.

A load balancer or Kubernetes probe asks ``grpc.health.v1.Health``; a replica that
cannot reach its status store would fail every upload, so it should be taken out of
rotation rather than accept streams it cannot finish. A background thread runs cheap
checks every ``interval`` seconds and flips the overall status ("") and the Gateway
service's status together. Shutdown sets NOT_SERVING for good (``stop``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from grpc_health.v1 import health, health_pb2

from rvcloud.backends.blob.base import BlobStore
from rvcloud.backends.bus.base import EventBus
from rvcloud.ingest_gateway.metrics import GatewayMetrics
from rvcloud.metadata.store import StatusStore

log = logging.getLogger("rvcloud.gateway.health")

GATEWAY_SERVICE = "rvcloud.v1.Gateway"
Check = tuple[str, Callable[[], None]]


def backend_checks(status: StatusStore, blobs: BlobStore, bus: EventBus) -> list[Check]:
    """The checks for the gateway's three backends; each raises when its backend is down."""

    def blob_check() -> None:
        # Listing a prefix that holds nothing is one cheap call on GCS and one
        # directory lookup on the file store, and still proves the store answers.
        for _ in blobs.list(".rvcloud-health/"):
            break

    checks: list[Check] = [("status", status.ping), ("blob", blob_check)]
    ping = getattr(bus, "ping", None)
    if callable(ping):  # EventBus has no ping yet; use one when a backend offers it
        checks.append(("bus", ping))
    return checks


class HealthChecker:
    """Runs ``checks`` periodically and publishes the result to a grpc HealthServicer."""

    def __init__(
        self,
        servicer: health.HealthServicer,
        checks: Sequence[Check],
        *,
        interval: float = 5.0,
        metrics: GatewayMetrics | None = None,
        services: Sequence[str] = ("", GATEWAY_SERVICE),
    ) -> None:
        self.servicer = servicer
        self.checks = list(checks)
        self.interval = interval
        self.metrics = metrics
        self.services = list(services)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: dict[str, bool] = {}
        self.serving = False

    def check_once(self) -> bool:
        """Run every check now, publish the result and return whether all passed."""
        ok = True
        for name, fn in self.checks:
            try:
                fn()
                up = True
            except Exception as e:
                up = False
                if self._last.get(name, True):  # log the transition, not every failed probe
                    log.warning("backend %s is down: %s", name, e)
            if up and not self._last.get(name, True):
                log.info("backend %s is back", name)
            self._last[name] = up
            ok = ok and up
            if self.metrics is not None:
                self.metrics.backend_up.labels(name).set(1 if up else 0)
        if not self._stop.is_set():
            self._publish(ok)
        return ok

    def _publish(self, ok: bool) -> None:
        state = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
        for svc in self.services:
            self.servicer.set(svc, state)
        self.serving = ok
        if self.metrics is not None:
            self.metrics.serving.set(1 if ok else 0)

    def start(self) -> None:
        self.check_once()
        self._thread = threading.Thread(target=self._run, name="gateway-health", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check_once()

    def stop(self) -> None:
        """NOT_SERVING from now on (shutdown); no more checks."""
        self._stop.set()
        self._publish(False)
        self.servicer.enter_graceful_shutdown()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.interval + 5)
