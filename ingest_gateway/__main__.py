"""`python -m rvcloud.ingest_gateway`: run one gateway replica."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

try:
    from rvcloud.backends.factory import open_blob_store, open_event_bus, open_status_store
    from rvcloud.backends.settings import Settings, add_backend_args
    from rvcloud.ingest_gateway.app import GatewayApp, GatewayConfig
    from rvcloud.ingest_gateway.auth import AuthConfigError, make_authenticator
    from rvcloud.ingest_gateway.logs import setup_logging
except ImportError as e:  # an uploader-only install (no [server] extra)
    sys.exit(
        f"error: the gateway needs the server packages ({e.name or e} is missing): "
        "pip install 'rvcloud[server]'"
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rvcloud.ingest_gateway", description=__doc__)
    p.add_argument("--listen", default="127.0.0.1:50051", help="HOST:PORT to serve gRPC on")
    p.add_argument("--max-workers", type=int, default=32, help="concurrent RPCs (uploads and queries)")
    p.add_argument("--max-file-size", type=int, default=64 << 30, help="largest accepted file in bytes")
    p.add_argument(
        "--max-uploads",
        type=int,
        default=0,
        help="concurrent uploads on this replica; more get RESOURCE_EXHAUSTED with a retry-after-ms "
        "hint (default 0: up to --max-workers)",
    )
    p.add_argument("--retry-after-ms", type=int, default=2000, help="retry hint sent with RESOURCE_EXHAUSTED")
    p.add_argument(
        "--receiving-lease",
        type=float,
        default=60.0,
        help="seconds without a chunk after which an upload counts as abandoned (another may take over)",
    )
    p.add_argument(
        "--part-size",
        type=int,
        default=16 << 20,
        help="bytes per staged part of a resumable upload; larger files are staged in parts this size "
        "(the same on every replica)",
    )
    p.add_argument(
        "--parts-max-age",
        type=float,
        default=7 * 24 * 3600.0,
        help="seconds after which the staged parts of an abandoned upload are deleted (default a week)",
    )
    p.add_argument(
        "--shutdown-grace",
        type=float,
        default=30.0,
        help="on SIGTERM, seconds in-flight calls get to finish before they are cancelled",
    )
    tls = p.add_argument_group("TLS")
    tls.add_argument("--tls-cert", metavar="PEM", help="server certificate (chain) file; enables TLS")
    tls.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    auth = p.add_argument_group("authentication")
    auth.add_argument(
        "--auth",
        choices=("none", "tokens", "google"),
        default="none",
        help="none (local use), tokens (static bearer tokens, --tokens) or google (Google-signed ID "
        "tokens, --audience and --google-principals)",
    )
    auth.add_argument(
        "--tokens", metavar="FILE", help="lines 'TOKEN|sha256:HEX PROJECT[,PROJECT...]|* [NAME]'"
    )
    auth.add_argument("--audience", help="expected audience of Google ID tokens (e.g. the service URL)")
    auth.add_argument(
        "--google-principals", metavar="FILE", help="lines 'SERVICE_ACCOUNT_EMAIL PROJECT[,PROJECT...]|*'"
    )
    ops = p.add_argument_group("operations")
    ops.add_argument(
        "--metrics-port", type=int, help="serve Prometheus /metrics on this HTTP port (0: any free port)"
    )
    ops.add_argument("--metrics-addr", default="0.0.0.0", help="address of the metrics endpoint")
    ops.add_argument(
        "--health-interval", type=float, default=5.0, help="seconds between backend health checks"
    )
    ops.add_argument(
        "--health-timeout",
        type=float,
        default=3.0,
        help="seconds a backend check may take; a slower (hung) backend counts as down: NOT_SERVING",
    )
    ops.add_argument("--log-format", choices=("text", "json"), default="text", help="log line format")
    add_backend_args(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_format)
    if (args.tls_cert is None) != (args.tls_key is None):
        print("gateway: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    if args.part_size <= 0 or args.parts_max_age <= 0:
        print("gateway: --part-size and --parts-max-age must be positive", file=sys.stderr)
        return 2
    try:
        authenticator = make_authenticator(
            args.auth,
            tokens_file=args.tokens,
            audience=args.audience,
            principals_file=args.google_principals,
        )
    except AuthConfigError as e:
        print(f"gateway: {e}", file=sys.stderr)
        return 2
    settings = Settings.from_args(args)
    blobs = open_blob_store(settings.blob)
    bus = open_event_bus(settings.bus)
    status = open_status_store(settings.status)
    config = GatewayConfig(
        listen=args.listen,
        topic_stored=settings.topic_stored,
        max_workers=args.max_workers,
        max_file_size=args.max_file_size,
        receiving_lease=args.receiving_lease,
        max_uploads=args.max_uploads,
        retry_after_ms=args.retry_after_ms,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        metrics_port=args.metrics_port,
        metrics_addr=args.metrics_addr,
        health_interval=args.health_interval,
        health_timeout=args.health_timeout,
        shutdown_grace=args.shutdown_grace,
        part_size=args.part_size,
        parts_max_age=args.parts_max_age,
    )
    app = GatewayApp(config, blobs, bus, status, authenticator=authenticator)
    try:
        app.start()
    except OSError as e:
        print(f"gateway: {e}", file=sys.stderr)
        return 1
    logging.info("backends: blob %s, bus %s, status %s", settings.blob, settings.bus, settings.status)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    # Health goes NOT_SERVING first so load balancers stop routing here, then in-flight
    # uploads get the grace period, then the backends are released.
    app.stop()
    bus.close()
    status.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
