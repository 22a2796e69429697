"""`python -m rvcloud.ingest_gateway`: run one gateway replica."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from rvcloud.backends.factory import open_blob_store, open_event_bus, open_status_store
from rvcloud.backends.settings import Settings, add_backend_args
from rvcloud.ingest_gateway.server import MAX_CHUNK, GatewayService
from rvcloud.v1 import gateway_pb2_grpc as pb_grpc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rvcloud.ingest_gateway", description=__doc__)
    p.add_argument("--listen", default="127.0.0.1:50051", help="HOST:PORT to serve gRPC on")
    p.add_argument("--max-workers", type=int, default=32, help="concurrent RPCs (uploads and queries)")
    p.add_argument("--max-file-size", type=int, default=64 << 30, help="largest accepted file in bytes")
    p.add_argument(
        "--receiving-lease",
        type=float,
        default=60.0,
        help="seconds without a chunk after which an upload counts as abandoned (another may take over)",
    )
    add_backend_args(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s gateway %(levelname)s %(message)s")
    settings = Settings.from_args(args)
    blobs = open_blob_store(settings.blob)
    bus = open_event_bus(settings.bus)
    status = open_status_store(settings.status)

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=args.max_workers),
        options=[("grpc.max_receive_message_length", MAX_CHUNK + (64 << 10))],
    )
    pb_grpc.add_GatewayServicer_to_server(  # type: ignore[no-untyped-call]
        GatewayService(
            blobs, bus, status, topic_stored=settings.topic_stored, max_file_size=args.max_file_size
        ),
        server,
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port(args.listen)
    if port == 0:
        print(f"gateway: cannot listen on {args.listen}", file=sys.stderr)
        return 1
    server.start()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    logging.info(
        "listening on %s (blob %s, bus %s, status %s)",
        args.listen,
        settings.blob,
        settings.bus,
        settings.status,
    )

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    health_servicer.enter_graceful_shutdown()
    # Let in-flight uploads finish (bounded), then release the backends.
    server.stop(grace=30).wait()
    bus.close()
    status.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
