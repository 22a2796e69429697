"""Service settings: which backend each stage talks to, from flags or RVCLOUD_* env vars.

Flags win over environment variables, which win over the defaults. The defaults are
the embedded backends under ``./rvcloud-data`` so that a stage started with no
configuration still runs on one machine.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

DEFAULT_DATA_DIR = "rvcloud-data"

_ENV = {
    "blob": "RVCLOUD_BLOB",
    "bus": "RVCLOUD_BUS",
    "status": "RVCLOUD_STATUS",
    "warehouse": "RVCLOUD_WAREHOUSE",
    "topic_stored": "RVCLOUD_TOPIC_STORED",
    "topic_converted": "RVCLOUD_TOPIC_CONVERTED",
}


def embedded_urls(data_dir: str) -> dict[str, str]:
    """Backend URLs for the embedded (one machine, no cloud account) setup."""
    d = os.path.abspath(data_dir)
    return {
        "blob": f"file://{d}/blobs",
        "bus": f"sqlite://{d}/bus.db",
        "status": f"sqlite://{d}/status.db",
        "warehouse": f"duckdb://{d}/warehouse.duckdb",
    }


@dataclass(frozen=True, slots=True)
class Settings:
    blob: str
    bus: str
    status: str
    warehouse: str
    topic_stored: str = "rvcloud-stored"
    topic_converted: str = "rvcloud-converted"

    @classmethod
    def from_env(cls, overrides: dict[str, str | None] | None = None) -> Settings:
        defaults = embedded_urls(os.environ.get("RVCLOUD_DATA_DIR", DEFAULT_DATA_DIR))
        defaults["topic_stored"] = "rvcloud-stored"
        defaults["topic_converted"] = "rvcloud-converted"
        values: dict[str, str] = {}
        for key, env in _ENV.items():
            flag = (overrides or {}).get(key)
            values[key] = flag or os.environ.get(env) or defaults[key]
        return cls(**values)

    @classmethod
    def from_args(cls, ns: argparse.Namespace) -> Settings:
        return cls.from_env({k: getattr(ns, k, None) for k in _ENV})


def add_backend_args(parser: argparse.ArgumentParser) -> None:
    """Add --blob/--bus/--status/--warehouse (and topic) flags to a stage's parser."""
    g = parser.add_argument_group(
        "backends (flag, else env var, else the embedded one under the data directory)"
    )
    g.add_argument(
        "--blob", metavar="URL", help="blob store: file:///DIR or gs://BUCKET[/PREFIX] (env RVCLOUD_BLOB)"
    )
    g.add_argument(
        "--bus",
        metavar="URL",
        help="event bus: sqlite:///FILE, memory:// or pubsub://PROJECT (env RVCLOUD_BUS)",
    )
    g.add_argument(
        "--status",
        metavar="URL",
        help="status store: sqlite:///FILE or datastore://PROJECT (env RVCLOUD_STATUS)",
    )
    g.add_argument(
        "--warehouse",
        metavar="URL",
        help="warehouse: duckdb:///FILE or bigquery://PROJECT/DATASET (env RVCLOUD_WAREHOUSE)",
    )
    g.add_argument(
        "--topic-stored",
        dest="topic_stored",
        metavar="NAME",
        help="topic for 'stored' events (env RVCLOUD_TOPIC_STORED)",
    )
    g.add_argument(
        "--topic-converted",
        dest="topic_converted",
        metavar="NAME",
        help="topic for 'converted' events (env RVCLOUD_TOPIC_CONVERTED)",
    )


def add_worker_args(parser: argparse.ArgumentParser, *, stage: str, lease_seconds: float) -> None:
    """Flags every worker stage has: retry budget, lease length, metrics, logs, then the backends."""
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=5,
        help="deliveries of one event before the file is FAILED and dead-lettered",
    )
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=lease_seconds,
        help=f"a file's claim lapses this long after its {stage} stops renewing it (it died)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus /metrics on this HTTP port (0: any free port; default: no endpoint)",
    )
    parser.add_argument("--metrics-addr", default="0.0.0.0", help="address of the metrics endpoint")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log line format; json carries request_id, upload_id, project and file as fields",
    )
    add_backend_args(parser)
