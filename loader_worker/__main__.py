"""`python -m rvcloud.loader_worker`: run one loader replica."""

from __future__ import annotations

import argparse
import sys

try:
    from rvcloud.backends.bus.batch import subscribe_batch
    from rvcloud.backends.bus.consume import run_until_signalled
    from rvcloud.backends.factory import open_blob_store, open_event_bus, open_status_store, open_warehouse
    from rvcloud.backends.logs import setup_logging
    from rvcloud.backends.metrics import FileCountsCollector, MetricsServer, StageMetrics
    from rvcloud.backends.settings import Settings, add_worker_args
    from rvcloud.loader_worker.worker import Loader
    from rvcloud.metadata.sweeper import Sweeper
except ImportError as e:  # an uploader-only install (no [server] extra)
    sys.exit(
        f"error: the loader needs the server packages ({e.name or e} is missing): "
        "pip install 'rvcloud[server]'"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rvcloud.loader_worker", description=__doc__)
    p.add_argument("--batch-files", type=int, default=100, help="most files in one load job")
    p.add_argument(
        "--batch-seconds",
        type=float,
        default=None,
        help="longest a converted file waits for its batch to fill; 0: no waiting, files that "
        "arrive during a load form the next one (default: 0 with the embedded DuckDB warehouse, "
        "which has no load quota; 2 otherwise, and deploy/ sets 300 for BigQuery's quota)",
    )
    p.add_argument(
        "--sweep-every",
        type=float,
        default=30.0,
        help="seconds between sweeps for stuck IN_PROGRESS files (0: this replica does not sweep)",
    )
    p.add_argument(
        "--stale-after", type=float, default=300.0, help="an unleased file untouched this long is stuck"
    )
    p.add_argument(
        "--file-counts-every",
        type=float,
        default=30.0,
        help="with --metrics-port: seconds between counts of unfinished and failed files by stage "
        "(rvcloud_files; 0: not exported, e.g. on all but one loader replica)",
    )
    add_worker_args(p, stage="loader", lease_seconds=120.0)
    args = p.parse_args(argv)
    setup_logging(args.log_format, process="loader")
    s = Settings.from_args(args)
    blobs = open_blob_store(s.blob)
    status = open_status_store(s.status)
    metrics = StageMetrics("loader")
    if args.metrics_port is not None:
        if args.file_counts_every > 0:
            metrics.registry.register(FileCountsCollector(status, refresh=args.file_counts_every))
        server = MetricsServer(metrics.registry, args.metrics_port, args.metrics_addr)
        print(f"loader: metrics on port {server.port}", file=sys.stderr, flush=True)
    loader = Loader(
        open_warehouse(s.warehouse, blobs),
        status,
        max_attempts=args.max_attempts,
        lease_seconds=args.lease_seconds,
        metrics=metrics,
    )
    loader.warehouse.ensure_tables()
    bus = open_event_bus(s.bus)
    window = loader.warehouse.default_batch_seconds if args.batch_seconds is None else args.batch_seconds
    if args.sweep_every > 0:
        Sweeper(
            status,
            bus,
            args.sweep_every,
            topic_stored=s.topic_stored,
            topic_converted=s.topic_converted,
            stale_s=args.stale_after,
        ).start()
    return run_until_signalled(
        "loader",
        bus,
        lambda: subscribe_batch(
            bus,
            s.topic_converted,
            loader.handle_batch,
            max_messages=args.batch_files,
            max_wait_s=window,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
