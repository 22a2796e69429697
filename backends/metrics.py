"""Prometheus metrics shared by the service stages: the HTTP endpoint and the worker metrics.

Every stage process (gateway, converter, loader) serves ``/metrics`` on its own
``--metrics-port``; each metrics object owns its registry (not prometheus_client's
global one), so several stages in one test process do not collide.

``StageMetrics`` is what a worker stage (converter, loader) exports; the metric names
carry a ``stage`` label so that one dashboard query covers both:

- ``rvcloud_stage_files_total{stage,outcome}``: files finished, by outcome
  (``done``: the stage's work is committed; ``failed``: the file is FAILED for good;
  ``retry``: handed back for another attempt; ``skipped``: a duplicate or late event
  another worker has or had);
- ``rvcloud_stage_rows_total{stage,table}``: rows written (converter: Avro rows,
  loader: rows the warehouse loaded);
- ``rvcloud_stage_file_bytes_total{stage}``: size of the raw MRT files of the ``done``
  files, so the bytes of each stage can be compared with the gateway's stored bytes;
- ``rvcloud_stage_output_bytes_total{stage}``: bytes written (the converter's Avro);
- ``rvcloud_stage_errors_total{stage,kind}``: failed attempts by kind (the exception's
  class name, or ``not_mrt``);
- ``rvcloud_stage_duration_seconds{stage,step}``: histograms of the time one file
  (converter ``convert``) or one batch load (loader ``load``) took;
- ``rvcloud_stage_queue_lag_seconds{stage}``: histogram of how long an event waited on
  the bus (its age when received, from the bus's publish time);
- ``rvcloud_stage_in_flight{stage}``: events being handled now.

``FileCountsCollector`` exports ``rvcloud_files{status,stage}`` from the status store:
a property of the whole archive rather than of one replica, so exactly one process
(the loader, which also runs the sweeper) exports it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from rvcloud.backends.bus.base import Message
from rvcloud.metadata.store import ListFilter, StatusStore

log = logging.getLogger("rvcloud.metrics")

# A small UPDATES file converts in well under a second, a full RIB in minutes; a batch
# load into BigQuery takes tens of seconds.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
# Queue lag: milliseconds when the workers keep up, hours in a backfill.
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)


class StageMetrics:
    """The metrics of one worker stage (``stage`` is ``converter`` or ``loader``)."""

    def __init__(self, stage: str, registry: CollectorRegistry | None = None) -> None:
        self.stage = stage
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._files = Counter(
            "rvcloud_stage_files", "Files finished by a stage, by outcome", ["stage", "outcome"], registry=r
        )
        self._rows = Counter("rvcloud_stage_rows", "Rows written, by table", ["stage", "table"], registry=r)
        self._file_bytes = Counter(
            "rvcloud_stage_file_bytes", "Raw MRT bytes of the files a stage finished", ["stage"], registry=r
        )
        self._output_bytes = Counter(
            "rvcloud_stage_output_bytes", "Bytes a stage wrote (Avro objects)", ["stage"], registry=r
        )
        self._errors = Counter(
            "rvcloud_stage_errors", "Failed attempts by kind of error", ["stage", "kind"], registry=r
        )
        self._duration = Histogram(
            "rvcloud_stage_duration_seconds",
            "Time of one step (a file's conversion, a batch load)",
            ["stage", "step"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self._lag = Histogram(
            "rvcloud_stage_queue_lag_seconds",
            "Age of a bus event when the stage received it",
            ["stage"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self._in_flight = Gauge("rvcloud_stage_in_flight", "Events being handled now", ["stage"], registry=r)
        # Zero-valued series exist from the start, so rate() and absent() work before
        # the first file.
        for outcome in ("done", "failed", "retry", "skipped"):
            self._files.labels(stage, outcome)
        self._file_bytes.labels(stage)
        self._in_flight.labels(stage)

    def file(self, outcome: str, raw_bytes: int = 0) -> None:
        self._files.labels(self.stage, outcome).inc()
        if raw_bytes:
            self._file_bytes.labels(self.stage).inc(raw_bytes)

    def rows(self, table: str, n: int) -> None:
        if n:
            self._rows.labels(self.stage, table).inc(n)

    def output_bytes(self, n: int) -> None:
        if n:
            self._output_bytes.labels(self.stage).inc(n)

    def error(self, kind: str) -> None:
        self._errors.labels(self.stage, kind).inc()

    def duration(self, step: str, seconds: float) -> None:
        self._duration.labels(self.stage, step).observe(seconds)

    def received(self, msg: Message, now: float | None = None) -> None:
        """Record the queue lag of ``msg`` (skipped when the bus gives no publish time)."""
        if msg.published_at is not None:
            lag = (time.time() if now is None else now) - msg.published_at
            # Clocks of the bus and this host may disagree slightly: never negative.
            self._lag.labels(self.stage).observe(max(0.0, lag))

    def in_flight(self, delta: int) -> None:
        self._in_flight.labels(self.stage).inc(delta)


class FileCountsCollector(Collector):
    """``rvcloud_files{status,stage}``: unfinished and failed files from the status store.

    Counted on scrape, at most every ``refresh`` seconds (a scrape in between gets the
    last counts): the store has no count query, so this pages through the
    IN_PROGRESS and FAILED records (DONE files are counted by the stage counters, and
    there are millions of them). At most ``max_records`` per status are read; the
    ``rvcloud_files_counted_partially`` gauge says when a count stopped there.
    """

    STATUSES = ("IN_PROGRESS", "FAILED")

    def __init__(self, store: StatusStore, *, refresh: float = 30.0, max_records: int = 100_000) -> None:
        self._store = store
        self._refresh = refresh
        self._max = max_records
        self._lock = threading.Lock()
        self._at = -float("inf")
        self._counts: Tally[tuple[str, str]] = Tally()
        self._partial = False

    def _count(self) -> tuple[Tally[tuple[str, str]], bool]:
        counts: Tally[tuple[str, str]] = Tally()
        partial = False
        for status in self.STATUSES:
            seen, token = 0, ""
            while True:
                page = self._store.list(ListFilter(status=status), page_size=1000, page_token=token)
                for r in page.records:
                    counts[(status, r.stage)] += 1
                seen += len(page.records)
                token = page.next_page_token
                if not token:
                    break
                if seen >= self._max:
                    partial = True
                    break
        return counts, partial

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if time.monotonic() - self._at >= self._refresh:
                try:
                    self._counts, self._partial = self._count()
                    self._at = time.monotonic()
                except Exception:
                    # Keep the last counts; the health of the store is reported elsewhere.
                    log.warning("counting files in the status store failed", exc_info=True)
            counts, partial = dict(self._counts), self._partial
        files = GaugeMetricFamily(
            "rvcloud_files", "Files in the status store by status and stage", labels=["status", "stage"]
        )
        for (status, stage), n in sorted(counts.items()):
            files.add_metric([status, stage], n)
        yield files
        yield GaugeMetricFamily(
            "rvcloud_files_counted_partially",
            "1 when rvcloud_files stopped at the per-status record limit",
            value=1 if partial else 0,
        )

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Registering must not query the store.
        return []


class MetricsServer:
    """The HTTP endpoint (``/metrics``) for a registry; ``port`` 0 picks a free one."""

    def __init__(self, registry: CollectorRegistry, port: int, addr: str = "0.0.0.0") -> None:
        server, thread = start_http_server(port, addr=addr, registry=registry)
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread
        self.port: int = int(server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
