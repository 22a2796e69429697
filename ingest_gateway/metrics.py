"""Prometheus metrics of one gateway replica, served on ``--metrics-port``.

Each ``GatewayMetrics`` owns its registry (not prometheus_client's global one) so that
several gateways in one test process do not collide. Files by status and stage are
not exported here: they are a property of the status store, not of a replica, and
the loader exports them (``rvcloud_files``, see :mod:`rvcloud.backends.metrics`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from rvcloud.backends import metrics as shared

# Uploads of MRT files take from milliseconds (small UPDATES) to minutes (large RIBs).
_DURATION_BUCKETS = shared.DURATION_BUCKETS


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.uploads = Counter(
            "rvcloud_gateway_uploads",
            "Finished Upload calls by outcome (stored, already_done, already_in_progress, rejected, failed)",
            ["outcome"],
            registry=r,
        )
        self.bytes_received = Counter(
            "rvcloud_gateway_received_bytes", "File bytes received by Upload", ["project"], registry=r
        )
        self.files_stored_bytes = Counter(
            "rvcloud_gateway_stored_bytes",
            "Bytes of files committed to the blob store",
            ["project"],
            registry=r,
        )
        self.in_flight = Gauge("rvcloud_gateway_uploads_in_flight", "Uploads being received now", registry=r)
        self.upload_seconds = Histogram(
            "rvcloud_gateway_upload_duration_seconds",
            "Upload call duration by outcome",
            ["outcome"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.rpcs = Counter(
            "rvcloud_gateway_rpcs", "Finished RPCs by method and status code", ["method", "code"], registry=r
        )
        self.errors = Counter(
            "rvcloud_gateway_errors",
            "RPCs that ended with an error, by method and code",
            ["method", "code"],
            registry=r,
        )
        self.auth_failures = Counter(
            "rvcloud_gateway_auth_failures",
            "Calls refused by authentication or authorization",
            ["reason"],
            registry=r,
        )
        self.backend_up = Gauge(
            "rvcloud_gateway_backend_up",
            "1 while the backend answers the health check",
            ["backend"],
            registry=r,
        )
        self.serving = Gauge("rvcloud_gateway_serving", "1 while the health service says SERVING", registry=r)


class MetricsServer(shared.MetricsServer):
    """The HTTP endpoint (``/metrics``) of a gateway's metrics; ``port`` 0 picks a free one."""

    def __init__(self, metrics: GatewayMetrics, port: int, addr: str = "0.0.0.0") -> None:
        super().__init__(metrics.registry, port, addr)
