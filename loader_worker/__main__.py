"""`python -m rvcloud.loader_worker`: run one loader replica."""

from __future__ import annotations

import argparse
import sys

from rvcloud.backends.bus.batch import subscribe_batch
from rvcloud.backends.bus.consume import run_until_signalled
from rvcloud.backends.factory import open_blob_store, open_event_bus, open_status_store, open_warehouse
from rvcloud.backends.settings import Settings, add_backend_args
from rvcloud.loader_worker.worker import Loader


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rvcloud.loader_worker", description=__doc__)
    p.add_argument("--batch-files", type=int, default=100, help="most files in one load job")
    p.add_argument(
        "--batch-seconds",
        type=float,
        default=2.0,
        help="longest a converted file waits for its batch to fill",
    )
    add_backend_args(p)
    args = p.parse_args(argv)
    s = Settings.from_args(args)
    blobs = open_blob_store(s.blob)
    loader = Loader(open_warehouse(s.warehouse, blobs), open_status_store(s.status))
    loader.warehouse.ensure_tables()
    bus = open_event_bus(s.bus)
    return run_until_signalled(
        "loader",
        bus,
        lambda: subscribe_batch(
            bus,
            s.topic_converted,
            loader.handle_batch,
            max_messages=args.batch_files,
            max_wait_s=args.batch_seconds,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
