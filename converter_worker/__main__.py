"""`python -m rvcloud.converter_worker`: run one converter replica."""

from __future__ import annotations

import argparse
import sys

try:
    from rvcloud.backends.bus.consume import run_until_signalled
    from rvcloud.backends.factory import open_blob_store, open_event_bus, open_status_store
    from rvcloud.backends.logs import setup_logging
    from rvcloud.backends.metrics import MetricsServer, StageMetrics
    from rvcloud.backends.settings import Settings, add_worker_args
    from rvcloud.converter_worker.worker import Converter
except ImportError as e:  # an uploader-only install (no [server] extra)
    sys.exit(
        f"error: the converter needs the server packages ({e.name or e} is missing): "
        "pip install 'rvcloud[server]'"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rvcloud.converter_worker", description=__doc__)
    p.add_argument("--concurrency", type=int, default=1, help="files converted at once by this process")
    add_worker_args(p, stage="converter", lease_seconds=60.0)
    args = p.parse_args(argv)
    setup_logging(args.log_format, process="converter")
    s = Settings.from_args(args)
    metrics = StageMetrics("converter")
    if args.metrics_port is not None:
        server = MetricsServer(metrics.registry, args.metrics_port, args.metrics_addr)
        print(f"converter: metrics on port {server.port}", file=sys.stderr, flush=True)
    bus = open_event_bus(s.bus)
    conv = Converter(
        open_blob_store(s.blob),
        bus,
        open_status_store(s.status),
        topic_converted=s.topic_converted,
        max_attempts=args.max_attempts,
        lease_seconds=args.lease_seconds,
        metrics=metrics,
    )
    return run_until_signalled(
        "converter",
        bus,
        lambda: bus.subscribe(
            s.topic_stored, conv.handle, concurrency=args.concurrency, max_attempts=args.max_attempts
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
