"""Assemble one gateway replica: gRPC server, TLS, interceptor, health, reflection and metrics.

``__main__`` parses flags into a ``GatewayConfig`` and calls ``GatewayApp``; tests build
the same object in-process on embedded backends, so what they exercise is what runs.
"""

from __future__ import annotations

import logging
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from rvcloud.backends.blob.base import BlobStore
from rvcloud.backends.bus.base import EventBus
from rvcloud.ingest_gateway.auth import Authenticator, NoAuth
from rvcloud.ingest_gateway.health import GATEWAY_SERVICE, Check, HealthChecker, backend_checks
from rvcloud.ingest_gateway.interceptor import GatewayInterceptor
from rvcloud.ingest_gateway.metrics import GatewayMetrics, MetricsServer
from rvcloud.ingest_gateway.server import MAX_CHUNK, GatewayService
from rvcloud.metadata.store import StatusStore
from rvcloud.v1 import gateway_pb2 as pb
from rvcloud.v1 import gateway_pb2_grpc as pb_grpc

log = logging.getLogger("rvcloud.gateway")


@dataclass
class GatewayConfig:
    listen: str = "127.0.0.1:50051"
    topic_stored: str = "rvcloud-stored"
    max_workers: int = 32
    max_file_size: int = 64 << 30
    receiving_lease: float = 60.0
    max_uploads: int = 0  # 0: bounded only by max_workers
    retry_after_ms: int = 2000
    tls_cert: str | None = None
    tls_key: str | None = None
    metrics_port: int | None = None  # None: no HTTP endpoint; 0: any free port
    metrics_addr: str = "0.0.0.0"
    health_interval: float = 5.0
    health_timeout: float = 3.0  # a backend check that takes longer counts as down
    shutdown_grace: float = 30.0
    part_size: int = 16 << 20  # staged parts of resumable uploads (same on every replica)
    parts_max_age: float = 7 * 24 * 3600.0  # parts of uploads idle this long are deleted


def load_server_credentials(cert_file: str, key_file: str) -> grpc.ServerCredentials:
    """TLS credentials from PEM files (the certificate file may hold the whole chain)."""
    with open(cert_file, "rb") as f:
        cert = f.read()
    with open(key_file, "rb") as f:
        key = f.read()
    return grpc.ssl_server_credentials([(key, cert)])


class GatewayApp:
    """One replica; ``start`` binds and serves, ``stop`` drains gracefully."""

    def __init__(
        self,
        config: GatewayConfig,
        blobs: BlobStore,
        bus: EventBus,
        status: StatusStore,
        *,
        authenticator: Authenticator | None = None,
        checks: list[Check] | None = None,
    ) -> None:
        if (config.tls_cert is None) != (config.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        self.config = config
        self.metrics = GatewayMetrics()
        self.authenticator = authenticator or NoAuth()
        self.service = GatewayService(
            blobs,
            bus,
            status,
            topic_stored=config.topic_stored,
            max_file_size=config.max_file_size,
            stale_receiving_s=config.receiving_lease,
            max_uploads=config.max_uploads,
            retry_after_ms=config.retry_after_ms,
            metrics=self.metrics,
            part_size=config.part_size,
            parts_max_age_s=config.parts_max_age,
        )
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix="gateway-rpc"),
            interceptors=[GatewayInterceptor(self.authenticator, self.metrics)],
            options=[
                ("grpc.max_receive_message_length", MAX_CHUNK + (64 << 10)),
                # gRPC sets SO_REUSEPORT by default: a second gateway on a busy port would
                # start "fine" and the kernel would split clients between the two services.
                ("grpc.so_reuseport", 0),
            ],
        )
        pb_grpc.add_GatewayServicer_to_server(self.service, self.server)  # type: ignore[no-untyped-call]
        self.health_servicer = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health_servicer, self.server)
        reflection.enable_server_reflection(
            (
                pb.DESCRIPTOR.services_by_name["Gateway"].full_name,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            self.server,
        )
        self.health = HealthChecker(
            self.health_servicer,
            checks
            if checks is not None
            else backend_checks(status, blobs, bus, timeout=config.health_timeout),
            interval=config.health_interval,
            timeout=config.health_timeout,
            metrics=self.metrics,
        )
        self.metrics_server: MetricsServer | None = None
        self.port = 0

    @property
    def tls(self) -> bool:
        return self.config.tls_cert is not None

    def start(self) -> int:
        """Bind, start serving and the health checks; returns the bound port."""
        c = self.config
        try:
            if c.tls_cert is not None and c.tls_key is not None:
                creds = load_server_credentials(c.tls_cert, c.tls_key)
                self.port = self.server.add_secure_port(c.listen, creds)
            else:
                self.port = self.server.add_insecure_port(c.listen)
        except RuntimeError:  # grpcio raises this when the bind fails
            self.port = 0
        if self.port == 0:
            raise OSError(f"cannot listen on {c.listen} (address in use, or not an address of this host)")
        if c.metrics_port is not None:
            self.metrics_server = MetricsServer(self.metrics, c.metrics_port, c.metrics_addr)
        self.server.start()
        self.health.start()
        self.service.start_janitor()
        log.info(
            "listening on %s (%s, auth %s, metrics %s)",
            c.listen,
            "TLS" if self.tls else "plaintext",
            self.authenticator.mode,
            f"port {self.metrics_server.port}" if self.metrics_server else "off",
        )
        return self.port

    def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING, refuse new calls, let in-flight ones finish within the grace period."""
        grace = self.config.shutdown_grace if grace is None else grace
        self.health.stop()
        self.service.stop_janitor()
        log.info("shutting down: in-flight calls have %g s to finish", grace)
        self.server.stop(grace=grace).wait()
        if self.metrics_server is not None:
            self.metrics_server.close()


__all__ = ["GATEWAY_SERVICE", "GatewayApp", "GatewayConfig", "load_server_credentials"]
