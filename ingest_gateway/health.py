"""Backend-aware gRPC health: SERVING only while the status store, blob store and bus answer.

A load balancer or Kubernetes probe asks ``grpc.health.v1.Health``; a replica that
cannot reach its status store would fail every upload, so it should be taken out of
rotation rather than accept streams it cannot finish. A background thread runs cheap
checks every ``interval`` seconds and flips the overall status ("") and the Gateway
service's status together. Shutdown sets NOT_SERVING for good (``stop``).

Every check runs on its own thread with a deadline (``timeout``): a backend that hangs
(a TCP connection that never answers, a SQLite file locked by someone else) counts as
down when the deadline passes, instead of stalling the health loop and leaving the
last, stale SERVING in place. A check still hung from an earlier round is not started
again (no pile-up of stuck threads); it stays down until that call returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from grpc_health.v1 import health, health_pb2

from rvcloud.backends.blob.base import BlobStore
from rvcloud.backends.bus.base import EventBus
from rvcloud.ingest_gateway.metrics import GatewayMetrics
from rvcloud.metadata.store import StatusStore

log = logging.getLogger("rvcloud.gateway.health")

GATEWAY_SERVICE = "rvcloud.v1.Gateway"
Check = tuple[str, Callable[[], None]]
DEFAULT_TIMEOUT = 3.0


def backend_checks(
    status: StatusStore, blobs: BlobStore, bus: EventBus, *, timeout: float = DEFAULT_TIMEOUT
) -> list[Check]:
    """The checks for the gateway's three backends; each raises when its backend is down."""

    def blob_check() -> None:
        # Listing a prefix that holds nothing is one cheap call on GCS and one
        # directory lookup on the file store, and still proves the store answers.
        for _ in blobs.list(".rvcloud-health/"):
            break

    def bus_check() -> None:
        bus.ping(timeout=timeout)

    return [("status", status.ping), ("blob", blob_check), ("bus", bus_check)]


class _Prober:
    """One long-lived daemon thread per check, so a check runs with a deadline.

    The same thread runs every round: stores that keep a connection per thread (the
    SQLite status store) then reuse one connection instead of opening one per probe.
    """

    def __init__(self, name: str, fn: Callable[[], None]) -> None:
        self._fn = fn
        self._cond = threading.Condition()
        self._round = 0  # rounds asked for
        self._finished = 0  # rounds completed
        self._error: BaseException | None = None
        self._closed = False
        threading.Thread(target=self._loop, name=f"health-{name}", daemon=True).start()

    def _loop(self) -> None:
        done = 0
        while True:
            with self._cond:
                while not self._closed and self._round <= done:
                    self._cond.wait()
                if self._closed:
                    return
                done = self._round
            error: BaseException | None = None
            try:
                self._fn()
            except BaseException as e:  # the backend's failure, reported by check()
                error = e
            with self._cond:
                self._finished, self._error = done, error
                self._cond.notify_all()

    def start(self) -> bool:
        """Ask for a new round; False when the previous one has not returned (hung)."""
        with self._cond:
            if self._finished < self._round:
                return False
            self._round += 1
            self._cond.notify_all()
            return True

    def result(self, timeout: float) -> tuple[bool, BaseException | None]:
        """(finished within ``timeout``, the error it raised)."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self._finished == self._round, max(0.0, timeout))
            return ok, self._error if ok else None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class HealthChecker:
    """Runs ``checks`` periodically and publishes the result to a grpc HealthServicer."""

    def __init__(
        self,
        servicer: health.HealthServicer,
        checks: Sequence[Check],
        *,
        interval: float = 5.0,
        timeout: float = DEFAULT_TIMEOUT,
        metrics: GatewayMetrics | None = None,
        services: Sequence[str] = ("", GATEWAY_SERVICE),
    ) -> None:
        if timeout <= 0:
            raise ValueError("the health check timeout must be positive")
        self.servicer = servicer
        self.checks = list(checks)
        self.interval = interval
        self.timeout = timeout
        self._probers: dict[str, _Prober] = {}
        self.metrics = metrics
        self.services = list(services)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: dict[str, bool] = {}
        self.serving = False

    def check_once(self) -> bool:
        """Run every check now (in parallel, ``timeout`` each), publish the result, return it."""
        for name, fn in self.checks:
            if name not in self._probers:
                self._probers[name] = _Prober(name, fn)
            # A check still hung from an earlier round keeps waiting: not started again.
            self._probers[name].start()
        deadline = time.monotonic() + self.timeout
        ok = True
        for name, _ in self.checks:
            finished, error = self._probers[name].result(deadline - time.monotonic())
            up = finished and error is None
            if not up and self._last.get(name, True):  # log the transition, not every failed probe
                why = error if finished else f"no answer within {self.timeout:g} s"
                log.warning("backend %s is down: %s", name, why)
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
            self._thread.join(timeout=self.interval + self.timeout + 5)
        for p in self._probers.values():
            p.close()
