"""`python -m rvcloud.backends.setup`: create what the configured backends need.

Idempotent: bucket (GCS), topics with their shared subscriptions and dead-letter topics
(Pub/Sub), the warehouse's dataset and tables (BigQuery, DuckDB). The embedded backends
create their files on first use; Datastore needs its composite indexes deployed once
with ``gcloud datastore indexes create deploy/datastore/index.yaml``.
"""

from __future__ import annotations

import argparse
import sys

from rvcloud.backends.factory import open_blob_store, open_event_bus, open_status_store, open_warehouse
from rvcloud.backends.settings import Settings, add_backend_args


def setup(settings: Settings, *, location: str | None = None) -> list[str]:
    """Create every resource; returns one line per backend saying what it did."""
    done: list[str] = []
    blobs = open_blob_store(settings.blob)
    ensure_bucket = getattr(blobs, "ensure_bucket", None)
    if ensure_bucket is not None:
        ensure_bucket(location)
        done.append(f"blob store {settings.blob}: bucket ready")
    else:
        done.append(f"blob store {settings.blob}: nothing to create")
    bus = open_event_bus(settings.bus)
    topics = [settings.topic_stored, settings.topic_converted]
    bus_setup = getattr(bus, "setup", None)
    if bus_setup is not None:
        bus_setup(topics)
        done.append(
            f"event bus {settings.bus}: topics, subscriptions and dead-letter topics for {', '.join(topics)}"
        )
    else:
        done.append(f"event bus {settings.bus}: nothing to create")
    bus.close()
    status = open_status_store(settings.status)
    status.ping()
    done.append(f"status store {settings.status}: reachable")
    status.close()
    wh = open_warehouse(settings.warehouse, blobs)
    wh.ensure_tables()
    done.append(f"warehouse {settings.warehouse}: tables ribs and updates ready")
    wh.close()
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rvcloud.backends.setup", description=__doc__)
    p.add_argument("--location", help="location for a new bucket (e.g. US)")
    add_backend_args(p)
    args = p.parse_args(argv)
    for line in setup(Settings.from_args(args), location=args.location):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
